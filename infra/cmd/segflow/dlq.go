package main

import (
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"
)

func dlqCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "dlq", Short: "List and replay the router's dead letters"}
	cmd.AddCommand(&cobra.Command{
		Use:   "list",
		Short: "List events that exhausted their delivery attempts",
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := client(cmd)
			if err != nil {
				return err
			}
			dls, err := c.DeadLetters(cmd.Context())
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 2, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tFUNCTION\tATTEMPTS\tAT\tERROR")
			for _, d := range dls {
				fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\n", d.ID, d.Function, d.Attempts, d.At.Format("2006-01-02T15:04:05Z"), d.Error)
			}
			return tw.Flush()
		},
	})
	var all bool
	replay := &cobra.Command{
		Use:   "replay [ID]",
		Short: "Queue a dead letter again (--all for every one)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 && !all {
				return fmt.Errorf("name a dead letter id or pass --all")
			}
			c, err := client(cmd)
			if err != nil {
				return err
			}
			id := ""
			if len(args) == 1 {
				id = args[0]
			}
			n, err := c.Replay(cmd.Context(), id)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "replayed %d\n", n)
			return nil
		},
	}
	replay.Flags().BoolVar(&all, "all", false, "replay every dead letter")
	cmd.AddCommand(replay)
	return cmd
}
