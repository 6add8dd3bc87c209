package media_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/segflow/segflow/shared/media"
	"github.com/segflow/segflow/shared/media/mediatest"
)

// TestWatermarkMarksOnlyItsCorner burns a text mark bottom-right and
// checks that corner changed while the opposite one did not, and that the
// segment keeps its timestamps.
func TestWatermarkMarksOnlyItsCorner(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	src := filepath.Join(dir, "src.mp4")
	mediatest.Make(t, src, mediatest.Clip{Seconds: 4, Width: 1280, Height: 720, Audio: true})
	info, _ := media.Probe(ctx, src)
	segs, err := media.Split(ctx, src, filepath.Join(dir, "s"), info, media.SplitOptions{Target: 4 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "marked.ts")
	if err := media.Watermark(ctx, segs[0].Path, out, media.WatermarkOptions{Text: "SEGFLOW", Position: "bottom-right", Opacity: 1, FPS: 30}); err != nil {
		t.Fatal(err)
	}
	region := func(in, name, crop string) string {
		p := filepath.Join(dir, name+".mkv")
		if err := runFF("-i", in, "-vf", "setpts=PTS-STARTPTS,crop="+crop, "-c:v", "ffv1", "-an", p); err != nil {
			t.Fatal(err)
		}
		return p
	}
	corner, opposite := "400:120:880:600", "400:120:0:0"
	changed, err := media.PSNR(ctx, region(segs[0].Path, "src-br", corner), region(out, "out-br", corner), 400, 120)
	if err != nil {
		t.Fatal(err)
	}
	kept, err := media.PSNR(ctx, region(segs[0].Path, "src-tl", opposite), region(out, "out-tl", opposite), 400, 120)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("PSNR marked corner %.1f dB, opposite corner %.1f dB", changed, kept)
	if changed > 25 || kept < 35 {
		t.Fatalf("marked corner %.1f dB (want < 25), opposite %.1f dB (want > 35)", changed, kept)
	}
	a, b := mediatest.Packets(t, segs[0].Path, "v:0"), mediatest.Packets(t, out, "v:0")
	if len(a) != len(b) || a[0].PTS != b[0].PTS {
		t.Fatalf("timestamps moved: %d frames from %.3f, was %d from %.3f", len(b), b[0].PTS, len(a), a[0].PTS)
	}
	if err := media.Watermark(ctx, segs[0].Path, out, media.WatermarkOptions{Text: "x", Position: "middle"}); err == nil {
		t.Fatal("unknown position accepted")
	}
}
