// Command segflow is the one CLI of segflow: it brings the local stack up
// and down, runs the gateway, deploys stack.yml, invokes functions and reads
// their logs, against the local runtime or any OpenFaaS gateway.
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

func main() {
	root := &cobra.Command{
		Use:           "segflow",
		Short:         "segflow: a serverless media pipeline",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().String("home", "", "state folder (default $SEGFLOW_HOME, else .segflow in the repository)")
	root.PersistentFlags().String("repo", "", "repository root (default: found from the working folder)")
	root.PersistentFlags().String("gateway", "", "gateway URL (default $OPENFAAS_URL, else the local stack's)")
	root.AddCommand(upCmd(), downCmd(), gatewayCmd(), deployCmd(), invokeCmd(), logsCmd(), dlqCmd(),
		uploadCmd(), statusCmd(), waitCmd(), relayCmd(), routerCmd(), searchCmd())
	if err := root.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "segflow:", err)
		os.Exit(1)
	}
}
