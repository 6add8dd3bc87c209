// Package local is segflow's embedded OpenFaaS provider: it runs each
// function as a local process built from functions/<name> with the
// golang-media template's entrypoint, scales it from zero on the first call
// and back to zero when idle, and serves the OpenFaaS gateway REST API
// through faas-provider so faas-cli and segflow drive it the same way.
package provider

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/openfaas/faas-provider/types"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/segflow/segflow/infra/watchdog"
)

// Namespace is the one namespace the local runtime has, named as OpenFaaS
// names its default function namespace.
const Namespace = "openfaas-fn"

// Labels and annotations read from a deployment, as OpenFaaS names them.
const (
	LabelScaleZero         = "com.openfaas.scale.zero"
	LabelScaleZeroDuration = "com.openfaas.scale.zero-duration"
	LabelScaleMin          = "com.openfaas.scale.min"
	LabelScaleMax          = "com.openfaas.scale.max"
	// AnnotationHandler points at the function's source folder when it is not
	// functions/<image name> (faas-cli sends no handler path, segflow does).
	AnnotationHandler = "com.segflow.handler"
	// AnnotationNice starts the function's replicas at that niceness
	// (1-19), and so every tool they run: background stages (tags,
	// thumbnails) leave the cores to transcode, which live latency waits
	// on. On Kubernetes each pod is its own cgroup, where CPU requests do
	// this; the annotation is the local runtime's.
	AnnotationNice = "com.segflow.nice"
)

var (
	ErrNotFound   = errors.New("function not found")
	ErrTooMany    = errors.New("function at max_inflight")
	ErrBadRequest = errors.New("bad request")
	functionName  = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$`)
	defaultIdle   = 15 * time.Minute
	crashBackoff  = time.Second
	stopGrace     = 10 * time.Second
)

// Config configures a Runtime.
type Config struct {
	// Home holds the runtime's state: functions/, secrets/, logs/.
	Home string
	// RepoRoot holds go.work, functions/ and template/.
	RepoRoot string
	// FunctionEnv is given to every function over its own envVars: the
	// machine's facts (S3_ENDPOINT, S3_BUCKET, SEGFLOW_GATEWAY). Secrets
	// never go here.
	FunctionEnv []string
	// IdleCheck is how often idle functions are looked at (default 100ms).
	IdleCheck time.Duration
	Logger    *slog.Logger
	// Registerer receives the runtime's metrics; nil skips them.
	Registerer prometheus.Registerer
	// Watchdog is a binary whose "watchdog" subcommand is the classic
	// watchdog (segflow itself, the default): it runs deployments that name
	// an fprocess instead of one of the repository's functions.
	Watchdog string
}

// Runtime supervises the function processes.
type Runtime struct {
	cfg       Config
	builder   *Builder
	secrets   *secretStore
	logs      *logStore
	log       *slog.Logger
	transport *http.Transport
	metrics   *runtimeMetrics

	mu  sync.Mutex
	fns map[string]*function

	stop chan struct{}
	wg   sync.WaitGroup
}

// Open prepares Home, restores the functions deployed before a restart and
// starts the idle reaper.
func Open(ctx context.Context, cfg Config) (*Runtime, error) {
	if cfg.IdleCheck <= 0 {
		cfg.IdleCheck = 100 * time.Millisecond
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewJSONHandler(os.Stderr, nil))
	}
	if cfg.Watchdog == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("runtime: the watchdog binary: %w", err)
		}
		cfg.Watchdog = exe
	}
	secrets, err := newSecretStore(filepath.Join(cfg.Home, "secrets"))
	if err != nil {
		return nil, err
	}
	logs, err := newLogStore(filepath.Join(cfg.Home, "logs"))
	if err != nil {
		return nil, err
	}
	rt := &Runtime{
		cfg: cfg,
		// Builds are kept from one run to the next (DefaultBuildDir).
		builder: &Builder{RepoRoot: cfg.RepoRoot, Dir: DefaultBuildDir(cfg.Home)},
		secrets: secrets,
		logs:    logs,
		log:     cfg.Logger,
		transport: &http.Transport{
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:        1024,
			MaxIdleConnsPerHost: 256,
			IdleConnTimeout:     90 * time.Second,
		},
		metrics: newRuntimeMetrics(cfg.Registerer),
		fns:     map[string]*function{},
		stop:    make(chan struct{}),
	}
	if err := rt.restore(ctx); err != nil {
		rt.Close()
		return nil, err
	}
	rt.wg.Add(1)
	go rt.reapLoop()
	return rt, nil
}

// restore redeploys what was deployed when the runtime last stopped.
func (rt *Runtime) restore(ctx context.Context) error {
	dirs, err := filepath.Glob(filepath.Join(rt.cfg.Home, "functions", "*", "deployment.json"))
	if err != nil {
		return err
	}
	for _, p := range dirs {
		b, err := os.ReadFile(p)
		if err != nil {
			return fmt.Errorf("restore %s: %w", p, err)
		}
		var dep types.FunctionDeployment
		if err := json.Unmarshal(b, &dep); err != nil {
			return fmt.Errorf("restore %s: %w", p, err)
		}
		if err := rt.Deploy(ctx, dep); err != nil {
			rt.log.Error("restore function", "function", dep.Service, "err", err)
		}
	}
	return nil
}

// Close stops every function process. Deployments stay on disk for the
// next Open.
func (rt *Runtime) Close() {
	select {
	case <-rt.stop:
		return
	default:
		close(rt.stop)
	}
	rt.wg.Wait()
	rt.mu.Lock()
	fns := make([]*function, 0, len(rt.fns))
	for _, f := range rt.fns {
		fns = append(fns, f)
	}
	rt.mu.Unlock()
	var wg sync.WaitGroup
	for _, f := range fns {
		wg.Add(1)
		go func() { defer wg.Done(); f.shutdown() }()
	}
	wg.Wait()
	rt.transport.CloseIdleConnections()
	rt.logs.Close()
}

// ValidateDeployment checks what a deploy or update request must carry.
func ValidateDeployment(dep types.FunctionDeployment) error {
	if !functionName.MatchString(dep.Service) {
		return fmt.Errorf("%w: invalid function name %q (lower-case letters, digits and '-')", ErrBadRequest, dep.Service)
	}
	if dep.Image == "" {
		return fmt.Errorf("%w: function %s: image is required", ErrBadRequest, dep.Service)
	}
	if dep.Namespace != "" && dep.Namespace != Namespace {
		return fmt.Errorf("%w: namespace %q: only %q exists here", ErrBadRequest, dep.Namespace, Namespace)
	}
	for _, s := range dep.Secrets {
		if err := validSecretName(s); err != nil {
			return fmt.Errorf("%w: %v", ErrBadRequest, err)
		}
	}
	return nil
}

// handlerDir maps a deployment to its source folder: the handler
// annotation, else functions/<image name>, else functions/<service>.
func (rt *Runtime) handlerDir(dep types.FunctionDeployment) (string, error) {
	if dep.Annotations != nil {
		if h := (*dep.Annotations)[AnnotationHandler]; h != "" {
			if !filepath.IsAbs(h) {
				h = filepath.Join(rt.cfg.RepoRoot, h)
			}
			return h, nil
		}
	}
	for _, name := range []string{imageName(dep.Image), dep.Service} {
		d := filepath.Join(rt.cfg.RepoRoot, "functions", name)
		if st, err := os.Stat(filepath.Join(d, "go.mod")); err == nil && !st.IsDir() {
			return d, nil
		}
	}
	return "", fmt.Errorf("%w: image %q", errNoSource, dep.Image)
}

// errNoSource: the image is none of the repository's functions.
var errNoSource = errors.New("no function source")

// imageName is the last path element of an image reference without tag or
// digest: "ghcr.io/segflow/transcode:0.1" -> "transcode".
func imageName(image string) string {
	if i := strings.Index(image, "@"); i >= 0 {
		image = image[:i]
	}
	if i := strings.LastIndex(image, "/"); i >= 0 {
		image = image[i+1:]
	}
	if i := strings.Index(image, ":"); i >= 0 {
		image = image[:i]
	}
	return image
}

// Deploy builds the function and starts its minimum replicas. Deploying a
// name that exists replaces it, as faasd does.
func (rt *Runtime) Deploy(ctx context.Context, dep types.FunctionDeployment) error {
	if err := ValidateDeployment(dep); err != nil {
		return err
	}
	dep.Namespace = Namespace
	dir := filepath.Join(rt.cfg.Home, "functions", dep.Service)
	argv, err := rt.replicaCommand(ctx, dep, dir)
	if err != nil {
		return err
	}
	if err := rt.secrets.Mount(filepath.Join(dir, "secrets"), dep.Secrets); err != nil {
		return fmt.Errorf("%w: %v", ErrBadRequest, err)
	}
	if err := writeJSON(filepath.Join(dir, "deployment.json"), dep); err != nil {
		return fmt.Errorf("deploy %s: %w", dep.Service, err)
	}

	rt.mu.Lock()
	f := rt.fns[dep.Service]
	if f == nil {
		f, err = newFunction(rt, dep, argv, dir)
		if err != nil {
			rt.mu.Unlock()
			return err
		}
		rt.fns[dep.Service] = f
		rt.mu.Unlock()
		return f.scaleTo(f.scaleMin())
	}
	rt.mu.Unlock()
	return f.replace(dep, argv)
}

// replicaCommand is what a replica of dep runs: the function built from the
// repository's source for its image, else the classic watchdog over the
// deployment's fprocess. An image with neither cannot run without a
// container runtime, and the error says what can.
func (rt *Runtime) replicaCommand(ctx context.Context, dep types.FunctionDeployment, dir string) ([]string, error) {
	src, err := rt.handlerDir(dep)
	if errors.Is(err, errNoSource) {
		if dep.EnvProcess == "" {
			return nil, fmt.Errorf("%w: image %q is not one of the repository's functions (functions/%s in %s) and names no fprocess; "+
				"the local runtime runs no container images: deploy a function of this repository, or give a command to run per request "+
				"(faas-cli deploy --fprocess, the stack's fprocess)", ErrBadRequest, dep.Image, imageName(dep.Image), rt.cfg.RepoRoot)
		}
		if err := watchdog.Check(dep.EnvProcess, dir); err != nil {
			return nil, fmt.Errorf("%w: function %s: %v", ErrBadRequest, dep.Service, err)
		}
		return []string{rt.cfg.Watchdog, "watchdog"}, nil
	}
	if err != nil {
		return nil, err
	}
	// The binary sits beside the deployment, so a rebuild for another
	// deploy cannot swap it under running replicas.
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("deploy %s: %w", dep.Service, err)
	}
	bin := filepath.Join(dir, "handler")
	if err := rt.builder.Build(ctx, dep.Service, src, bin); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadRequest, err)
	}
	return []string{bin}, nil
}

// Update redeploys an existing function; ErrNotFound when there is none.
func (rt *Runtime) Update(ctx context.Context, dep types.FunctionDeployment) error {
	if _, err := rt.get(dep.Service); err != nil {
		return err
	}
	return rt.Deploy(ctx, dep)
}

// Delete stops the function and forgets it.
func (rt *Runtime) Delete(name string) error {
	rt.mu.Lock()
	f := rt.fns[name]
	delete(rt.fns, name)
	rt.mu.Unlock()
	if f == nil {
		return fmt.Errorf("delete %s: %w", name, ErrNotFound)
	}
	f.shutdown()
	rt.logs.Forget(name)
	if err := os.RemoveAll(f.dir); err != nil {
		return fmt.Errorf("delete %s: %w", name, err)
	}
	return nil
}

// Scale sets the replica count (clamped to the function's max).
func (rt *Runtime) Scale(name string, replicas uint64) error {
	f, err := rt.get(name)
	if err != nil {
		return err
	}
	return f.scaleTo(replicas)
}

// Status reports one function as the gateway does.
func (rt *Runtime) Status(name string) (types.FunctionStatus, error) {
	f, err := rt.get(name)
	if err != nil {
		return types.FunctionStatus{}, err
	}
	return f.status(), nil
}

// List reports every function, sorted by name.
func (rt *Runtime) List() []types.FunctionStatus {
	rt.mu.Lock()
	out := make([]types.FunctionStatus, 0, len(rt.fns))
	for _, f := range rt.fns {
		out = append(out, f.status())
	}
	rt.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func (rt *Runtime) get(name string) (*function, error) {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	f := rt.fns[name]
	if f == nil {
		return nil, fmt.Errorf("function %s: %w", name, ErrNotFound)
	}
	return f, nil
}

// reapLoop scales idle scale-to-zero functions down and restarts crashed
// replicas of the others.
func (rt *Runtime) reapLoop() {
	defer rt.wg.Done()
	t := time.NewTicker(rt.cfg.IdleCheck)
	defer t.Stop()
	for {
		select {
		case <-rt.stop:
			return
		case now := <-t.C:
			rt.mu.Lock()
			fns := make([]*function, 0, len(rt.fns))
			for _, f := range rt.fns {
				fns = append(fns, f)
			}
			rt.mu.Unlock()
			for _, f := range fns {
				f.reconcile(now)
			}
		}
	}
}

// SecretNames, PutSecret and DeleteSecret serve /system/secrets.
func (rt *Runtime) SecretNames() ([]string, error) { return rt.secrets.List() }

// PutSecret creates (create=true) or updates a secret.
func (rt *Runtime) PutSecret(name string, value []byte, create bool) error {
	return rt.secrets.Put(name, value, create)
}

// DeleteSecret removes a secret.
func (rt *Runtime) DeleteSecret(name string) error { return rt.secrets.Delete(name) }

// Logs answers /system/logs queries.
func (rt *Runtime) Logs() *logStore { return rt.logs }

// IsSecretExists and IsSecretNotFound classify secret errors for handlers.
func IsSecretExists(err error) bool   { return errors.Is(err, errSecretExists) }
func IsSecretNotFound(err error) bool { return errors.Is(err, errSecretNotFound) }

func writeJSON(p string, v any) error {
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, p)
}

func labelUint(m *map[string]string, key string, def uint64) uint64 {
	if m == nil {
		return def
	}
	v, ok := (*m)[key]
	if !ok {
		return def
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return def
	}
	return n
}

// DefaultBuildDir is where a runtime keeps its functions' builds:
// functions/ in $SEGFLOW_CACHE, else in ~/.cache/segflow (where
// scripts/setup.sh keeps its tools), else home/build.
func DefaultBuildDir(home string) string {
	if dir := os.Getenv("SEGFLOW_CACHE"); dir != "" {
		return filepath.Join(dir, "functions")
	}
	if dir, err := os.UserCacheDir(); err == nil {
		return filepath.Join(dir, "segflow", "functions")
	}
	return filepath.Join(home, "build")
}
