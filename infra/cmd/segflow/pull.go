package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/segflow/segflow/infra/relay/pull"
)

// pullsFile is where `segflow up`'s relay reads the streams it pulls.
func pullsFile(home string) string { return filepath.Join(home, "pulls") }

func pullCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "pull", Short: "Streams the relay pulls from other servers (RTMP, SRT, HTTP-FLV, HLS)"}
	cmd.AddCommand(&cobra.Command{
		Use:   "add NAME URL",
		Short: "Pull URL as live stream NAME (rtmp://..., srt://host:port?streamid=..., http(s)://....flv, http(s)://....m3u8)",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			src := pull.Source{Name: args[0], URL: args[1]}
			if err := src.Check(); err != nil {
				return err
			}
			return editPulls(cmd, func(srcs []pull.Source) ([]pull.Source, error) {
				for _, s := range srcs {
					if s.Name == src.Name {
						return nil, fmt.Errorf("%s is pulled already (segflow pull rm %s first)", s.Name, s.Name)
					}
				}
				return append(srcs, src), nil
			})
		},
	})
	cmd.AddCommand(&cobra.Command{
		Use:   "rm NAME",
		Short: "Stop pulling NAME",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return editPulls(cmd, func(srcs []pull.Source) ([]pull.Source, error) {
				for i, s := range srcs {
					if s.Name == args[0] {
						return append(srcs[:i], srcs[i+1:]...), nil
					}
				}
				return nil, fmt.Errorf("%s is not pulled", args[0])
			})
		},
	})
	cmd.AddCommand(&cobra.Command{
		Use:   "list",
		Short: "Show every pull's state, bit rate and last error",
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := client(cmd)
			if err != nil {
				return err
			}
			sts, err := c.Pulls(cmd.Context())
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 2, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tSTATE\tSINCE\tKBIT/S\tATTEMPTS\tURL\tERROR")
			for _, s := range sts {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%s\t%s\n", s.Name, s.State, time.Since(s.Since).Round(time.Second), s.Bitrate/1000, s.Attempts, s.URL, s.Error)
			}
			return tw.Flush()
		},
	})
	return cmd
}

// editPulls rewrites the pulls file of the stack at --home; its relay
// picks the change up within seconds.
func editPulls(cmd *cobra.Command, edit func([]pull.Source) ([]pull.Source, error)) error {
	home, err := homeDir(cmd)
	if err != nil {
		return err
	}
	path := pullsFile(home)
	srcs, err := pull.LoadFile(path)
	if err != nil {
		return err
	}
	if srcs, err = edit(srcs); err != nil {
		return err
	}
	var b strings.Builder
	b.WriteString("# name url: streams the relay pulls (segflow pull add/rm)\n")
	for _, s := range srcs {
		fmt.Fprintf(&b, "%s %s\n", s.Name, s.URL)
	}
	if err := os.MkdirAll(home, 0o700); err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(b.String()), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
