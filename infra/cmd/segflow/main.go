// Command segflow is the one CLI of segflow: it brings the local stack up
// and down, runs the gateway, deploys stack.yml, invokes functions and reads
// their logs, against the local runtime or any OpenFaaS gateway.
package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/segflow/segflow/shared/tracing/otlp"
)

func main() {
	root := &cobra.Command{
		Use:           "segflow",
		Short:         "segflow: a serverless media pipeline",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	// Every command traces as segflow-<command> when an OTLP endpoint is
	// set: the router's spans start each event's trace.
	var flush func(context.Context) error
	root.PersistentPreRunE = func(cmd *cobra.Command, _ []string) error {
		var err error
		flush, err = otlp.Setup(cmd.Context(), "segflow-"+cmd.Name())
		return err
	}
	root.PersistentPostRun = func(*cobra.Command, []string) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = flush(ctx)
	}
	root.PersistentFlags().String("home", "", "state folder (default $SEGFLOW_HOME, else .segflow in the repository)")
	root.PersistentFlags().String("repo", "", "repository root (default: found from the working folder)")
	root.PersistentFlags().String("gateway", "", "gateway URL (default $OPENFAAS_URL, else the local stack's)")
	root.AddCommand(upCmd(), downCmd(), gatewayCmd(), deployCmd(), invokeCmd(), logsCmd(), dlqCmd(), pullCmd(),
		grantCmd(), playCmd(), uploadCmd(), statusCmd(), waitCmd(), relayCmd(), routerCmd(), searchCmd(), watchdogCmd(), natsCmd(), capacityCmd())
	if err := root.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "segflow:", err)
		os.Exit(1)
	}
}
