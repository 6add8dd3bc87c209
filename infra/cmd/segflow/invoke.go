package main

import (
	"fmt"
	"io"
	"net/http"
	"os"

	"github.com/spf13/cobra"
)

// invokeCmd calls a function with standard input as the body, like
// `faas-cli invoke`.
func invokeCmd() *cobra.Command {
	var async bool
	var callback, contentType string
	var headers []string
	cmd := &cobra.Command{
		Use:   "invoke FUNCTION",
		Short: "Call a function with standard input as the request body",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := client(cmd)
			if err != nil {
				return err
			}
			h := http.Header{}
			if contentType != "" {
				h.Set("Content-Type", contentType)
			}
			for _, kv := range headers {
				k, v, ok := cutHeader(kv)
				if !ok {
					return fmt.Errorf("header %q: want Name=Value", kv)
				}
				h.Add(k, v)
			}
			if async {
				id, err := c.InvokeAsync(cmd.Context(), args[0], callback, h, cmd.InOrStdin())
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "queued, call id %s\n", id)
				return nil
			}
			resp, err := c.Invoke(cmd.Context(), args[0], h, cmd.InOrStdin())
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			if _, err := io.Copy(cmd.OutOrStdout(), resp.Body); err != nil {
				return err
			}
			if resp.StatusCode/100 != 2 {
				fmt.Fprintf(os.Stderr, "\nfunction %s answered %s\n", args[0], resp.Status)
				return fmt.Errorf("status %d", resp.StatusCode)
			}
			return nil
		},
	}
	cmd.Flags().BoolVarP(&async, "async", "a", false, "queue the call (/async-function)")
	cmd.Flags().StringVar(&callback, "callback", "", "URL that receives an async call's result")
	cmd.Flags().StringVar(&contentType, "content-type", "", "request Content-Type")
	cmd.Flags().StringArrayVarP(&headers, "header", "H", nil, "extra header Name=Value (repeatable)")
	return cmd
}

func cutHeader(kv string) (string, string, bool) {
	for i := 0; i < len(kv); i++ {
		if kv[i] == '=' || kv[i] == ':' {
			return kv[:i], kv[i+1:], i > 0
		}
	}
	return "", "", false
}
