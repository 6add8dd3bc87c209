package e2e

import (
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/segflow/segflow/infra/internal/e2ekit"
	"github.com/segflow/segflow/infra/internal/testgw"
	"github.com/segflow/segflow/infra/internal/teststack"
	"github.com/segflow/segflow/shared/layout"
)

// TestPullCLI: `segflow pull add` makes the running stack's relay pull an
// HTTP-FLV stream (ffmpeg serving it) into a live asset whose playlists
// end when the source does; `segflow pull list` shows it live with its
// bit rate while it runs, and `segflow pull rm` stops it.
func TestPullCLI(t *testing.T) {
	if testing.Short() {
		t.Skip("pulls for real time")
	}
	s := teststack.Up(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	segflow := func(args ...string) string {
		t.Helper()
		out, err := exec.Command(testgw.Binary(t), append(args, "--home", s.Home, "--repo", testgw.RepoRoot())...).CombinedOutput()
		if err != nil {
			t.Fatalf("segflow %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	since := time.Now()
	segflow("pull", "add", "cam", "http://"+addr+"/cam.flv")
	done := e2ekit.Publishing(e2ekit.TestPublisher("640x360", 12, "flv", "-listen", "1", "http://"+addr+"/cam.flv"))
	id := e2ekit.WaitAsset(t, s, "live-cam-", since)
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(time.Second) {
		list := segflow("pull", "list")
		if line := lineOf(list, "cam "); strings.Contains(line, " live ") && !strings.Contains(line, " 0 ") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("pull list never showed cam live with a bit rate:\n%s", list)
		}
	}
	if err := <-done; err != nil {
		t.Fatalf("ffmpeg: %v", err)
	}
	a := layout.Asset(id)
	for _, name := range []string{"360p", "audio"} {
		e2ekit.WaitPlaylist(t, s, a.Playlist(name), func(last int, ended bool) bool { return ended && last >= 4 })
	}
	segflow("pull", "rm", "cam")
	for deadline := time.Now().Add(10 * time.Second); strings.Contains(segflow("pull", "list"), "cam "); time.Sleep(500 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("cam still pulled after pull rm")
		}
	}
}

// lineOf is the first line of text that starts with prefix.
func lineOf(text, prefix string) string {
	for _, l := range strings.Split(text, "\n") {
		if strings.HasPrefix(l, prefix) {
			return l
		}
	}
	return ""
}
