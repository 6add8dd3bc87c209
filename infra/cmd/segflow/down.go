package main

import (
	"fmt"
	"syscall"
	"time"

	"github.com/spf13/cobra"
)

func downCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "down",
		Short: "Stop what `segflow up` started",
		RunE: func(cmd *cobra.Command, args []string) error {
			home, err := homeDir(cmd)
			if err != nil {
				return err
			}
			pid, ok := runningPid(home)
			if !ok {
				fmt.Fprintln(cmd.OutOrStdout(), "segflow is not running")
				return nil
			}
			if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
				return fmt.Errorf("stop pid %d: %w", pid, err)
			}
			for i := 0; i < 600; i++ {
				if syscall.Kill(pid, 0) != nil {
					fmt.Fprintf(cmd.OutOrStdout(), "segflow stopped (pid %d)\n", pid)
					return nil
				}
				time.Sleep(50 * time.Millisecond)
			}
			return fmt.Errorf("pid %d still running after 30s", pid)
		},
	}
}
