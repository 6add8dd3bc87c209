package media_test

import (
	"context"
	"math"
	"path/filepath"
	"testing"

	"github.com/segflow/segflow/shared/media"
	"github.com/segflow/segflow/shared/media/mediatest"
)

// TestCompare scores renditions made in the test against their source:
// the source itself, a good and a starved encode, and a flipped picture
// compared with and without the filter that made it.
func TestCompare(t *testing.T) {
	if testing.Short() {
		t.Skip("runs ffmpeg")
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "src.ts")
	mediatest.Make(t, src, mediatest.Clip{Seconds: 3, Width: 1280, Height: 720, FPS: 30})
	encode := func(name, vf, crf string) string {
		out := filepath.Join(dir, name+".ts")
		mediatest.FFmpeg(t, "-copyts", "-i", src, "-vf", vf, "-c:v", "libx264", "-preset", "veryfast", "-crf", crf, "-an", out)
		return out
	}
	good := encode("good", "scale=640:360:flags=bicubic", "20")
	starved := encode("starved", "scale=640:360:flags=bicubic", "51")
	flipped := encode("flipped", "hflip,scale=640:360:flags=bicubic", "20")
	for _, tc := range []struct {
		name, filter     string
		rendition        media.Compared
		minSSIM, maxSSIM float64
		minPSNR, maxPSNR float64
	}{
		{"itself", "", media.Compared{Path: src, Width: 1280, Height: 720}, 0.9999, 1, 99, 100},
		{"good", "", media.Compared{Path: good, Width: 640, Height: 360}, 0.97, 0.9999, 35, 60},
		{"starved", "", media.Compared{Path: starved, Width: 640, Height: 360}, 0, 0.95, 0, 32},
		{"flipped with its filter", "hflip", media.Compared{Path: flipped, Width: 640, Height: 360}, 0.97, 0.9999, 35, 60},
		{"flipped without", "", media.Compared{Path: flipped, Width: 640, Height: 360}, 0, 0.9, 0, 30},
	} {
		t.Run(tc.name, func(t *testing.T) {
			qs, err := media.Compare(context.Background(), src, []media.Compared{tc.rendition}, media.CompareOptions{Filter: tc.filter, StatsDir: t.TempDir()})
			if err != nil {
				t.Fatal(err)
			}
			q := qs[0]
			t.Logf("SSIM %.4f (worst frame %.4f), PSNR %.2f dB, %d frames", q.SSIM, q.MinSSIM, q.PSNR, q.Frames)
			if q.Frames != 90 || q.SSIM < tc.minSSIM || q.SSIM > tc.maxSSIM || q.PSNR < tc.minPSNR || q.PSNR > tc.maxPSNR || q.MinSSIM > q.SSIM {
				t.Errorf("want 90 frames, SSIM in [%g, %g], PSNR in [%g, %g]", tc.minSSIM, tc.maxSSIM, tc.minPSNR, tc.maxPSNR)
			}
		})
	}
	// Several renditions in one call pair each with its own scaled source.
	qs, err := media.Compare(context.Background(), src, []media.Compared{{Path: starved, Width: 640, Height: 360}, {Path: good, Width: 640, Height: 360}}, media.CompareOptions{StatsDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if len(qs) != 2 || qs[0].SSIM >= qs[1].SSIM {
		t.Errorf("starved then good: %+v", qs)
	}
	// A spot check: the first second, every third frame, of the same
	// pair scores what the whole does within a little.
	spot, err := media.Compare(context.Background(), src, []media.Compared{{Path: good, Width: 640, Height: 360}},
		media.CompareOptions{Seconds: 1, Step: 3, StatsDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if s := spot[0]; s.Frames != 10 || math.Abs(s.SSIM-qs[1].SSIM) > 0.005 || math.Abs(s.PSNR-qs[1].PSNR) > 2 {
		t.Errorf("spot check %+v, whole %+v", s, qs[1])
	}
}
