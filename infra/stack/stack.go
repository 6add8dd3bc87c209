// Package stack reads a faas-cli stack file (stack.yml) into the fields
// faas-cli itself reads, and turns each function into the deployment
// request faas-cli would send to a gateway.
package stack

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/openfaas/faas-provider/types"
	"gopkg.in/yaml.v3"

	"github.com/segflow/segflow/infra/local"
)

// Stack is a stack file.
type Stack struct {
	Version       string              `yaml:"version"`
	Provider      Provider            `yaml:"provider"`
	Functions     map[string]Function `yaml:"functions"`
	Configuration Configuration       `yaml:"configuration,omitempty"`
	// Dir is the folder the file was read from; handlers are relative to it.
	Dir string `yaml:"-"`
}

// Provider names the gateway.
type Provider struct {
	Name    string `yaml:"name"`
	Gateway string `yaml:"gateway"`
}

// Configuration is faas-cli's build configuration.
type Configuration struct {
	Templates []Template `yaml:"templates,omitempty"`
	Copy      []string   `yaml:"copy,omitempty"`
}

// Template points at a template source.
type Template struct {
	Name   string `yaml:"name"`
	Source string `yaml:"source,omitempty"`
}

// Function is one function entry.
type Function struct {
	Lang                   string            `yaml:"lang"`
	Handler                string            `yaml:"handler"`
	Image                  string            `yaml:"image"`
	FProcess               string            `yaml:"fprocess,omitempty"`
	Environment            map[string]any    `yaml:"environment,omitempty"`
	EnvironmentFile        []string          `yaml:"environment_file,omitempty"`
	Secrets                []string          `yaml:"secrets,omitempty"`
	Labels                 map[string]string `yaml:"labels,omitempty"`
	Annotations            map[string]string `yaml:"annotations,omitempty"`
	Limits                 *Resources        `yaml:"limits,omitempty"`
	Requests               *Resources        `yaml:"requests,omitempty"`
	Constraints            []string          `yaml:"constraints,omitempty"`
	ReadOnlyRootFilesystem bool              `yaml:"readonly_root_filesystem,omitempty"`
	Namespace              string            `yaml:"namespace,omitempty"`
}

// Resources are memory and CPU quantities.
type Resources struct {
	Memory string `yaml:"memory,omitempty"`
	CPU    string `yaml:"cpu,omitempty"`
}

// envRef matches faas-cli's ${VAR} and ${VAR:-default} substitutions.
var envRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(:-([^}]*))?\}`)

// Parse reads a stack file strictly: unknown fields are errors, as a typo in
// a label name would otherwise silently deploy the wrong thing.
func Parse(path string) (*Stack, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("stack %s: %w", path, err)
	}
	text := envRef.ReplaceAllStringFunc(string(raw), func(m string) string {
		sub := envRef.FindStringSubmatch(m)
		if v, ok := os.LookupEnv(sub[1]); ok && v != "" {
			return v
		}
		return sub[3]
	})
	dec := yaml.NewDecoder(strings.NewReader(text))
	dec.KnownFields(true)
	var s Stack
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("stack %s: %w", path, err)
	}
	abs, err := filepath.Abs(filepath.Dir(path))
	if err != nil {
		return nil, err
	}
	s.Dir = abs
	if err := s.Validate(); err != nil {
		return nil, fmt.Errorf("stack %s: %w", path, err)
	}
	return &s, nil
}

// Validate checks what faas-cli would refuse.
func (s *Stack) Validate() error {
	if s.Version != "1.0" {
		return fmt.Errorf("version %q: faas-cli reads stack files of version 1.0", s.Version)
	}
	if s.Provider.Name != "openfaas" {
		return fmt.Errorf("provider.name %q: must be openfaas", s.Provider.Name)
	}
	if len(s.Functions) == 0 {
		return fmt.Errorf("no functions")
	}
	for name, f := range s.Functions {
		if f.Image == "" || f.Lang == "" || f.Handler == "" {
			return fmt.Errorf("function %s: lang, handler and image are required", name)
		}
		dep := s.Deployment(name)
		if err := local.ValidateDeployment(dep); err != nil {
			return err
		}
	}
	return nil
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

// Deployment is the request faas-cli deploy sends for the function.
func (s *Stack) Deployment(name string) types.FunctionDeployment {
	f := s.Functions[name]
	env := map[string]string{}
	for k, v := range f.Environment {
		// "KEY: ${UNSET:-}" is YAML null: faas-cli sends it as "".
		if v == nil {
			env[k] = ""
			continue
		}
		env[k] = fmt.Sprint(v)
	}
	dep := types.FunctionDeployment{
		Service:                name,
		Image:                  f.Image,
		Namespace:              f.Namespace,
		EnvProcess:             f.FProcess,
		EnvVars:                env,
		Constraints:            f.Constraints,
		Secrets:                f.Secrets,
		ReadOnlyRootFilesystem: f.ReadOnlyRootFilesystem,
	}
	if f.Labels != nil {
		l := copyMap(f.Labels)
		dep.Labels = &l
	}
	if f.Annotations != nil {
		a := copyMap(f.Annotations)
		dep.Annotations = &a
	}
	if f.Limits != nil {
		dep.Limits = &types.FunctionResources{Memory: f.Limits.Memory, CPU: f.Limits.CPU}
	}
	if f.Requests != nil {
		dep.Requests = &types.FunctionResources{Memory: f.Requests.Memory, CPU: f.Requests.CPU}
	}
	return dep
}

// LocalDeployment is Deployment plus the handler folder, which the local
// runtime builds from (faas-cli builds an image from it instead).
func (s *Stack) LocalDeployment(name string) types.FunctionDeployment {
	dep := s.Deployment(name)
	a := map[string]string{}
	if dep.Annotations != nil {
		a = *dep.Annotations
	}
	a[local.AnnotationHandler] = s.HandlerDir(name)
	dep.Annotations = &a
	return dep
}

func copyMap(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
