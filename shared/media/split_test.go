package media_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
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

// TestSplitCopiesAudioThatFits: a track that already is the AAC a
// rendition would be encoded to is copied frame for frame into the source
// segments; any other (a bitrate past the headroom, 44.1 kHz, fewer
// channels wanted) is encoded to the rendition.
func TestSplitCopiesAudioThatFits(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		name     string
		channels int
		audio    []string
		copied   []bool // per rendition of media.AudioLadder
	}{
		{"stereo at 128k", 2, []string{"-c:a", "aac", "-b:a", "128k"}, []bool{true}},
		{"stereo at 192k, within the headroom", 2, []string{"-c:a", "aac", "-b:a", "192k"}, []bool{true}},
		{"stereo at 320k", 2, []string{"-c:a", "aac", "-b:a", "320k"}, []bool{false}},
		{"stereo at 44.1 kHz", 2, []string{"-c:a", "aac", "-b:a", "128k", "-ar", "44100"}, []bool{false}},
		{"5.1 at 384k: its stereo is made, its 5.1 copied", 6, []string{"-c:a", "aac", "-b:a", "384k"}, []bool{false, true}},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			src := filepath.Join(dir, "src.mp4")
			mediatest.Make(t, src, mediatest.Clip{Seconds: 7, Width: 320, Height: 180, GOP: 25, FPS: 25, Audio: true, Channels: c.channels, AudioArgs: c.audio})
			info, err := media.Probe(ctx, src)
			if err != nil {
				t.Fatal(err)
			}
			ladder := media.AudioLadder(info)
			if len(ladder) != len(c.copied) {
				t.Fatalf("%d audio renditions, want %d", len(ladder), len(c.copied))
			}
			segs, err := media.Split(ctx, src, filepath.Join(dir, "source"), info, media.SplitOptions{Target: 2 * time.Second, Audio: ladder})
			if err != nil {
				t.Fatal(err)
			}
			source := audioFrames(t, src, 0)
			for k, r := range ladder {
				var got []string
				for _, s := range segs {
					got = append(got, audioFrames(t, s.Path, k)...)
				}
				if copied := slices.Equal(got, source); copied != c.copied[k] {
					t.Errorf("rendition %s (%d ch, %d b/s) of a %d ch track at %d b/s, %d Hz: copied %v, want %v",
						r.Name, r.Channels, r.Bitrate, info.Audio.Channels, info.Audio.Bitrate, info.Audio.SampleRate, copied, c.copied[k])
				}
				rate, channels := audioFormat(t, segs[0].Path, k)
				if rate != 48000 || channels != r.Channels {
					t.Errorf("rendition %s: %d Hz, %d channels; want 48000, %d", r.Name, rate, channels, r.Channels)
				}
			}
		})
	}
}

// audioFrames is the md5 of each raw AAC frame of a file's k-th audio
// stream (ADTS headers taken off, so MPEG-TS and MP4 compare).
func audioFrames(t *testing.T, path string, k int) []string {
	t.Helper()
	out, err := exec.Command("ffmpeg", "-v", "error", "-i", path, "-map", "0:a:"+strconv.Itoa(k), "-c", "copy",
		"-bsf:a", "aac_adtstoasc", "-f", "framemd5", "-").Output()
	if err != nil {
		t.Fatalf("framemd5 %s: %v", path, err)
	}
	var sums []string
	for _, l := range strings.Split(string(out), "\n") {
		if f := strings.Split(l, ","); len(f) >= 6 && !strings.HasPrefix(l, "#") {
			sums = append(sums, strings.TrimSpace(f[5]))
		}
	}
	return sums
}

// audioFormat is the sample rate and channel count of a file's k-th
// audio stream.
func audioFormat(t *testing.T, path string, k int) (rate, channels int) {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-select_streams", "a:"+strconv.Itoa(k),
		"-show_entries", "stream=sample_rate,channels", "-of", "csv=p=0", path).Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v", path, err)
	}
	if _, err := fmt.Sscanf(strings.TrimSpace(string(out)), "%d,%d", &rate, &channels); err != nil {
		t.Fatalf("ffprobe %s: %q: %v", path, out, err)
	}
	return rate, channels
}
