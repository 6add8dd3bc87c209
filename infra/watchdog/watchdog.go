// Package watchdog is OpenFaaS's classic watchdog for the local runtime: a
// deployment whose image is not one of the repository's functions but names
// an fprocess ("cat", "sha512sum", "env") runs that command once per
// request, as the classic watchdog does inside an OpenFaaS container. The
// request body is the command's stdin, its stdout the response, request
// headers arrive as Http_* environment variables, and a non-zero exit is a
// 500 carrying stderr.
package watchdog

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/segflow/segflow/shared/config"
)

// Config is what the classic watchdog reads from its environment.
type Config struct {
	// FProcess is the command run per request, split on spaces as the
	// classic watchdog splits it (no shell).
	FProcess string
	// ExecTimeout ends a command that runs longer (0: no limit).
	ExecTimeout time.Duration
	// ReadTimeout and WriteTimeout bound the HTTP exchange.
	ReadTimeout, WriteTimeout time.Duration
	// MaxInflight answers 429 past this many commands at once (0: no limit).
	MaxInflight int
	// ContentType, when set, is every response's Content-Type; otherwise the
	// request's is echoed, as the classic watchdog does.
	ContentType string
	// MaxBody bounds a request body read into memory for stdin.
	MaxBody int64
	// Log receives the classic watchdog's lines ("Forking fprocess.",
	// "Wrote N Bytes - Duration: ..."), the format OpenFaaS tools read.
	Log *log.Logger
}

// ConfigFromEnv reads the classic watchdog's variables: fprocess,
// exec_timeout, read_timeout, write_timeout (durations, or seconds as a bare
// number), max_inflight and content_type.
func ConfigFromEnv() (Config, error) {
	c := Config{
		FProcess:    strings.TrimSpace(os.Getenv("fprocess")),
		ContentType: os.Getenv("content_type"),
		MaxBody:     64 << 20,
		Log:         log.New(os.Stderr, "", log.LstdFlags),
	}
	if c.FProcess == "" {
		return c, errors.New("watchdog: fprocess is empty: set the command to run per request")
	}
	for _, d := range []struct {
		key string
		dst *time.Duration
		def time.Duration
	}{
		{"exec_timeout", &c.ExecTimeout, 0},
		{"read_timeout", &c.ReadTimeout, 10 * time.Second},
		{"write_timeout", &c.WriteTimeout, 10 * time.Second},
	} {
		*d.dst = d.def
		if v := os.Getenv(d.key); v != "" {
			p, err := parseTimeout(v)
			if err != nil {
				return c, fmt.Errorf("watchdog: %s=%q: %w", d.key, v, err)
			}
			*d.dst = p
		}
	}
	if v := os.Getenv("max_inflight"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return c, fmt.Errorf("watchdog: max_inflight=%q: want a whole number", v)
		}
		c.MaxInflight = n
	}
	return c, nil
}

// parseTimeout takes "10s", "2m" or a bare number of seconds, as the
// classic watchdog does.
func parseTimeout(v string) (time.Duration, error) {
	if n, err := strconv.Atoi(v); err == nil {
		return time.Duration(n) * time.Second, nil
	}
	return config.ParseDuration(v)
}

// Handler runs the command once per request.
type Handler struct {
	cfg      Config
	argv     []string
	inflight atomic.Int64
}

// New checks cfg and returns the per-request handler.
func New(cfg Config) (*Handler, error) {
	if err := Check(cfg.FProcess, ""); err != nil {
		return nil, fmt.Errorf("watchdog: %w", err)
	}
	argv := strings.Fields(cfg.FProcess)
	if cfg.Log == nil {
		cfg.Log = log.New(io.Discard, "", 0)
	}
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = 64 << 20
	}
	return &Handler{cfg: cfg, argv: argv}, nil
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h.cfg.MaxInflight > 0 {
		if n := h.inflight.Add(1); n > int64(h.cfg.MaxInflight) {
			h.inflight.Add(-1)
			http.Error(w, "Concurrent request limit exceeded. Max concurrent requests: "+strconv.Itoa(h.cfg.MaxInflight), http.StatusTooManyRequests)
			return
		}
		defer h.inflight.Add(-1)
	}
	start := time.Now()
	body, err := io.ReadAll(io.LimitReader(r.Body, h.cfg.MaxBody+1))
	if err != nil {
		http.Error(w, "read request body: "+err.Error(), http.StatusBadRequest)
		return
	}
	if int64(len(body)) > h.cfg.MaxBody {
		http.Error(w, fmt.Sprintf("request body over %d bytes", h.cfg.MaxBody), http.StatusRequestEntityTooLarge)
		return
	}
	ctx := r.Context()
	if h.cfg.ExecTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, h.cfg.ExecTimeout)
		defer cancel()
	}
	cmd := exec.CommandContext(ctx, h.argv[0], h.argv[1:]...)
	cmd.Env = append(os.Environ(), requestEnv(r)...)
	cmd.Stdin = bytes.NewReader(body)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	// Its own process group, so a timeout also ends what the command forked.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	h.cfg.Log.Printf("Forking fprocess.")
	err = cmd.Run()
	if stderr.Len() > 0 {
		h.cfg.Log.Printf("stderr: %s", strings.TrimRight(stderr.String(), "\n"))
	}
	if err != nil {
		code := http.StatusInternalServerError
		msg := fmt.Sprintf("%s: %v\n%s", h.cfg.FProcess, err, stderr.String())
		if ctx.Err() == context.DeadlineExceeded && r.Context().Err() == nil {
			code = http.StatusRequestTimeout
			msg = fmt.Sprintf("%s: killed after exec_timeout %s\n", h.cfg.FProcess, h.cfg.ExecTimeout)
		}
		h.cfg.Log.Printf("Error: %s", strings.TrimSpace(msg))
		http.Error(w, msg, code)
		return
	}
	ct := h.cfg.ContentType
	if ct == "" {
		ct = r.Header.Get("Content-Type")
	}
	if ct != "" {
		w.Header().Set("Content-Type", ct)
	}
	w.Header().Set("X-Duration-Seconds", strconv.FormatFloat(time.Since(start).Seconds(), 'f', 6, 64))
	w.WriteHeader(http.StatusOK)
	n, _ := w.Write(stdout.Bytes())
	h.cfg.Log.Printf("Wrote %d Bytes - Duration: %.6f seconds", n, time.Since(start).Seconds())
}

// requestEnv is the request as the classic watchdog's Http_* variables:
// each header with '-' as '_' (Http_Content_Type, Http_X_Call_Id), and
// Http_Method, Http_Path, Http_Query, Http_Host, Http_ContentLength.
func requestEnv(r *http.Request) []string {
	env := make([]string, 0, len(r.Header)+5)
	for k, vs := range r.Header {
		env = append(env, "Http_"+strings.ReplaceAll(k, "-", "_")+"="+strings.Join(vs, ","))
	}
	env = append(env,
		"Http_Method="+r.Method,
		"Http_ContentLength="+strconv.FormatInt(r.ContentLength, 10),
		"Http_Path="+r.URL.Path,
		"Http_Host="+r.Host,
	)
	if r.URL.RawQuery != "" {
		env = append(env, "Http_Query="+r.URL.RawQuery)
	}
	return env
}

// Check says whether fprocess's program exists here: on $PATH, or as a
// file relative to dir (the replica's working folder) when it names a
// path. The runtime asks at deploy, so a command only an image has
// ("./handler") fails with a reason instead of answering 500 on every
// call; New asks again where the replica runs.
func Check(fprocess, dir string) error {
	argv := strings.Fields(fprocess)
	if len(argv) == 0 {
		return errors.New("fprocess is empty")
	}
	prog := argv[0]
	if strings.Contains(prog, "/") {
		if !filepath.IsAbs(prog) {
			prog = filepath.Join(dir, prog)
		}
		if st, err := os.Stat(prog); err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
			return fmt.Errorf("fprocess %q: %s is no executable on this machine (it exists only in the image)", fprocess, argv[0])
		}
		return nil
	}
	if _, err := exec.LookPath(prog); err != nil {
		return fmt.Errorf("fprocess %q: %s is not installed on this machine: %w", fprocess, prog, err)
	}
	return nil
}
