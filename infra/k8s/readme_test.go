package k8s

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/segflow/segflow/infra/router"
	"github.com/segflow/segflow/shared/layout"
)

// TestReadmeSubscribesEveryEventFilter: the bucket subscription the
// README has people type must cover every key that raises a topic
// (layout.EventFilters), or what the missing rule covers stalls on a
// cluster: a WebM upload's Matroska source segments raised no event while
// the loop lacked .mkv.
func TestReadmeSubscribesEveryEventFilter(t *testing.T) {
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	var got []layout.Filter
	for _, m := range regexp.MustCompile(`mc event add \S+ \S+ --event put --prefix (\S+)\n`).FindAllStringSubmatch(readme, -1) {
		got = append(got, layout.Filter{Prefix: m[1]})
	}
	for _, m := range regexp.MustCompile(`for ext in ([^;]+); do mc event add \S+ \S+ --event put --prefix (\S+) --suffix \$ext; done`).FindAllStringSubmatch(readme, -1) {
		for _, ext := range strings.Fields(m[1]) {
			got = append(got, layout.Filter{Prefix: m[2], Suffix: ext})
		}
	}
	for _, f := range layout.EventFilters() {
		if !slices.Contains(got, f) {
			t.Errorf("the README's mc event add commands miss prefix %q suffix %q (they subscribe %v)", f.Prefix, f.Suffix, got)
		}
	}
	for _, f := range got {
		if !slices.Contains(layout.EventFilters(), f) {
			t.Errorf("the README subscribes prefix %q suffix %q, which raises no topic", f.Prefix, f.Suffix)
		}
	}
	// Both targets: the router trusts its journal only when every filter
	// also goes to the NATS target.
	m := regexp.MustCompile(`for arn in ([^;]+); do`).FindStringSubmatch(readme)
	if m == nil {
		t.Fatal("the README subscribes no loop of targets (for arn in ...)")
	}
	target := router.MinIOTarget{ID: "SEGFLOW"}
	for _, arn := range []string{target.ARN().String(), target.JournalARN().String()} {
		if !slices.Contains(strings.Fields(m[1]), arn) {
			t.Errorf("the README does not subscribe %s (it does %s)", arn, m[1])
		}
	}
}
