package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"text/tabwriter"

	"github.com/spf13/cobra"
)

func searchCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "search TEXT",
		Short: "Find where in which asset TEXT is shown or said",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := client(cmd)
			if err != nil {
				return err
			}
			q := ""
			for i, a := range args {
				if i > 0 {
					q += " "
				}
				q += a
			}
			req, err := http.NewRequestWithContext(cmd.Context(), http.MethodGet, c.URL+"/api/search?q="+url.QueryEscape(q), nil)
			if err != nil {
				return err
			}
			req.SetBasicAuth(c.User, c.Password)
			resp, err := c.HTTP.Do(req)
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b, _ := io.ReadAll(resp.Body)
				return fmt.Errorf("search: %d %s", resp.StatusCode, b)
			}
			var hits []struct {
				Asset, Kind, Snippet, Playback string
				Start, End                     float64
			}
			if err := json.NewDecoder(resp.Body).Decode(&hits); err != nil {
				return err
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 2, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ASSET\tFROM\tTO\tKIND\tMATCH\tPLAY")
			for _, h := range hits {
				fmt.Fprintf(tw, "%s\t%.1f\t%.1f\t%s\t%s\t%s\n", h.Asset, h.Start, h.End, h.Kind, h.Snippet, h.Playback)
			}
			return tw.Flush()
		},
	}
}
