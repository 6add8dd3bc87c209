package media

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestFFmpegNice: a niced run is ffmpeg's own (it writes what it is told
// to), and its failure names ffmpeg, with ffmpeg's words, not nice.
func TestFFmpegNice(t *testing.T) {
	ctx := context.Background()
	out := filepath.Join(t.TempDir(), "nice.txt")
	if err := ffmpegNice(ctx, 5, "-f", "lavfi", "-i", "testsrc2=duration=0.2", "-f", "framemd5", out); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(out); err != nil || !strings.Contains(string(b), "#format: frame checksums") {
		t.Fatalf("niced ffmpeg wrote %q, %v", b, err)
	}
	err := ffmpegNice(ctx, 5, "-i", filepath.Join(t.TempDir(), "missing.ts"), "-f", "null", "-")
	var e *Error
	if !errors.As(err, &e) || e.Tool != "ffmpeg" || !strings.Contains(e.Stderr, "missing.ts") {
		t.Fatalf("niced ffmpeg on a missing file: %v", err)
	}
}
