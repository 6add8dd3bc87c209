// Package stack reads a faas-cli stack file (stack.yml) with go-sdk's stack
// parser, the one faas-cli itself uses (same ${VAR:-default} substitution,
// same --filter and --regex), and turns each function into the deployment
// request faas-cli would send to a gateway. On top of the parse it lints
// strictly: an unknown field or a mistyped segflow annotation would
// otherwise deploy the wrong thing without a word.
package stack

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/openfaas/faas-provider/types"
	sdkstack "github.com/openfaas/go-sdk/stack"
	"gopkg.in/yaml.v3"

	"github.com/segflow/segflow/infra/provider"
	"github.com/segflow/segflow/infra/router"
	"github.com/segflow/segflow/infra/s3iam"
	"github.com/segflow/segflow/shared/storage"
)

// Stack is a parsed stack file and the folder it was read from, which
// handlers, templates and environment files are relative to.
type Stack struct {
	*sdkstack.Services
	Dir string
}

// Options narrow what Parse returns, as faas-cli's flags do.
type Options struct {
	// Filter is a glob over function names (faas-cli --filter).
	Filter string
	// Regex is a regular expression over function names (faas-cli --regex).
	Regex string
}

// Parse reads the stack file at path as faas-cli does, then lints it.
func Parse(path string, opts ...Options) (*Stack, error) {
	var o Options
	if len(opts) > 0 {
		o = opts[0]
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("stack %s: %w", path, err)
	}
	if err := lintFields(raw); err != nil {
		return nil, fmt.Errorf("stack %s: %w", path, err)
	}
	svc, err := sdkstack.ParseYAMLData(raw, o.Regex, o.Filter, true)
	if err != nil {
		return nil, fmt.Errorf("stack %s: %w", path, err)
	}
	abs, err := filepath.Abs(filepath.Dir(path))
	if err != nil {
		return nil, err
	}
	s := &Stack{Services: svc, Dir: abs}
	if err := s.Validate(); err != nil {
		return nil, fmt.Errorf("stack %s: %w", path, err)
	}
	return s, nil
}

// lintFields decodes the file strictly: a field go-sdk does not know (a
// typo such as "lables") is an error, where faas-cli would drop it.
func lintFields(raw []byte) error {
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	var s sdkstack.Services
	if err := dec.Decode(&s); err != nil {
		return err
	}
	return nil
}

// segflowAnnotations are the annotations segflow reads, each a positive
// whole number except the handler folder and the storage grant.
var segflowAnnotations = map[string]bool{
	router.AnnotationConcurrency: true,
	router.AnnotationMaxAttempts: true,
	provider.AnnotationHandler:   false,
	provider.AnnotationNice:      true,
	s3iam.ReadAnnotation:         false,
	s3iam.WriteAnnotation:        false,
}

// Validate checks what faas-cli or the gateway would refuse, and segflow's
// own annotations.
func (s *Stack) Validate() error {
	if len(s.Functions) == 0 {
		return fmt.Errorf("no functions")
	}
	for _, name := range s.Names() {
		f := s.Functions[name]
		if f.Image == "" || f.Language == "" || f.Handler == "" {
			return fmt.Errorf("function %s: lang, handler and image are required", name)
		}
		if f.Annotations != nil {
			for k, v := range *f.Annotations {
				if !strings.HasPrefix(k, "com.segflow.") {
					continue
				}
				number, known := segflowAnnotations[k]
				if !known {
					return fmt.Errorf("function %s: annotation %s is not one segflow reads", name, k)
				}
				if n, err := strconv.Atoi(v); number && (err != nil || n < 1) {
					return fmt.Errorf("function %s: annotation %s=%q: want a whole number of 1 or more", name, k, v)
				} else if k == provider.AnnotationNice && n > 19 {
					return fmt.Errorf("function %s: annotation %s=%q: niceness goes from 1 to 19", name, k, v)
				}
			}
		}
		dep, err := s.Deployment(name)
		if err != nil {
			return err
		}
		if err := provider.ValidateDeployment(dep); err != nil {
			return err
		}
		if err := validateGrant(dep); err != nil {
			return fmt.Errorf("function %s: %w", name, err)
		}
	}
	return nil
}

// validateGrant checks a function's storage grant and that it takes the
// keys of its own MinIO user, which a grant without them never reaches.
func validateGrant(dep types.FunctionDeployment) error {
	var a map[string]string
	if dep.Annotations != nil {
		a = *dep.Annotations
	}
	g, ok := s3iam.GrantFromAnnotations(a)
	if !ok {
		return nil
	}
	if err := g.Validate(); err != nil {
		return err
	}
	ak, sk := storage.SecretNames(dep.Service)
	if !slices.Contains(dep.Secrets, ak) || !slices.Contains(dep.Secrets, sk) {
		return fmt.Errorf("it has an s3 grant, so its secrets must list %s and %s", ak, sk)
	}
	return nil
}

// Grants are the storage grants of the functions that declare one.
func (s *Stack) Grants() (map[string]s3iam.Grant, error) {
	out := map[string]s3iam.Grant{}
	for _, name := range s.Names() {
		dep, err := s.Deployment(name)
		if err != nil {
			return nil, err
		}
		if dep.Annotations == nil {
			continue
		}
		if g, ok := s3iam.GrantFromAnnotations(*dep.Annotations); ok {
			out[name] = g
		}
	}
	return out, nil
}

// Names returns the function names in order.
func (s *Stack) Names() []string {
	names := make([]string, 0, len(s.Functions))
	for n := range s.Functions {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// HandlerDir is the function's source folder as an absolute path.
func (s *Stack) HandlerDir(name string) string {
	return filepath.Join(s.Dir, s.Functions[name].Handler)
}

// Deployment is the request faas-cli deploy sends for the function: its
// environment with the environment files laid over it, and the fprocess of
// its template when the stack names none.
func (s *Stack) Deployment(name string) (types.FunctionDeployment, error) {
	f, ok := s.Functions[name]
	if !ok {
		return types.FunctionDeployment{}, fmt.Errorf("function %s is not in the stack", name)
	}
	env := map[string]string{}
	for k, v := range f.Environment {
		env[k] = v
	}
	for _, file := range f.EnvironmentFile {
		p := file
		if !filepath.IsAbs(p) {
			p = filepath.Join(s.Dir, p)
		}
		raw, err := os.ReadFile(p)
		if err != nil {
			return types.FunctionDeployment{}, fmt.Errorf("function %s: environment_file: %w", name, err)
		}
		var ef sdkstack.EnvironmentFile
		if err := yaml.Unmarshal(raw, &ef); err != nil {
			return types.FunctionDeployment{}, fmt.Errorf("function %s: environment_file %s: %w", name, file, err)
		}
		for k, v := range ef.Environment {
			env[k] = v
		}
	}
	fprocess := f.FProcess
	if fprocess == "" {
		if lt, err := sdkstack.ParseYAMLForLanguageTemplate(filepath.Join(s.Dir, "template", f.Language, "template.yml")); err == nil {
			fprocess = lt.FProcess
		}
	}
	dep := types.FunctionDeployment{
		Service:                name,
		Image:                  f.Image,
		Namespace:              f.Namespace,
		EnvProcess:             fprocess,
		EnvVars:                env,
		Secrets:                f.Secrets,
		ReadOnlyRootFilesystem: f.ReadOnlyRootFilesystem,
		Labels:                 copyMap(f.Labels),
		Annotations:            copyMap(f.Annotations),
	}
	if f.Constraints != nil {
		dep.Constraints = *f.Constraints
	}
	if f.Limits != nil {
		dep.Limits = &types.FunctionResources{Memory: f.Limits.Memory, CPU: f.Limits.CPU}
	}
	if f.Requests != nil {
		dep.Requests = &types.FunctionResources{Memory: f.Requests.Memory, CPU: f.Requests.CPU}
	}
	return dep, nil
}

// LocalDeployment is Deployment plus the handler folder, which the local
// runtime builds from (faas-cli builds an image from it instead).
func (s *Stack) LocalDeployment(name string) (types.FunctionDeployment, error) {
	dep, err := s.Deployment(name)
	if err != nil {
		return dep, err
	}
	a := map[string]string{}
	if dep.Annotations != nil {
		a = *dep.Annotations
	}
	a[provider.AnnotationHandler] = s.HandlerDir(name)
	dep.Annotations = &a
	return dep, nil
}

func copyMap(m *map[string]string) *map[string]string {
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(*m))
	for k, v := range *m {
		out[k] = v
	}
	return &out
}
