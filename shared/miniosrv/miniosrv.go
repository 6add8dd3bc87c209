// Package miniosrv runs a MinIO server as a child process. MinIO is AGPL, so
// segflow never links it: it starts the binary that scripts/setup.sh built
// from source and talks to it over S3 like any other client.
package miniosrv

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"syscall"
	"time"
)

// Options configure one server.
type Options struct {
	Binary       string // path to the minio binary; empty uses FindBinary
	DataDir      string
	Address      string // host:port for S3
	Console      string // host:port for the console; empty picks none useful
	RootUser     string
	RootPassword string
	Env          []string  // extra environment (notification targets, ...)
	Log          io.Writer // server output; nil discards
	// Drives, when set, are the drives of every server of a distributed
	// pool as MinIO names them (http://host:port/path), this one's among
	// them; DataDir is then this server's own drive. See OpenPool.
	Drives []string
}

// Server is a running MinIO process.
type Server struct {
	opts Options
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

// FindBinary looks for minio in $SEGFLOW_MINIO, the setup cache and $PATH.
func FindBinary(name string) (string, error) {
	envName := map[string]string{"minio": "SEGFLOW_MINIO", "mc": "SEGFLOW_MC"}[name]
	if p := os.Getenv(envName); envName != "" && p != "" {
		return p, nil
	}
	cache := os.Getenv("SEGFLOW_CACHE")
	if cache == "" {
		if home, err := os.UserHomeDir(); err == nil {
			cache = filepath.Join(home, ".cache", "segflow")
		}
	}
	if p := filepath.Join(cache, "bin", name); fileExecutable(p) {
		return p, nil
	}
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("%s binary not found (looked in $%s, %s/bin, $PATH): run scripts/setup.sh", name, envName, cache)
}

func fileExecutable(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir() && st.Mode()&0o111 != 0
}

// Open launches the server and waits until it answers its liveness probe;
// Close stops it.
func Open(ctx context.Context, o Options) (*Server, error) {
	s, err := start(o)
	if err != nil {
		return nil, err
	}
	if err := s.waitReady(ctx, 60*time.Second); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// OpenPool runs MinIO in distributed mode on this machine: one
// erasure-coded pool over len(addrs) server processes, server i serving
// S3 on addrs[i] with its drive in o.DataDir/drive<i+1>. With four, the
// pool keeps reading and writing with any one server dead (parity 2 of
// 4: writes need three drives, reads two). Each server answers once the
// pool has its write quorum.
func OpenPool(ctx context.Context, o Options, addrs []string) ([]*Server, error) {
	var drives []string
	for i, a := range addrs {
		drives = append(drives, "http://"+a+filepath.Join(o.DataDir, fmt.Sprintf("drive%d", i+1)))
	}
	var servers []*Server
	closeAll := func() {
		for _, s := range servers {
			s.Close()
		}
	}
	for i, a := range addrs {
		so := o
		so.Address, so.Console, so.Drives = a, "", drives
		so.Env = append(slices.Clip(o.Env),
			// In a container (/.dockerenv) MinIO takes a loopback endpoint
			// for another machine's that has not resolved yet and waits
			// for it; this names the server's own.
			"_MINIO_SERVER_LOCAL="+a,
			// A distributed pool refuses drives on the root filesystem
			// unless they are larger than this; one server's folder is
			// allowed there, and so are the pool's on one machine.
			"MINIO_ROOTDISK_THRESHOLD_SIZE=1B")
		so.DataDir = filepath.Join(o.DataDir, fmt.Sprintf("drive%d", i+1))
		s, err := start(so)
		if err != nil {
			closeAll()
			return nil, err
		}
		servers = append(servers, s)
	}
	for _, s := range servers {
		if err := s.waitReady(ctx, 120*time.Second); err != nil {
			closeAll()
			return nil, fmt.Errorf("minio pool server %s: %w", s.opts.Address, err)
		}
	}
	return servers, nil
}

// start launches the server without waiting for it.
func start(o Options) (*Server, error) {
	if o.Binary == "" {
		b, err := FindBinary("minio")
		if err != nil {
			return nil, err
		}
		o.Binary = b
	}
	if err := os.MkdirAll(o.DataDir, 0o755); err != nil {
		return nil, fmt.Errorf("minio data dir: %w", err)
	}
	args := []string{"server", "--quiet", "--address", o.Address}
	if o.Console != "" {
		args = append(args, "--console-address", o.Console)
	}
	if len(o.Drives) > 0 {
		args = append(args, o.Drives...)
	} else {
		args = append(args, o.DataDir)
	}
	cmd := exec.Command(o.Binary, args...)
	cmd.Env = append(os.Environ(),
		"MINIO_ROOT_USER="+o.RootUser,
		"MINIO_ROOT_PASSWORD="+o.RootPassword,
		"MINIO_BROWSER=off",
		"MINIO_UPDATE=off",
	)
	cmd.Env = append(cmd.Env, o.Env...)
	cmd.Stdout, cmd.Stderr = o.Log, o.Log
	// Its own process group, so a signal to the test or CLI does not race it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start minio: %w", err)
	}
	s := &Server{opts: o, cmd: cmd, done: make(chan struct{})}
	go func() { s.err = cmd.Wait(); close(s.done) }()
	return s, nil
}

func (s *Server) waitReady(ctx context.Context, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	// /live answers before the object layer is up; /cluster only once it
	// has write quorum, which is when bucket calls stop failing with
	// "Server not initialized yet".
	url := "http://" + s.opts.Address + "/minio/health/cluster"
	for time.Now().Before(deadline) {
		select {
		case <-s.done:
			return fmt.Errorf("minio exited during start: %v", s.err)
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return errors.New("minio did not become ready in time")
}

// Endpoint is the S3 host:port.
func (s *Server) Endpoint() string { return s.opts.Address }

// Pid is the server's process id.
func (s *Server) Pid() int { return s.cmd.Process.Pid }

// Done is closed when the process has exited.
func (s *Server) Done() <-chan struct{} { return s.done }

// Options are the server's, for starting it again (Open) after a stop.
func (s *Server) Options() Options { return s.opts }

// Kill ends the server at once (SIGKILL: a crash, no shutdown) and waits.
func (s *Server) Kill() {
	_ = s.cmd.Process.Kill()
	<-s.done
}

// Close terminates the server and waits for it.
func (s *Server) Close() {
	select {
	case <-s.done:
		return
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
}
