package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"
)

// playCmd prints the URL a player opens for an asset: the bucket's for a
// public asset, a signed one that expires for a private asset.
func playCmd() *cobra.Command {
	var ttl time.Duration
	cmd := &cobra.Command{
		Use:   "play ASSET",
		Short: "Print the asset's playback URL (signed and expiring for a private asset)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := client(cmd)
			if err != nil {
				return err
			}
			p, err := c.PlaybackURL(cmd.Context(), args[0], ttl)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), p.URL)
			if p.Expires != nil {
				fmt.Fprintf(cmd.ErrOrStderr(), "valid until %s\n", p.Expires.Local().Format(time.RFC3339))
			}
			if p.License != "" {
				fmt.Fprintf(cmd.ErrOrStderr(), "Clear Key license (hls.js drmSystems licenseUrl, dash.js serverURL): %s\n", p.License)
			}
			return nil
		},
	}
	cmd.Flags().DurationVar(&ttl, "ttl", 0, "how long a private asset's URL stays valid (default 4h, at most 168h)")
	return cmd
}
