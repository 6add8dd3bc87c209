// Package fnserve is what the golang-media template's entrypoint runs: it
// serves one function's Handle over HTTP with /healthz, /_/health (the path
// of-watchdog probes) and /metrics beside it, recovers panics into a 500, and
// drains in-flight calls on SIGTERM.
//
// The listening socket is either handed in by the local runtime (socket
// activation: LISTEN_FDS=1 means fd 3 is a listener, so the runtime can
// queue the first call on it before the process has even started) or opened
// on $port (default 8082, the upstream port of-watchdog forwards to).
package fnserve

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/segflow/segflow/shared/config"
	"github.com/segflow/segflow/shared/telemetry"
	"github.com/segflow/segflow/shared/tracing"
	"github.com/segflow/segflow/shared/tracing/otlp"
)

// Main runs the function until SIGTERM or SIGINT and exits non-zero when the
// server could not start.
func Main(handle http.HandlerFunc) {
	name := config.Env("SEGFLOW_FUNCTION", config.Env("HOSTNAME", "function"))
	log := telemetry.NewLogger(os.Stderr, name)
	if err := run(name, handle, log); err != nil {
		log.Error("function stopped", "err", err)
		os.Exit(1)
	}
}

func run(name string, handle http.HandlerFunc, log *slog.Logger) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	shutdown, err := otlp.Setup(ctx, name)
	if err != nil {
		return err
	}
	defer func() {
		// Flush the spans of the last calls before the process goes.
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = shutdown(sctx)
	}()
	l, err := Listener()
	if err != nil {
		return err
	}
	return Serve(ctx, l, handle, log)
}

// Listener returns the socket-activated listener or a new one on $port.
func Listener() (net.Listener, error) {
	if os.Getenv("LISTEN_FDS") == "1" {
		f := os.NewFile(3, "listener")
		l, err := net.FileListener(f)
		f.Close() // FileListener dups it
		if err != nil {
			return nil, fmt.Errorf("inherited listener: %w", err)
		}
		return l, nil
	}
	addr := "127.0.0.1:" + config.Env("port", "8082")
	if config.Env("SEGFLOW_LISTEN_ALL", "") == "true" {
		addr = ":" + config.Env("port", "8082")
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", addr, err)
	}
	return l, nil
}

// Serve serves handle on l until ctx ends, then drains for up to
// $write_timeout (default 60s).
func Serve(ctx context.Context, l net.Listener, handle http.HandlerFunc, log *slog.Logger) error {
	reg := telemetry.NewRegistry()
	metrics := telemetry.NewHTTPMetrics(reg, "function")
	writeTimeout, err := config.Duration("write_timeout", 0)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("/healthz", telemetry.HealthHandler(nil))
	mux.Handle("/_/health", telemetry.HealthHandler(nil))
	mux.Handle("/metrics", telemetry.MetricsHandler(reg))
	name := config.Env("SEGFLOW_FUNCTION", config.Env("HOSTNAME", "function"))
	mux.Handle("/", metrics.Wrap(tracing.Handler(name, recoverPanics(handle, log))))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, WriteTimeout: writeTimeout}

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	drain := writeTimeout
	if drain <= 0 {
		drain = 60 * time.Second
	}
	sctx, cancel := context.WithTimeout(context.Background(), drain)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}

// recoverPanics turns a panic in one call into a 500 for that call, so a bad
// input cannot take the process (and every other in-flight call) down.
func recoverPanics(next http.HandlerFunc, log *slog.Logger) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				log.Error("handler panic", "panic", fmt.Sprint(v), "path", r.URL.Path)
				http.Error(w, "internal error", http.StatusInternalServerError)
			}
		}()
		next(w, r)
	}
}
