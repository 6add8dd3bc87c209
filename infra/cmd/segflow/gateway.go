package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/nats-io/nats.go"
	"github.com/spf13/cobra"

	"github.com/segflow/segflow/infra/provider"
	"github.com/segflow/segflow/infra/provider/gateway"
	"github.com/segflow/segflow/infra/queue"
	"github.com/segflow/segflow/shared/config"
	"github.com/segflow/segflow/shared/telemetry"
)

// gatewayCmd runs the runtime and gateway alone, with an embedded NATS
// unless --nats points at one: what `segflow up` runs inside, exposed for
// tests and for hosts that bring their own MinIO.
func gatewayCmd() *cobra.Command {
	var (
		port        int
		host        string
		authDir     string
		natsURL     string
		functionEnv []string
		concurrency int
		replicas    int
		callbacks   []string
	)
	cmd := &cobra.Command{
		Use:   "gateway",
		Short: "Run the local runtime as an OpenFaaS gateway",
		RunE: func(cmd *cobra.Command, args []string) error {
			home, repo, err := dirs(cmd)
			if err != nil {
				return err
			}
			log := telemetry.NewLogger(os.Stderr, "gateway")
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
			defer stop()
			var nc *nats.Conn
			if natsURL != "" {
				if nc, err = nats.Connect(natsURL, nats.MaxReconnects(-1)); err != nil {
					return fmt.Errorf("nats %s: %w", natsURL, err)
				}
			} else {
				ns, err := queue.Open(queue.Options{StoreDir: filepath.Join(home, "nats"), Port: -1})
				if err != nil {
					return err
				}
				defer ns.Close()
				if nc, err = ns.Connect("gateway"); err != nil {
					return err
				}
			}
			defer nc.Close()
			g, err := gateway.Open(ctx, gateway.Config{
				Runtime: provider.Config{Home: home, RepoRoot: repo, FunctionEnv: functionEnv, Logger: log},
				Host:    host, Port: port, AuthDir: authDir, NATS: nc,
				Async: provider.AsyncOptions{Concurrency: concurrency, Callbacks: provider.CallbackPolicy{Hosts: callbacks}, Replicas: replicas},
			})
			if err != nil {
				return err
			}
			defer g.Close()
			select {
			case err := <-g.Done():
				return fmt.Errorf("gateway: %w", err)
			case <-ctx.Done():
				return nil
			}
		},
	}
	cmd.Flags().IntVar(&port, "port", 8080, "gateway port")
	cmd.Flags().StringVar(&host, "host", "127.0.0.1", "address to listen on (0.0.0.0: every interface)")
	cmd.Flags().StringVar(&authDir, "auth-dir", "", "folder with basic-auth-user and basic-auth-password (empty: no auth)")
	cmd.Flags().StringVar(&natsURL, "nats", config.Env("NATS_URL", ""), "NATS URL, with the gateway's user and password if it asks (empty: embedded JetStream under the home folder)")
	cmd.Flags().StringArrayVar(&functionEnv, "function-env", nil, "KEY=VALUE given to every function (repeatable)")
	cmd.Flags().IntVar(&concurrency, "async-concurrency", 4, "async calls run at once")
	cmd.Flags().IntVar(&replicas, "replicas", 1, "JetStream nodes that keep the queued async calls (3 on a NATS cluster)")
	cmd.Flags().StringArrayVar(&callbacks, "callback-host", nil, "host an async call's X-Callback-Url may name even if it is not public (repeatable)")
	return cmd
}
