package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/segflow/segflow/infra/stack"
)

// deployCmd deploys every function of a stack file, or those named, the
// way `faas-cli deploy` does (PUT, then POST when the gateway says 404).
func deployCmd() *cobra.Command {
	var file, filter, regex string
	var remote bool
	cmd := &cobra.Command{
		Use:   "deploy [FUNCTION...]",
		Short: "Deploy the functions of a stack file",
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := stack.Parse(file, stack.Options{Filter: filter, Regex: regex})
			if err != nil {
				return err
			}
			c, err := client(cmd)
			if err != nil {
				return err
			}
			names := args
			if len(names) == 0 {
				names = st.Names()
			}
			for _, n := range names {
				if _, ok := st.Functions[n]; !ok {
					return fmt.Errorf("function %s is not in %s", n, file)
				}
				dep, err := st.LocalDeployment(n)
				if remote {
					dep, err = st.Deployment(n)
				}
				if err != nil {
					return err
				}
				if err := c.Deploy(cmd.Context(), dep); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "deployed %s (%s)\n", n, dep.Image)
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "stack.yml", "stack file")
	cmd.Flags().StringVar(&filter, "filter", "", "deploy only the functions whose names match this glob (as faas-cli)")
	cmd.Flags().StringVar(&regex, "regex", "", "deploy only the functions whose names match this regular expression (as faas-cli)")
	cmd.Flags().BoolVar(&remote, "remote", false, "send exactly what faas-cli sends (no local handler path)")
	return cmd
}
