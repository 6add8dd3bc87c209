package relay_test

import (
	"bytes"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/segflow/segflow/infra/relay"
)

// TestSpoolDiskFullLosesNoSegment: the relay's spool folder is on a disk
// with almost no room left (a 4 MiB tmpfs, all but 300 KB taken), so the
// disk refuses segments while they are cut and their headers after. The
// segments go on from memory: the publish is not disturbed and every
// segment reaches the bucket, in order, whole. (A refused write used to
// end the publish.)
func TestSpoolDiskFullLosesNoSegment(t *testing.T) {
	if testing.Short() {
		t.Skip("12 s publish")
	}
	if os.Geteuid() != 0 {
		t.Skip("mounting a small disk needs root")
	}
	disk := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", disk).CombinedOutput(); err != nil {
		t.Skipf("mount a tmpfs: %v %s", err, out)
	}
	t.Cleanup(func() { syscall.Unmount(disk, syscall.MNT_DETACH) })
	var st syscall.Statfs_t
	if err := syscall.Statfs(disk, &st); err != nil {
		t.Fatal(err)
	}
	filler := make([]byte, int64(st.Bavail)*st.Bsize-300<<10)
	if err := os.WriteFile(filepath.Join(disk, "filler"), filler, 0o600); err != nil {
		t.Fatal(err)
	}
	var logs lockedBuffer
	e := startWith(t, func(c *relay.Config) {
		c.SpoolDir = filepath.Join(disk, "spool")
		c.Logger = slog.New(slog.NewJSONHandler(&logs, nil))
	})
	const seconds = 12
	if err := publish(t, seconds, "flv", "rtmp://"+e.rtmp+"/live/"+key); err != nil {
		t.Fatalf("publish disturbed: %v", err)
	}
	m := e.waitEnded("cam1", 30*time.Second)
	e.checkSegments(m, seconds)
	held := strings.Count(logs.String(), "held in memory") + strings.Count(logs.String(), "holding it in memory")
	t.Logf("%d segments; the disk refused %d items, held in memory", len(m.Segments), held)
	if held == 0 {
		t.Fatalf("the disk refused nothing: the test proved nothing\n%s", logs.String())
	}
	if strings.Contains(logs.String(), "segment dropped") {
		t.Errorf("a segment was dropped:\n%s", logs.String())
	}
}

// lockedBuffer is a bytes.Buffer for the logs of several goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
