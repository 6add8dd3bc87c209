package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/openfaas/faas-provider/logs"
)

// logsCmd prints a function's output, like `faas-cli logs`.
func logsCmd() *cobra.Command {
	var tail int
	var follow bool
	cmd := &cobra.Command{
		Use:   "logs FUNCTION",
		Short: "Print a function's logs",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := client(cmd)
			if err != nil {
				return err
			}
			return c.Logs(cmd.Context(), args[0], tail, follow, func(m logs.Message) {
				fmt.Fprintf(cmd.OutOrStdout(), "%s %s (%s) %s\n", m.Timestamp.Format("2006-01-02T15:04:05.000Z07:00"), m.Name, m.Instance, m.Text)
			})
		},
	}
	cmd.Flags().IntVar(&tail, "tail", -1, "only the last N lines (-1: all)")
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing new lines")
	return cmd
}
