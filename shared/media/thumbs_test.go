package media_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/segflow/segflow/shared/media"
	"github.com/segflow/segflow/shared/media/mediatest"
)

// A segment that is one GOP (the 2 s first segment of a file with 2 s
// keyframes, or a short last one) still gives a still from its middle: a
// seek in the TS landed past its only keyframe and left no frame.
func TestThumbnailOfOneGOPSegment(t *testing.T) {
	if testing.Short() {
		t.Skip("encodes 1080p")
	}
	ctx := context.Background()
	dir := t.TempDir()
	_, _, segs := splitClip(t, dir, mediatest.Clip{Seconds: 10, Width: 1920, Height: 1080, FPS: 30, Audio: true}, 6*time.Second)
	if len(segs) != 3 || segs[0].Duration != 2 || segs[2].Duration != 2 {
		t.Fatalf("segments %+v, want 2 s, 6 s, 2 s", segs)
	}
	for _, s := range segs {
		for _, at := range []float64{0, s.Duration / 2} {
			out := filepath.Join(dir, fmt.Sprintf("%d-%g.jpg", s.Index, at))
			if err := media.Thumbnail(ctx, s.Path, out, at, 320, media.Picture{}); err != nil {
				t.Errorf("segment %d at %gs: %v", s.Index, at, err)
				continue
			}
			if w, h := mediatest.Size(t, out); w != 320 || h != 180 {
				t.Errorf("segment %d at %gs: %dx%d", s.Index, at, w, h)
			}
		}
	}
}
