// Package gateway serves the local runtime as an OpenFaaS gateway: the REST
// API faas-provider defines (/system/*, /function/*, /async-function/*,
// /healthz, /metrics) with basic auth on /system/*, on 127.0.0.1 unless
// told otherwise.
package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/gorilla/mux"
	"github.com/nats-io/nats.go"
	"github.com/openfaas/faas-provider/auth"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/segflow/segflow/infra/provider"
)

// Config configures the gateway.
type Config struct {
	Runtime provider.Config
	// Host is the address the gateway listens on: 127.0.0.1 unless told
	// otherwise (0.0.0.0 serves every interface).
	Host string
	// Port is the gateway's TCP port (8080 by default, as OpenFaaS).
	Port int
	// AuthDir holds basic-auth-user and basic-auth-password; empty turns
	// authentication off (tests of the open endpoints only).
	AuthDir string
	// NATS carries the durable async queue.
	NATS  *nats.Conn
	Async provider.AsyncOptions
	// Routes adds endpoints beside the gateway's (the router's webhook, the
	// catalog API) before serving starts.
	Routes func(r *mux.Router)
}

// Gateway is a serving gateway: the OpenFaaS API, the function runtime
// under it and the async queue.
type Gateway struct {
	Runtime *provider.Runtime
	srv     *http.Server
	queue   *provider.AsyncQueue
	served  chan error
}

// Open starts the runtime and the async queue and serves the gateway on
// its port; it returns once the port accepts calls. Close stops it.
func Open(ctx context.Context, cfg Config) (*Gateway, error) {
	log := cfg.Runtime.Logger
	if log == nil {
		log = slog.Default()
		cfg.Runtime.Logger = log
	}
	if cfg.Port == 0 {
		cfg.Port = 8080
	}
	if cfg.Host == "" {
		cfg.Host = "127.0.0.1"
	}
	if cfg.NATS == nil {
		return nil, errors.New("gateway: no NATS connection for the async queue")
	}
	var creds *auth.BasicAuthCredentials
	if cfg.AuthDir != "" {
		c, err := (&auth.ReadBasicAuthFromDisk{SecretMountPath: cfg.AuthDir}).Read()
		if err != nil {
			return nil, fmt.Errorf("gateway auth: %w", err)
		}
		creds = c
	}
	addr := net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.Port))
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("gateway %s: %w", addr, err)
	}
	// The runtime's metrics go to the default registry, which /metrics
	// serves.
	cfg.Runtime.Registerer = prometheus.DefaultRegisterer
	rt, err := provider.Open(ctx, cfg.Runtime)
	if err != nil {
		l.Close()
		return nil, err
	}
	cfg.Async.Logger = log
	q, err := provider.OpenAsync(ctx, cfg.NATS, rt, cfg.Async)
	if err != nil {
		rt.Close()
		l.Close()
		return nil, err
	}
	r := mux.NewRouter()
	r.Use(func(h http.Handler) http.Handler { return sameOriginWrites(h) })
	if cfg.Routes != nil {
		cfg.Routes(r)
	}
	registerAPI(r, rt, q, creds, log, func() error {
		if !cfg.NATS.IsConnected() {
			return errors.New("nats disconnected")
		}
		return nil
	})
	g := &Gateway{Runtime: rt, queue: q, served: make(chan error, 1), srv: &http.Server{
		Handler:        r,
		ReadTimeout:    time.Minute, // headers and body; a call's body has its own 30 s (provider.Invoke)
		WriteTimeout:   15 * time.Minute,
		MaxHeaderBytes: http.DefaultMaxHeaderBytes,
	}}
	go func() { g.served <- g.srv.Serve(l) }()
	log.Info("gateway listening", "addr", addr, "auth", creds != nil)
	return g, nil
}

// Done yields the error that ended serving before Close.
func (g *Gateway) Done() <-chan error { return g.served }

// Close stops taking calls, lets the running ones finish (up to 20 s),
// then stops the async worker and every function.
func (g *Gateway) Close() {
	sctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_ = g.srv.Shutdown(sctx)
	g.queue.Close()
	g.Runtime.Close()
}
