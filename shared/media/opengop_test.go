package media_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/segflow/segflow/shared/media"
	"github.com/segflow/segflow/shared/media/mediatest"
)

// x265 writes open GOPs by default: a keyframe after the first is a CRA,
// and the B-frames that follow it in decode order show before it and
// refer to the GOP before. A cut at a CRA strands those frames in the
// next segment, where they cannot be decoded. Every rendition must still
// have every frame once, at a constant rate.
func TestSplitOpenGOP(t *testing.T) {
	if testing.Short() {
		t.Skip("encodes HEVC")
	}
	ctx := context.Background()
	dir := t.TempDir()
	const seconds, fps = 6.0, 25
	src := filepath.Join(dir, "open.mp4")
	mediatest.FFmpeg(t, "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25:duration=6",
		"-c:v", "libx265", "-preset", "ultrafast", "-g", "50", "-x265-params", "log-level=error", src)
	info, err := media.Probe(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	segs, err := media.Split(ctx, src, filepath.Join(dir, "source"), info, media.SplitOptions{Target: 4 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	// The source must be what this test is about: segment 1 starts, in
	// display order, with frames shown before its keyframe.
	if len(segs) != 2 {
		t.Fatalf("segments %+v", segs)
	}
	if ps := mediatest.Packets(t, segs[1].Path, "v:0"); ps[0].Key {
		t.Fatalf("segment 1 starts with its keyframe: the source's GOPs are closed")
	}
	rungs, err := media.Ladder(info.Video, []media.Codec{media.H264})
	if err != nil {
		t.Fatal(err)
	}
	files := transcodeAll(t, dir, segs, rungs, media.TranscodeOptions{FPS: info.Video.FPS})
	for _, r := range rungs {
		whole := filepath.Join(dir, r.Name+"-all"+r.SegmentExt())
		concat(t, whole, files[r.Name])
		ps := mediatest.Packets(t, whole, "v:0")
		if len(ps) != int(seconds*fps) {
			t.Errorf("%s: %d frames, want %d", r.Name, len(ps), int(seconds*fps))
		}
		// A keyframe at the seam, where the segment list puts it.
		want := "0.000," + ftoa(segs[1].Start-segs[0].Start) + ",3.960,5.960"
		if keys := keyframes(t, r.Name, ps, fps); keys != want {
			t.Errorf("%s: keyframes at %s, want %s", r.Name, keys, want)
		}
	}
}
