package provider

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/openfaas/faas-provider/types"

	"github.com/segflow/segflow/shared/config"
	"github.com/segflow/segflow/shared/tracing/otlp"
)

// function is one deployed function: its listener, shared by all of its
// replicas, and the replica processes.
type function struct {
	rt   *Runtime
	dir  string
	name string

	listener *net.TCPListener
	lfile    *os.File // the listener's fd, handed to each replica as fd 3
	addr     string

	mu      sync.Mutex
	dep     types.FunctionDeployment
	argv    []string // a replica's command
	created time.Time
	procs   []*process
	// retiring are the replicas taken out of service and not yet exited:
	// they still hold the shared listener and may accept a connection in
	// the moment before they close it, then drop it as they go.
	retiring    []*process
	replicas    uint64 // desired
	inflight    int
	lastUsed    time.Time
	lastCrash   time.Time
	invocations uint64

	samples     []rateSample // invocations over the last rateWindow
	firing      bool         // the call rate is above scaleUpRPS
	lastScaleUp time.Time
}

func newFunction(rt *Runtime, dep types.FunctionDeployment, argv []string, dir string) (*function, error) {
	// The runtime owns the socket. A call made while no replica runs waits in
	// the kernel's accept queue instead of failing, so scale from zero costs
	// only the process start.
	l, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return nil, fmt.Errorf("deploy %s: listen: %w", dep.Service, err)
	}
	lf, err := l.File()
	if err != nil {
		l.Close()
		return nil, fmt.Errorf("deploy %s: listener fd: %w", dep.Service, err)
	}
	return &function{rt: rt, dir: dir, name: dep.Service, listener: l, lfile: lf, addr: l.Addr().String(),
		dep: dep, argv: argv, created: time.Now().UTC(), lastUsed: time.Now()}, nil
}

func (f *function) labels() *map[string]string { return f.dep.Labels }

func (f *function) scaleMin() uint64 { return labelUint(f.labels(), LabelScaleMin, 1) }
func (f *function) scaleMax() uint64 { return labelUint(f.labels(), LabelScaleMax, 20) }

func (f *function) scaleToZero() bool {
	return f.dep.Labels != nil && (*f.dep.Labels)[LabelScaleZero] == "true"
}

// idleLimit is com.openfaas.scale.zero-duration (default 15m, as OpenFaaS).
func (f *function) idleLimit() time.Duration {
	if f.dep.Labels != nil {
		if v := (*f.dep.Labels)[LabelScaleZeroDuration]; v != "" {
			if d, err := config.ParseDuration(v); err == nil && d > 0 {
				return d
			}
		}
	}
	return defaultIdle
}

// maxInflight is the watchdog's max_inflight per replica, 0 for no limit.
func (f *function) maxInflight() int {
	n, _ := strconv.Atoi(f.dep.EnvVars["max_inflight"])
	return n
}

// env builds a replica's environment: a minimal base (never the runtime's
// own environment, which may hold credentials), the runtime's OpenTelemetry
// exporter settings (so a function's spans reach the same collector), the
// function's envVars, then the runtime-wide settings, which win: they are
// facts of this machine (where its one MinIO listens, its bucket), so a
// stack file written for OpenFaaS (S3_ENDPOINT: the cluster's MinIO)
// deploys here unchanged, with or without the env file loaded.
func (f *function) env() []string {
	env := []string{
		"PATH=" + config.Env("PATH", "/usr/local/bin:/usr/bin:/bin"),
		"HOME=" + f.dir,
		"TMPDIR=" + os.TempDir(),
		"LANG=C.UTF-8",
		"SEGFLOW_FUNCTION=" + f.name,
		"SEGFLOW_SECRETS_DIR=" + filepath.Join(f.dir, "secrets"),
	}
	for _, k := range otlp.EnvVars {
		if v := os.Getenv(k); v != "" {
			env = append(env, k+"="+v)
		}
	}
	if f.dep.EnvProcess != "" {
		// As OpenFaaS sets it in the container: the watchdog's command.
		env = append(env, "fprocess="+f.dep.EnvProcess)
	}
	for k, v := range f.dep.EnvVars {
		env = append(env, k+"="+v)
	}
	// exec keeps the last value of a repeated key.
	return append(env, f.rt.cfg.FunctionEnv...)
}

// startLocked adds one replica. f.mu is held.
func (f *function) startLocked() error {
	argv := f.argv
	if f.dep.Annotations != nil {
		// nice execs the function: the same pid, and every thread and
		// child of it at that niceness (a Go process cannot renice
		// itself: niceness is per thread).
		if n, err := strconv.Atoi((*f.dep.Annotations)[AnnotationNice]); err == nil && n > 0 && n < 20 {
			argv = append([]string{"nice", "-n", strconv.Itoa(n)}, argv...)
		}
	}
	p, err := startProcess(argv, f.env(), f.dir, f.lfile, f.dep.EnvProcess != "", func(pid int, line string) {
		f.rt.logs.Append(f.name, pid, line)
	})
	if err != nil {
		return fmt.Errorf("function %s: %w", f.name, err)
	}
	f.procs = append(f.procs, p)
	f.rt.metrics.starts.WithLabelValues(f.name).Inc()
	f.rt.log.Info("replica started", "function", f.name, "pid", p.pid(), "replicas", len(f.procs))
	go f.watch(p)
	return nil
}

// watch removes a replica when it exits. An exit nobody asked for is a
// crash: logged, and the replica is restarted by the reaper after a pause
// or by the next call.
func (f *function) watch(p *process) {
	<-p.done
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, q := range f.procs {
		if q == p {
			f.procs = append(f.procs[:i], f.procs[i+1:]...)
			break
		}
	}
	if !p.stopping {
		f.lastCrash = time.Now()
		f.rt.metrics.crashes.WithLabelValues(f.name).Inc()
		f.rt.log.Error("replica exited", "function", f.name, "pid", p.pid(), "err", fmt.Sprint(p.exitErr))
	}
}

// scaleTo sets the desired replicas and starts or stops processes to match.
// It counts as a use: a function scaled up by hand stays up for its
// zero-duration before the idler may take it to zero.
func (f *function) scaleTo(n uint64) error {
	if max := f.scaleMax(); n > max {
		n = max
	}
	f.mu.Lock()
	f.lastUsed = time.Now()
	stop := f.shrinkLocked(n)
	var err error
	for uint64(len(f.procs)) < n && err == nil {
		err = f.startLocked()
	}
	f.mu.Unlock()
	f.stopReplicas(stop)
	return err
}

// shrinkLocked sets the desired count and takes the surplus replicas out of
// service; the caller stops them after unlocking. f.mu is held, so a call
// arriving meanwhile sees the new count and starts a fresh replica if needed.
func (f *function) shrinkLocked(n uint64) []*process {
	f.replicas = n
	var stop []*process
	for uint64(len(f.procs)) > n {
		p := f.procs[len(f.procs)-1]
		p.stopping = true
		f.procs = f.procs[:len(f.procs)-1]
		stop = append(stop, p)
	}
	f.retiring = append(f.retiring, stop...)
	return stop
}

func (f *function) stopReplicas(stop []*process) {
	if len(stop) == 0 {
		return
	}
	stopAll(stop)
	f.mu.Lock()
	f.retiring = slices.DeleteFunc(f.retiring, func(p *process) bool { return slices.Contains(stop, p) })
	f.mu.Unlock()
	f.rt.log.Info("scaled down", "function", f.name, "stopped", len(stop))
	f.rt.transport.CloseIdleConnections()
}

func stopAll(ps []*process) {
	var wg sync.WaitGroup
	for _, p := range ps {
		wg.Add(1)
		go func() { defer wg.Done(); p.stop(stopGrace) }()
	}
	wg.Wait()
}

// replace swaps in a new build and deployment, starting new replicas before
// stopping the old ones so calls keep flowing.
func (f *function) replace(dep types.FunctionDeployment, argv []string) error {
	f.mu.Lock()
	old := f.procs
	f.procs = nil
	f.dep, f.argv = dep, argv
	n := uint64(len(old))
	if n < f.replicas {
		n = f.replicas
	}
	var err error
	for uint64(len(f.procs)) < n && err == nil {
		err = f.startLocked()
	}
	for _, p := range old {
		p.stopping = true
	}
	f.mu.Unlock()
	stopAll(old)
	f.rt.transport.CloseIdleConnections()
	return err
}

// acquire makes sure a replica runs (scaling from zero), counts the call as
// in flight, and returns the address to send it to. cold says whether this
// call started the process.
func (f *function) acquire() (addr string, cold bool, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	// A call from zero right after a scale down waits for the replicas
	// going away to exit: until then one of them could take the call's
	// connection from the shared listener and drop it (a 502).
	for len(f.procs) == 0 && len(f.retiring) > 0 {
		p := f.retiring[0]
		f.mu.Unlock()
		<-p.done
		f.mu.Lock()
		f.retiring = slices.DeleteFunc(f.retiring, func(q *process) bool { return q == p })
	}
	if len(f.procs) == 0 {
		if f.replicas == 0 {
			f.replicas = 1
		}
		if err := f.startLocked(); err != nil {
			return "", false, err
		}
		cold = true
	}
	if m := f.maxInflight(); m > 0 && f.inflight >= m*len(f.procs) {
		return "", false, fmt.Errorf("function %s: %d calls in flight: %w", f.name, f.inflight, ErrTooMany)
	}
	f.inflight++
	f.invocations++
	f.lastUsed = time.Now()
	return f.addr, cold, nil
}

func (f *function) release() {
	f.mu.Lock()
	f.inflight--
	f.lastUsed = time.Now()
	f.mu.Unlock()
}

// reconcile scales an idle scale-to-zero function to zero, and restarts
// crashed replicas of a function that should be running.
func (f *function) reconcile(now time.Time) {
	f.mu.Lock()
	var stop []*process
	idle := f.scaleToZero() && f.inflight == 0 && len(f.procs) > 0 && now.Sub(f.lastUsed) >= f.idleLimit()
	if idle {
		f.rt.log.Info("idle, scaling to zero", "function", f.name, "idle", now.Sub(f.lastUsed).String())
		stop = f.shrinkLocked(0)
	} else if uint64(len(f.procs)) < f.replicas && now.Sub(f.lastCrash) >= crashBackoff {
		if err := f.startLocked(); err != nil {
			f.rt.log.Error("restart replica", "function", f.name, "err", err)
		}
	} else {
		stop = f.autoscaleLocked(now)
	}
	f.mu.Unlock()
	f.stopReplicas(stop)
}

func (f *function) status() types.FunctionStatus {
	f.mu.Lock()
	defer f.mu.Unlock()
	d := f.dep
	// As faas-netes does, every function carries the label faas_function
	// with its name (label selectors and the certifier read it).
	labels := map[string]string{"faas_function": d.Service}
	if d.Labels != nil {
		for k, v := range *d.Labels {
			labels[k] = v
		}
	}
	return types.FunctionStatus{
		Name: d.Service, Image: d.Image, Namespace: Namespace, EnvProcess: d.EnvProcess,
		EnvVars: d.EnvVars, Constraints: d.Constraints, Secrets: d.Secrets,
		Labels: &labels, Annotations: d.Annotations, Limits: d.Limits, Requests: d.Requests,
		ReadOnlyRootFilesystem: d.ReadOnlyRootFilesystem,
		InvocationCount:        float64(f.invocations),
		Replicas:               f.replicas,
		AvailableReplicas:      uint64(len(f.procs)),
		CreatedAt:              f.created,
	}
}

// shutdown stops every replica and closes the listener.
func (f *function) shutdown() {
	f.mu.Lock()
	ps := f.procs
	f.procs = nil
	for _, p := range ps {
		p.stopping = true
	}
	f.mu.Unlock()
	stopAll(ps)
	f.listener.Close()
	f.lfile.Close()
}
