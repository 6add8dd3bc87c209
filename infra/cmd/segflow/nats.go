package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/segflow/segflow/infra/queue"
	"github.com/segflow/segflow/shared/telemetry"
)

// natsCmd runs one node of segflow's queue as a process of its own: what
// `segflow up --nodes 3` starts three of, so a node can die (kill -9)
// without the rest of the stack. The users' and the routes' passwords are
// files of the auth folder (nats-<user>-password, nats-route-password).
func natsCmd() *cobra.Command {
	var (
		store, node, cluster, authDir string
		host                          string
		port, clusterPort             int
		routes                        []string
	)
	cmd := &cobra.Command{
		Use:   "nats",
		Short: "Run one NATS JetStream node of segflow's queue (a cluster with --routes)",
		RunE: func(cmd *cobra.Command, args []string) error {
			log := telemetry.NewLogger(os.Stderr, "nats")
			users := map[string]string{}
			for _, u := range natsUsers {
				pw, err := os.ReadFile(filepath.Join(authDir, "nats-"+u+"-password"))
				if err != nil {
					return fmt.Errorf("nats user %s: %w", u, err)
				}
				users[u] = strings.TrimSpace(string(pw))
			}
			o := queue.Options{StoreDir: store, Host: host, Port: port, Users: users}
			if len(routes) > 0 {
				pw, err := os.ReadFile(filepath.Join(authDir, "nats-route-password"))
				if err != nil {
					return fmt.Errorf("nats routes: %w", err)
				}
				o.Cluster = &queue.Cluster{Name: cluster, Node: node, Port: clusterPort, Routes: routes,
					User: "route", Password: strings.TrimSpace(string(pw))}
			}
			ns, err := queue.Open(o)
			if err != nil {
				return err
			}
			defer ns.Close()
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
			defer stop()
			wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
			defer cancel()
			if err := ns.WaitClustered(wctx); err != nil {
				return err
			}
			log.Info("nats node up", "node", node, "client", ns.ClientURL(), "routes", ns.RouteAddr())
			<-ctx.Done()
			return nil
		},
	}
	cmd.Flags().StringVar(&store, "store", "", "JetStream's folder")
	cmd.Flags().StringVar(&host, "host", "127.0.0.1", "address the client and route ports listen on (0.0.0.0: every interface, for nodes on other machines)")
	cmd.Flags().IntVar(&port, "port", 4222, "client port")
	cmd.Flags().StringVar(&node, "node", "segflow", "this node's name in its cluster")
	cmd.Flags().StringVar(&cluster, "cluster", "segflow", "the cluster's name")
	cmd.Flags().IntVar(&clusterPort, "cluster-port", 6222, "route port the other nodes dial")
	cmd.Flags().StringSliceVar(&routes, "routes", nil, "the other nodes' route addresses, host:port (none: a single server)")
	cmd.Flags().StringVar(&authDir, "auth-dir", "", "folder with the nats-*-password files")
	_ = cmd.MarkFlagRequired("store")
	_ = cmd.MarkFlagRequired("auth-dir")
	return cmd
}
