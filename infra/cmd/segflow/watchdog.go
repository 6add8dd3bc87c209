package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/segflow/segflow/infra/watchdog"
	"github.com/segflow/segflow/shared/config"
	"github.com/segflow/segflow/shared/fnserve"
	"github.com/segflow/segflow/shared/telemetry"
)

// watchdogCmd is what the local runtime runs as a replica of a deployment
// that names an fprocess instead of one of the repository's functions: the
// classic watchdog, a command forked per request.
func watchdogCmd() *cobra.Command {
	return &cobra.Command{
		Use:    "watchdog",
		Short:  "Run $fprocess once per request (OpenFaaS classic watchdog), for the local runtime",
		Hidden: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			name := config.Env("SEGFLOW_FUNCTION", "function")
			log := telemetry.NewLogger(os.Stderr, name)
			cfg, err := watchdog.ConfigFromEnv()
			if err != nil {
				return err
			}
			if dir := os.Getenv("SEGFLOW_SECRETS_DIR"); dir != "" {
				if err := watchdog.MountSecrets(dir); err != nil {
					log.Warn("secrets not at /var/openfaas/secrets", "err", err.Error())
				}
			}
			h, err := watchdog.New(cfg)
			if err != nil {
				return err
			}
			l, err := fnserve.Listener()
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
			defer stop()
			return fnserve.Serve(ctx, l, h.ServeHTTP, log)
		},
	}
}
