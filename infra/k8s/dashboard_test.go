package k8s

import (
	"encoding/json"
	"github.com/segflow/segflow/infra/catalog"
	"log/slog"
	"os"
	"regexp"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"

	"github.com/segflow/segflow/infra/provider"
	"github.com/segflow/segflow/infra/relay"
	"github.com/segflow/segflow/infra/router"
	"github.com/segflow/segflow/shared/telemetry"
)

// exported are the metric names segflow's components register, read from
// the collectors themselves (a vector with no series yet still describes
// its name), with the _bucket/_sum/_count series of histograms.
func exported(t *testing.T) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	fq := regexp.MustCompile(`fqName: "([^"]+)"`)
	reg := describer(func(c prometheus.Collector) {
		ch := make(chan *prometheus.Desc, 64)
		go func() { c.Describe(ch); close(ch) }()
		for d := range ch {
			if m := fq.FindStringSubmatch(d.String()); m != nil {
				for _, s := range []string{"", "_bucket", "_sum", "_count"} {
					names[m[1]+s] = true
				}
			}
		}
	})
	router.RegisterMetrics(reg)
	relay.RegisterMetrics(reg)
	provider.RegisterMetrics(reg)
	catalog.RegisterMetrics(reg)
	telemetry.NewHTTPMetrics(reg, "function")
	if len(names) < 20 {
		t.Fatalf("only %d metric names registered: %v", len(names), names)
	}
	return names
}

// describer is a Registerer that only reads what it is given.
type describer func(prometheus.Collector)

func (d describer) Register(c prometheus.Collector) error { d(c); return nil }
func (d describer) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		d(c)
	}
}
func (d describer) Unregister(prometheus.Collector) bool { return true }

// selected are the metric names a PromQL expression reads.
func selected(t *testing.T, expr string) []string {
	t.Helper()
	e, err := parser.NewParser(parser.Options{}).ParseExpr(expr)
	if err != nil {
		t.Fatalf("%q: %v", expr, err)
	}
	var out []string
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		if vs, ok := n.(*parser.VectorSelector); ok {
			out = append(out, vs.Name)
		}
		return nil
	})
	return out
}

// TestDashboardUsesMetricsSegflowExports checks that every panel query of
// the Grafana dashboard, and every alert, reads metrics that segflow's
// components register.
func TestDashboardUsesMetricsSegflowExports(t *testing.T) {
	names := exported(t)
	raw, err := os.ReadFile("grafana-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Title  string
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(raw, &d); err != nil || d.Title == "" || len(d.Panels) == 0 {
		t.Fatalf("dashboard: %v", err)
	}
	used := 0
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			for _, m := range selected(t, tg.Expr) {
				used++
				if !names[m] {
					t.Errorf("panel %q reads %s, which segflow does not export", p.Title, m)
				}
			}
		}
	}
	alerts, err := os.ReadFile("alerts.yaml")
	if err != nil {
		t.Fatal(err)
	}
	groups, errs := rulefmt.Parse(alerts, false, model.UTF8Validation, parser.NewParser(parser.Options{}), slog.Default())
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			for _, m := range selected(t, r.Expr) {
				used++
				if !names[m] {
					t.Errorf("alert %s reads %s, which segflow does not export", r.Alert, m)
				}
			}
		}
	}
	if used < 8 {
		t.Fatalf("only %d metric references found", used)
	}
}
