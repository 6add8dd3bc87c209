package media_test

import (
	"context"
	"crypto/sha256"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/segflow/segflow/shared/media"
	"github.com/segflow/segflow/shared/media/mediatest"
)

// A display rotation is read from the display matrix, swaps the displayed
// size, and RotateFilter shows a stream copy (which loses the matrix) the
// way ffmpeg's autorotate shows the original.
func TestRotation(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	src := filepath.Join(dir, "src.mp4")
	mediatest.Make(t, src, mediatest.Clip{Seconds: 1, Width: 320, Height: 180, FPS: 30})
	ffmpeg := func(args ...string) []byte {
		t.Helper()
		out, err := exec.Command("ffmpeg", append([]string{"-hide_banner", "-v", "error", "-y"}, args...)...).Output()
		if err != nil {
			t.Fatalf("ffmpeg %v: %v", args, err)
		}
		return out
	}
	for _, tag := range []string{"0", "90", "180", "270"} {
		t.Run("rotate="+tag, func(t *testing.T) {
			mp4, ts := filepath.Join(dir, tag+".mp4"), filepath.Join(dir, tag+".ts")
			ffmpeg("-i", src, "-c", "copy", "-metadata:s:v:0", "rotate="+tag, mp4)
			ffmpeg("-i", mp4, "-c", "copy", "-f", "mpegts", ts)
			info, err := media.Probe(ctx, mp4)
			if err != nil {
				t.Fatal(err)
			}
			v := info.Video
			quarter := tag == "90" || tag == "270"
			if quarter && (v.DisplayWidth != 180 || v.DisplayHeight != 320) || !quarter && (v.DisplayWidth != 320 || v.DisplayHeight != 180) {
				t.Fatalf("rotation %d, displayed %dx%d", v.Rotation, v.DisplayWidth, v.DisplayHeight)
			}
			if (tag == "0") != (v.Rotation == 0) {
				t.Fatalf("rotation %d for rotate=%s", v.Rotation, tag)
			}
			ladder, err := media.Ladder(v, nil)
			if err != nil || len(ladder) == 0 || quarter != (ladder[0].Height > ladder[0].Width) {
				t.Fatalf("ladder %+v %v", ladder, err)
			}
			frame := func(in string, vf ...string) [32]byte {
				args := []string{"-i", in}
				if len(vf) > 0 && vf[0] != "" {
					args = append(args, "-vf", vf[0])
				}
				return sha256.Sum256(ffmpeg(append(args, "-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "gray", "-")...))
			}
			if frame(mp4) != frame(ts, media.RotateFilter(v.Rotation)) {
				t.Fatalf("the TS copy turned by %q is not what autorotate shows", media.RotateFilter(v.Rotation))
			}
			// What decodes the TS turns it: the watermark and the thumbnail
			// come out at the displayed size.
			marked, thumb := filepath.Join(dir, tag+"-marked.ts"), filepath.Join(dir, tag+".jpg")
			if err := media.Watermark(ctx, ts, marked, media.WatermarkOptions{Text: "up", Position: "top-left", FPS: 30, Picture: v.Picture()}); err != nil {
				t.Fatal(err)
			}
			if err := media.Thumbnail(ctx, ts, thumb, 0, 90, v.Picture()); err != nil {
				t.Fatal(err)
			}
			for file, want := range map[string]bool{marked: quarter, thumb: quarter} {
				if w, h := mediatest.Size(t, file); (h > w) != want {
					t.Errorf("%s is %dx%d: portrait should be %v", filepath.Base(file), w, h, want)
				}
			}
		})
	}
}
