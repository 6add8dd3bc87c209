package media_test

import (
	"context"
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/segflow/segflow/shared/media"
	"github.com/segflow/segflow/shared/media/mediatest"
)

// A source with x264's default keyint (250 frames: 8.33 s at 30 fps) has
// its first GOP re-encoded into 2 s pieces, handed over in order before
// the stream-copied rest, and the whole still transcodes seamlessly:
// every frame once at its time, a keyframe at every seam (and every 2 s
// within a segment), gapless audio.
func TestSplitLongFirstGOP(t *testing.T) {
	if testing.Short() {
		t.Skip("encodes every segment")
	}
	ctx := context.Background()
	dir := t.TempDir()
	const seconds, fps = 12.0, 30
	src := filepath.Join(dir, "src.mp4")
	mediatest.Make(t, src, mediatest.Clip{Seconds: seconds, Width: 640, Height: 360, FPS: fps, GOP: 250, Audio: true})
	info, err := media.Probe(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	var handed []string
	segs, err := media.Split(ctx, src, filepath.Join(dir, "source"), info, media.SplitOptions{Target: 6 * time.Second,
		OnSegments: func(ss []media.Segment) error {
			for _, s := range ss {
				handed = append(handed, fmt.Sprint(s.Index))
			}
			return nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for i, s := range segs {
		got = append(got, fmt.Sprintf("%.2f", s.Duration))
		if s.Index != i || s.Last != (i == len(segs)-1) {
			t.Errorf("segment %d: %+v", i, s)
		}
		if i > 0 && math.Abs(segs[i-1].Start+segs[i-1].Duration-s.Start) > 1e-6 {
			t.Errorf("segment %d does not start where %d ends: %+v", i, i-1, segs)
		}
	}
	if want := "2.00 2.00 2.00 2.33 3.67"; strings.Join(got, " ") != want {
		t.Errorf("segment durations %v, want %s", got, want)
	}
	if h := strings.Join(handed, ","); h != "0,1,2,3,4" {
		t.Errorf("handed over %s, want 0,1,2,3,4 in order", h)
	}
	rungs := []media.Rung{{Name: "360p", Codec: media.H264, Width: 640, Height: 360, Bitrate: 800_000}}
	files := transcodeAll(t, dir, segs, rungs, media.TranscodeOptions{FPS: fps, Audio: []string{"audio"}})
	video := filepath.Join(dir, "360p-all.ts")
	concat(t, video, files["360p"])
	ps := mediatest.Packets(t, video, "v:0")
	if len(ps) != int(seconds*fps) {
		t.Errorf("%d frames, want %d", len(ps), int(seconds*fps))
	}
	if keys := keyframes(t, "360p", ps, fps); keys != "0.000,2.000,4.000,6.000,8.000,8.333,10.333" {
		t.Errorf("keyframes at %s", keys)
	}
	audio := filepath.Join(dir, "audio-all.ts")
	concat(t, audio, files["audio"])
	aps := mediatest.Packets(t, audio, "a:0")
	for i := 1; i < len(aps); i++ {
		if gap := aps[i].PTS - (aps[i-1].PTS + aps[i-1].Duration); math.Abs(gap) > 0.005 {
			t.Errorf("audio gap of %.4fs at %.3f", gap, aps[i].PTS)
		}
	}
	psnr, err := media.PSNR(ctx, src, video, 640, 360)
	if err != nil {
		t.Fatal(err)
	}
	if psnr < 38 {
		t.Errorf("PSNR %.2f dB", psnr)
	}
}
