package media

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// A TS still being written tells its start from its head: nothing before
// the first video PES is on disk, the PTS once it is, whatever follows
// (here a torn packet) unread.
func TestTSHeadPTS(t *testing.T) {
	dir := t.TempDir()
	ts := filepath.Join(dir, "a.ts")
	if out, err := exec.Command("ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=160x90:rate=25:duration=1",
		"-c:v", "libx264", "-preset", "ultrafast", "-output_ts_offset", "3", "-f", "mpegts", ts).CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	whole, err := os.ReadFile(ts)
	if err != nil {
		t.Fatal(err)
	}
	sp, err := tsVideoSpan(t.Context(), ts, 0)
	if err != nil {
		t.Fatal(err)
	}
	first := -1 // the packet the first video PES starts in
	for p := 0; p+tsPacket <= len(whole) && first < 0; p += tsPacket {
		if _, ok := videoPTS(whole[p : p+tsPacket]); ok {
			first = p
		}
	}
	if first < 0 {
		t.Fatal("no video PES")
	}
	for _, c := range []struct {
		name string
		size int
		ok   bool
	}{
		{"tables only", first, false},
		{"the first PES and a torn packet", first + tsPacket + 100, true},
		{"whole", len(whole), true},
	} {
		p := filepath.Join(dir, "head.ts")
		if err := os.WriteFile(p, whole[:c.size], 0o644); err != nil {
			t.Fatal(err)
		}
		pts, ok, err := tsHeadPTS(p)
		if err != nil || ok != c.ok || (ok && pts != sp.start) {
			t.Errorf("%s: %v %v %v, want %v at %v", c.name, pts, ok, err, c.ok, sp.start)
		}
	}
}
