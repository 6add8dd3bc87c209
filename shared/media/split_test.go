package media_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/segflow/segflow/shared/media"
	"github.com/segflow/segflow/shared/media/mediatest"
)

// TestSplitHandsOverSegments: OnSegments gets each segment in order while
// the cut goes on, only once its file is complete, with the timing
// ffprobe reads from the file (start = first video pts, duration to the
// next segment's start, the last one to its last frame's end).
func TestSplitHandsOverSegments(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	src := filepath.Join(dir, "src.mp4")
	// 30000/1001 fps: no frame duration is a round number.
	mediatest.Make(t, src, mediatest.Clip{Seconds: 21, Width: 640, Height: 360, Audio: true, GOP: 45, VideoFilter: "fps=30000/1001"})
	info, err := media.Probe(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	type handed struct {
		seg  media.Segment
		size int64
	}
	var got []handed
	segs, err := media.Split(ctx, src, filepath.Join(dir, "source"), info, media.SplitOptions{
		Target: 3 * time.Second,
		OnSegments: func(segs []media.Segment) error {
			if len(segs) == 0 {
				return errors.New("handed an empty batch")
			}
			for _, s := range segs {
				st, err := os.Stat(s.Path)
				if err != nil {
					return err
				}
				got = append(got, handed{s, st.Size()})
			}
			return nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(segs) < 6 || len(got) != len(segs) {
		t.Fatalf("%d segments, %d handed over", len(segs), len(got))
	}
	for i, s := range segs {
		h := got[i]
		if h.seg != s {
			t.Errorf("segment %d handed over as %+v, returned as %+v", i, h.seg, s)
		}
		if s.Last != (i == len(segs)-1) {
			t.Errorf("segment %d of %d: Last = %v", i, len(segs), s.Last)
		}
		st, _ := os.Stat(s.Path)
		if st.Size() != h.size {
			t.Errorf("segment %d was handed over at %d bytes, ended at %d: still being written", i, h.size, st.Size())
		}
		ps := mediatest.Packets(t, s.Path, "v:0")
		start, end := ps[0].PTS, ps[len(ps)-1].PTS+ps[len(ps)-1].Duration
		if i+1 < len(segs) {
			end = mediatest.Packets(t, segs[i+1].Path, "v:0")[0].PTS
		}
		if math.Abs(s.Start-start) > 1e-5 || math.Abs(s.Start+s.Duration-end) > 1e-5 {
			t.Errorf("segment %d: start %.6f duration %.6f; ffprobe reads %.6f to %.6f", i, s.Start, s.Duration, start, end)
		}
	}
}

// TestSplitLeadSegment: whatever the source's container, the first
// segment ends at the first keyframe from 2 s on (so a viewer can start
// before the asset is done) and the others every target after that, on
// the source's 1 s keyframes.
func TestSplitLeadSegment(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		name, ext string
		video     []string
	}{
		{"H.264 in MP4 to MPEG-TS", ".mp4", nil},
		{"VP9 in WebM to Matroska", ".webm", []string{"-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			src := filepath.Join(dir, "src"+c.ext)
			mediatest.Make(t, src, mediatest.Clip{Seconds: 13, Width: 320, Height: 180, FPS: 25, GOP: 25, VideoArgs: c.video})
			info, err := media.Probe(ctx, src)
			if err != nil {
				t.Fatal(err)
			}
			segs, err := media.Split(ctx, src, filepath.Join(dir, "source"), info, media.SplitOptions{Target: 4 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, s := range segs {
				got = append(got, fmt.Sprintf("%.2f", s.Duration))
			}
			if want := []string{"2.00", "4.00", "4.00", "3.00"}; strings.Join(got, " ") != strings.Join(want, " ") {
				t.Errorf("segment durations %v, want %v", got, want)
			}
		})
	}
}

// A consumer that fails stops the split, and the split returns its error:
// while the cut still runs, and on the last segment, which is handed over
// once ffmpeg has exited.
func TestSplitStopsOnHandOverError(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	src := filepath.Join(dir, "src.mp4")
	mediatest.Make(t, src, mediatest.Clip{Seconds: 12, Width: 320, Height: 180, FPS: 30, GOP: 30})
	info, err := media.Probe(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		fail func(media.Segment) bool
	}{
		{"second segment", func(s media.Segment) bool { return s.Index == 1 }},
		{"last segment", func(s media.Segment) bool { return s.Last }},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			refused := errors.New("bucket refused the segment")
			var calls []media.Segment
			done := make(chan error, 1)
			go func() {
				_, err := media.Split(ctx, src, filepath.Join(dir, fmt.Sprint("source", i)), info, media.SplitOptions{
					Target: time.Second,
					OnSegments: func(segs []media.Segment) error {
						for _, s := range segs {
							calls = append(calls, s)
							if tc.fail(s) {
								return refused
							}
						}
						return nil
					},
				})
				done <- err
			}()
			select {
			case err = <-done:
			case <-time.After(30 * time.Second):
				t.Fatal("split did not return after its consumer failed")
			}
			if !errors.Is(err, refused) || len(calls) == 0 || !tc.fail(calls[len(calls)-1]) {
				t.Fatalf("err %v after %d hand-overs: want the consumer's error, with no hand-over after it", err, len(calls))
			}
			if !strings.Contains(err.Error(), "split ") {
				t.Fatalf("error %q does not say what failed", err)
			}
		})
	}
}
