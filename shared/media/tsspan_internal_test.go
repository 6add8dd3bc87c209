package media

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// A segment still being written gives its first video PTS as soon as the
// packet that carries it is whole, the same as the finished file's
// keyframe; before that, nothing and no error.
func TestFirstVideoPTSOfAGrowingFile(t *testing.T) {
	dir := t.TempDir()
	whole := filepath.Join(dir, "whole.ts")
	if out, err := exec.Command("ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30:duration=1",
		"-c:v", "libx264", "-preset", "ultrafast", "-f", "mpegts", whole).CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	data, err := os.ReadFile(whole)
	if err != nil {
		t.Fatal(err)
	}
	sp, err := tsVideoSpan(context.Background(), whole, 0)
	if err != nil {
		t.Fatal(err)
	}
	// The muxer writes PAT, PMT (and SDT) first: the video's first PES
	// starts in the fourth packet at the latest.
	tests := []struct {
		name  string
		bytes int
		found bool
	}{
		{"empty", 0, false},
		{"tables only", 2 * tsPacket, false},
		{"first PES cut in its packet", 3*tsPacket + 100, false},
		{"first PES whole, the rest cut", 4*tsPacket + 77, true},
		{"whole", len(data), true},
	}
	for _, tc := range tests {
		path := filepath.Join(dir, "growing.ts")
		if err := os.WriteFile(path, data[:tc.bytes], 0o644); err != nil {
			t.Fatal(err)
		}
		pts, found, err := tsFirstVideoPTS(path)
		if err != nil || found != tc.found || (found && pts != sp.key) {
			t.Errorf("%s: %v %v %v; want found %v at %v", tc.name, pts, found, err, tc.found, sp.key)
		}
	}
}
