package media_test

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/segflow/segflow/shared/media"
)

// TestDisableHugePages checks what a tool started after the call gets (the
// kernel's own account of the process: THP_enabled in its status), and
// that restore gives the next one huge pages again.
func TestDisableHugePages(t *testing.T) {
	thp := func() string {
		t.Helper()
		out, err := exec.Command("grep", "THP_enabled", "/proc/self/status").Output()
		if err != nil {
			t.Skipf("no THP_enabled in /proc/self/status (kernel before 6.0?): %v", err)
		}
		return strings.Join(strings.Fields(string(out)), " ")
	}
	if got := thp(); got != "THP_enabled: 1" {
		t.Skipf("a child has %q before the call: no transparent huge pages here", got)
	}
	restore, err := media.DisableHugePages()
	if err != nil {
		t.Fatal(err)
	}
	if got := thp(); got != "THP_enabled: 0" {
		t.Errorf("after: a child has %q", got)
	}
	if err := restore(); err != nil {
		t.Fatal(err)
	}
	if got := thp(); got != "THP_enabled: 1" {
		t.Errorf("restored: a child has %q", got)
	}
}
