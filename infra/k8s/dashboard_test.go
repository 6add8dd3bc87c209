package k8s

import (
	"encoding/json"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

// TestDashboardUsesMetricsSegflowExports checks every panel query of the
// Grafana dashboard names metrics that segflow's code registers.
func TestDashboardUsesMetricsSegflowExports(t *testing.T) {
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
	// Metric names are string literals in the code (some through small
	// constructor helpers); a name the dashboard uses must be one of them.
	src, err := exec.Command("grep", "-rhoE", "--include=*.go", `"[a-z][a-z0-9_]+"`, "..", "../../shared").Output()
	if err != nil {
		t.Fatal(err)
	}
	code := string(src)
	metric := regexp.MustCompile(`\b(gateway|segflow)_[a-z_]+`)
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			for _, m := range metric.FindAllString(tg.Expr, -1) {
				base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(m, "_bucket"), "_sum"), "_count")
				name := base
				for _, ns := range []string{"segflow_router_", "segflow_relay_"} {
					name = strings.TrimPrefix(name, ns)
				}
				if !strings.Contains(code, `"`+name+`"`) {
					t.Errorf("panel %q uses %s, which segflow does not export", p.Title, m)
				}
			}
		}
	}
}
