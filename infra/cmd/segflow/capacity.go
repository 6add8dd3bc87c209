package main

import (
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/segflow/segflow/infra/capacity"
)

func capacityCmd() *cobra.Command {
	o := capacity.DefaultOptions()
	var write string
	cmd := &cobra.Command{
		Use:   "capacity [BENCH_OUTPUT...]",
		Short: "The capacity model from benchmark output (scripts/capacity makes it): machines for a load, and the first bottleneck",
		Long: "Reads `go test -bench` output (files, or stdin when none) holding BenchmarkUploadCost, BenchmarkBucketToFunction and\n" +
			"BenchmarkRelayAtSize results, and prints the capacity model as Markdown, or writes it into a document's\n" +
			capacity.Begin + " section (--write).",
		RunE: func(cmd *cobra.Command, args []string) error {
			var in io.Reader = cmd.InOrStdin()
			if len(args) > 0 {
				var readers []io.Reader
				for _, a := range args {
					f, err := os.Open(a)
					if err != nil {
						return err
					}
					defer f.Close()
					readers = append(readers, f)
				}
				in = io.MultiReader(readers...)
			}
			res, err := capacity.Parse(in)
			if err != nil {
				return err
			}
			inputs, err := res.Inputs()
			if err != nil {
				return err
			}
			m, err := capacity.Build(inputs, o)
			if err != nil {
				return err
			}
			if write == "" {
				_, err := io.WriteString(cmd.OutOrStdout(), m.Markdown())
				return err
			}
			doc, err := os.ReadFile(write)
			if err != nil {
				return err
			}
			out, err := capacity.Replace(string(doc), m.Markdown())
			if err != nil {
				return fmt.Errorf("%s: %w", write, err)
			}
			return os.WriteFile(write, []byte(out), 0o644)
		},
	}
	f := cmd.Flags()
	f.Float64Var(&o.HoursPerDay, "hours", o.HoursPerDay, "hours of upload a day to plan for")
	f.Float64Var(&o.Channels, "channels", o.Channels, "live channels to plan for, each live all day")
	f.Float64Var(&o.Utilization, "utilization", o.Utilization, "share of each measured capacity to plan for")
	f.IntVar(&o.Cores, "cores", 0, "cores per machine (default: the benchmarks' machine's)")
	f.StringVar(&write, "write", "", "rewrite this document's capacity section instead of printing")
	return cmd
}
