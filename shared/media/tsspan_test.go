package media

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestTSVideoSpanRefusesWhatIsNotWholeTS: the span reader looks at packet
// headers in place, so a file that is not whole 188-byte packets, or has
// no video, is an error that says so, never a span read from the wrong
// bytes. (Its readings of good files are checked against ffprobe in
// TestSplitHandsOverSegments.)
func TestTSVideoSpanRefusesWhatIsNotWholeTS(t *testing.T) {
	dir := t.TempDir()
	ts := func(name string, args ...string) string {
		p := filepath.Join(dir, name)
		args = append([]string{"-hide_banner", "-v", "error", "-f", "lavfi", "-i"}, args...)
		if out, err := exec.Command("ffmpeg", append(args, "-t", "1", "-f", "mpegts", p)...).CombinedOutput(); err != nil {
			t.Fatalf("ffmpeg: %v: %s", err, out)
		}
		return p
	}
	video := ts("video.ts", "testsrc2=size=320x240:rate=25", "-c:v", "libx264", "-g", "25")
	audio := ts("audio.ts", "sine=frequency=1000", "-c:a", "aac")
	good, err := os.ReadFile(video)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	shifted := append([]byte{0}, good...)
	tests := []struct {
		name, path, want string
	}{
		{"cut inside a packet", write("cut.ts", good[:len(good)-100]), "bytes after the last whole"},
		{"off the packet grid", write("shifted.ts", shifted[:len(shifted)-1]), "no sync byte at offset 0"},
		{"no video", audio, "no video packets"},
		{"empty", write("empty.ts", nil), "no video packets"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tsVideoSpan(context.Background(), tc.path, 0.04)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error saying %q", err, tc.want)
			}
		})
	}
	sp, err := tsVideoSpan(context.Background(), video, 0.04)
	if err != nil {
		t.Fatal(err)
	}
	if d := sp.end - sp.start; d < 0.999 || d > 1.001 {
		t.Fatalf("25 frames read as %.6f s (%+v)", d, sp)
	}
}
