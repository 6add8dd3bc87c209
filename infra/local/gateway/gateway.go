// Package gateway puts the local runtime behind faas-provider's bootstrap,
// so it answers the OpenFaaS gateway REST API (/system/*, /function/*,
// /async-function/*, /healthz, /metrics) with basic auth on /system/*.
package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/gorilla/mux"
	"github.com/nats-io/nats.go"
	bootstrap "github.com/openfaas/faas-provider"
	"github.com/openfaas/faas-provider/types"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/segflow/segflow/infra/local"
	"github.com/segflow/segflow/infra/local/handlers"
)

// Config configures the gateway.
type Config struct {
	Runtime local.Config
	// Port is the gateway's TCP port (8080 by default, as OpenFaaS).
	Port int
	// AuthDir holds basic-auth-user and basic-auth-password; empty turns
	// authentication off (tests of the open endpoints only).
	AuthDir string
	// NATS carries the durable async queue.
	NATS  *nats.Conn
	Async local.AsyncOptions
	// Routes adds endpoints beside the gateway's (the router's webhook, the
	// catalog API) before serving starts.
	Routes func(r *mux.Router)
	// Ready is called once the port accepts connections.
	Ready func(rt *local.Runtime)
}

// Run serves until ctx ends, then stops the async worker and every function.
func Run(ctx context.Context, cfg Config) error {
	log := cfg.Runtime.Logger
	if log == nil {
		log = slog.Default()
		cfg.Runtime.Logger = log
	}
	if cfg.Port == 0 {
		cfg.Port = 8080
	}
	// bootstrap.Serve exits the process on a busy port; find out first.
	l, err := net.Listen("tcp", ":"+strconv.Itoa(cfg.Port))
	if err != nil {
		return fmt.Errorf("gateway port %d: %w", cfg.Port, err)
	}
	l.Close()
	if cfg.AuthDir != "" {
		for _, f := range []string{"basic-auth-user", "basic-auth-password"} {
			if _, err := os.Stat(filepath.Join(cfg.AuthDir, f)); err != nil {
				return fmt.Errorf("gateway auth: %w", err)
			}
		}
	}
	// faas-provider registers its HTTP metrics on the default registry and
	// serves /metrics from it, so the runtime's metrics go there too.
	cfg.Runtime.Registerer = prometheus.DefaultRegisterer
	rt, err := local.Open(ctx, cfg.Runtime)
	if err != nil {
		return err
	}
	defer rt.Close()
	if cfg.NATS == nil {
		return errors.New("gateway: no NATS connection for the async queue")
	}
	cfg.Async.Logger = log
	q, err := local.OpenAsync(ctx, cfg.NATS, rt, cfg.Async)
	if err != nil {
		return err
	}
	defer q.Close()

	r := bootstrap.Router()
	r.Use(func(h http.Handler) http.Handler { return sameOriginWrites(h) })
	async := handlers.MakeAsyncHandler(rt, q, log)
	r.HandleFunc("/async-function/{name:["+bootstrap.NameExpression+"]+}", async).Methods(http.MethodPost)
	r.HandleFunc("/async-function/{name:["+bootstrap.NameExpression+"]+}/{params:.*}", async).Methods(http.MethodPost)
	if cfg.Routes != nil {
		cfg.Routes(r)
	}
	fh := &types.FaaSHandlers{
		FunctionProxy:  handlers.MakeProxyHandler(rt),
		FunctionLister: handlers.MakeListHandler(rt),
		DeployFunction: handlers.MakeDeployHandler(rt, log),
		UpdateFunction: handlers.MakeUpdateHandler(rt, log),
		DeleteFunction: handlers.MakeDeleteHandler(rt, log),
		FunctionStatus: handlers.MakeStatusHandler(rt),
		ScaleFunction:  handlers.MakeScaleHandler(rt, log),
		Secrets:        handlers.MakeSecretHandler(rt, log),
		Logs:           handlers.MakeLogHandler(rt),
		Health: handlers.MakeHealthHandler(func() error {
			if !cfg.NATS.IsConnected() {
				return errors.New("nats disconnected")
			}
			return nil
		}),
		Info:           handlers.MakeInfoHandler(),
		ListNamespaces: handlers.MakeNamespacesHandler(),
	}
	port := cfg.Port
	fc := &types.FaaSConfig{
		TCPPort:         &port,
		ReadTimeout:     time.Minute, // headers and body; a call's body has its own 30 s (local.Invoke)
		WriteTimeout:    15 * time.Minute,
		EnableBasicAuth: cfg.AuthDir != "",
		SecretMountPath: cfg.AuthDir,
	}
	if cfg.Ready != nil {
		go waitReady(ctx, port, func() { cfg.Ready(rt) })
	}
	log.Info("gateway listening", "port", port, "auth", cfg.AuthDir != "")
	bootstrap.Serve(ctx, fh, fc)
	return nil
}

func waitReady(ctx context.Context, port int, ready func()) {
	for ctx.Err() == nil {
		c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), time.Second)
		if err == nil {
			c.Close()
			ready()
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}
