package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/nats-io/nats.go"
	"github.com/spf13/cobra"

	"github.com/segflow/segflow/infra/gwclient"
	"github.com/segflow/segflow/infra/router"
	"github.com/segflow/segflow/shared/config"
	"github.com/segflow/segflow/shared/storage"
	"github.com/segflow/segflow/shared/telemetry"
)

// routerCmd runs the event router alone: its shape on Kubernetes, where
// it is an OpenFaaS connector beside the gateway. Secrets come as files or
// environment: webhook-token, gateway basic auth, S3 keys (dead letters).
func routerCmd() *cobra.Command {
	var addr, natsURL, sqsQueue string
	var replicas int
	cmd := &cobra.Command{
		Use:   "router",
		Short: "Run the event router: bucket notifications -> CloudEvents -> functions",
		RunE: func(cmd *cobra.Command, args []string) error {
			log := telemetry.NewLogger(os.Stderr, "router")
			// The webhook token is needed only when MinIO posts to us; on AWS
			// the notifications come from SQS.
			token, err := config.Secret("webhook-token")
			if err != nil && sqsQueue == "" {
				return err
			}
			gw, err := client(cmd)
			if err != nil {
				return err
			}
			if gw.User == "" {
				gw = gwclient.New(gw.URL, config.SecretOr("basic-auth-user", "admin"), config.SecretOr("basic-auth-password", ""))
			}
			var store *storage.Client
			if opts, err := storage.OptionsFromEnv(""); err == nil {
				if store, err = storage.New(opts); err != nil {
					return err
				}
			}
			nc, err := nats.Connect(natsURL, nats.MaxReconnects(-1))
			if err != nil {
				return fmt.Errorf("nats %s: %w", natsURL, err)
			}
			defer nc.Close()
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
			defer stop()
			reg := telemetry.NewRegistry()
			rc := router.Config{NATS: nc, Gateway: gw, Token: token, Storage: store, Logger: log, Registerer: reg, Replicas: replicas}
			if sqsQueue == "" {
				// MinIO's webhook drops what the router misses; SQS keeps it.
				rc.CatchUpBucket = config.Env("S3_BUCKET", "media")
			}
			if sqsQueue != "" {
				// Region, credentials and any endpoint override
				// (AWS_ENDPOINT_URL_SQS) the AWS way: environment, profile,
				// or the instance/pod role.
				cfg, err := awsconfig.LoadDefaultConfig(ctx)
				if err != nil {
					return fmt.Errorf("aws config: %w", err)
				}
				rc.SQS = &router.SQSSource{Client: sqs.NewFromConfig(cfg), QueueURL: sqsQueue}
			}
			r, err := router.Open(ctx, rc)
			if err != nil {
				return err
			}
			defer r.Close()
			mux := http.NewServeMux()
			mux.Handle("/events/minio", r.WebhookHandler())
			mux.Handle("/healthz", telemetry.HealthHandler(func() error {
				if !nc.IsConnected() {
					return fmt.Errorf("nats disconnected")
				}
				return nil
			}))
			mux.Handle("/metrics", telemetry.MetricsHandler(reg))
			srv := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
			go func() { <-ctx.Done(); srv.Close() }()
			log.Info("router listening", "addr", addr, "gateway", gw.URL)
			if err := srv.ListenAndServe(); err != nil && err != http.ErrServerClosed {
				return err
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&addr, "listen", ":8085", "address of /events/minio, /healthz and /metrics")
	cmd.Flags().StringVar(&sqsQueue, "sqs-queue-url", config.Env("SEGFLOW_SQS_QUEUE_URL", ""),
		"also read S3 notifications from this SQS queue (AWS: S3 -> SQS, or S3 -> SNS -> SQS)")
	cmd.Flags().StringVar(&natsURL, "nats", config.Env("NATS_URL", "nats://nats.openfaas:4222"),
		"NATS with JetStream (a cluster: its nodes' URLs, comma-separated)")
	cmd.Flags().IntVar(&replicas, "replicas", 1, "JetStream nodes that keep the deliveries, dead letters and checkpoint (3 on a NATS cluster)")
	return cmd
}
