// Package capacity turns the repository's benchmark output into a
// capacity model: what a minute of upload and a live channel cost, how
// many machines a fleet needs for a given load, and which component runs
// out first. Every input is a figure a benchmark measured (scripts/bench,
// scripts/capacity); the assumptions are the options, stated beside the
// result.
package capacity

import (
	"bufio"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
)

// Results are the metrics of `go test -bench` output: per benchmark
// (its name without "Benchmark" and without the GOMAXPROCS suffix, e.g.
// "UploadCost/h264"), each reported unit's value.
type Results struct {
	// Procs is the GOMAXPROCS the benchmarks ran with (the "-2" suffix):
	// the cores of the machine that measured them.
	Procs   int
	Metrics map[string]map[string]float64
	Order   []string // the benchmarks' names as they first came
}

var procsSuffix = regexp.MustCompile(`-(\d+)$`)

// Parse reads benchmark output. A result line is "BenchmarkName-P N
// value unit value unit ..."; when a benchmark printed logs while it ran,
// its name and its figures can be on separate lines, and the figures
// belong to the last name seen. Other lines are skipped. A later result
// for the same benchmark replaces an earlier one.
func Parse(r io.Reader) (Results, error) {
	res := Results{Metrics: map[string]map[string]float64{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	pending, line := "", 0
	for sc.Scan() {
		line++
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 {
			continue
		}
		if strings.HasPrefix(fields[0], "Benchmark") {
			pending = fields[0]
			fields = fields[1:]
		}
		if pending == "" || !strings.Contains(sc.Text(), " ns/op") {
			continue // not a result, or its figures come on a later line
		}
		name := strings.TrimPrefix(pending, "Benchmark")
		if m := procsSuffix.FindStringSubmatch(name); m != nil {
			name = strings.TrimSuffix(name, m[0])
			res.Procs, _ = strconv.Atoi(m[1])
		}
		if _, err := strconv.Atoi(fields[0]); err != nil || len(fields)%2 != 1 {
			return res, fmt.Errorf("capacity: line %d: %q is not a benchmark result", line, sc.Text())
		}
		metrics := map[string]float64{}
		for i := 1; i+1 < len(fields); i += 2 {
			v, err := strconv.ParseFloat(fields[i], 64)
			if err != nil {
				return res, fmt.Errorf("capacity: line %d: %s %s: %w", line, fields[i], fields[i+1], err)
			}
			metrics[fields[i+1]] = v
		}
		if _, ok := res.Metrics[name]; !ok {
			res.Order = append(res.Order, name)
		}
		res.Metrics[name] = metrics
		pending = ""
	}
	if err := sc.Err(); err != nil {
		return res, fmt.Errorf("capacity: read benchmark output: %w", err)
	}
	return res, nil
}
