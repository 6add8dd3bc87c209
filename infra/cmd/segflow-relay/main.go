// Command segflow-relay is the live ingest relay on its own: the same
// command as `segflow relay`, linked without the gateway, router, catalog
// and runtime, so the one long-running media service stays small (its
// resident size is about half of the full segflow binary's when idle).
package main

import (
	"fmt"
	"os"

	"github.com/segflow/segflow/infra/cmd/internal/relaycmd"
)

func main() {
	cmd := relaycmd.New()
	cmd.Use = "segflow-relay"
	if err := cmd.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "segflow-relay:", err)
		os.Exit(1)
	}
}
