package media_test

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/segflow/segflow/shared/media"
	"github.com/segflow/segflow/shared/media/mediatest"
)

// TestTranscodeCodecs makes one rung of every codec from the segments of a
// split clip and checks what a player and a retried event need: each
// segment decodes on its own (fMP4: with the init segment), the segments
// join into one timeline with keyframes at every segment start and then
// every GOP, the stream is the codec (and tag) the playlist names, and two
// transcodes of one segment running at the same time write the same bytes.
func TestTranscodeCodecs(t *testing.T) {
	if testing.Short() {
		t.Skip("encodes four codecs")
	}
	ctx := context.Background()
	dir := t.TempDir()
	const seconds, fps = 6.0, 30
	// Source keyframes every 1.5 s: a 3 s target cuts at 3.0.
	_, _, segs := splitClip(t, dir, mediatest.Clip{Seconds: seconds, Width: 640, Height: 360, FPS: fps, Audio: true, GOP: 45}, 3*time.Second)
	if len(segs) != 2 {
		t.Fatalf("segments = %+v", segs)
	}
	tests := []struct {
		codec     media.Codec
		probeName string // ffprobe's codec_name
		tag       string // codec_tag_string where players care (hvc1 for Apple)
	}{
		{media.H264, "h264", ""},
		{media.H265, "hevc", "hvc1"},
		{media.VP9, "vp9", ""},
		{media.AV1, "av1", ""},
	}
	for _, tc := range tests {
		t.Run(string(tc.codec), func(t *testing.T) {
			t.Parallel()
			r := media.Rung{Name: string(tc.codec) + "-360p", Codec: tc.codec, Width: 640, Height: 360, Bitrate: 500_000}
			var parts []string // init (fMP4) then every segment, in order
			for _, s := range segs {
				// Two transcodes of the segment at once, as a duplicated
				// event and its original would run.
				var outs [2][]media.Output
				var errs [2]error
				var wg sync.WaitGroup
				for i := range outs {
					wg.Go(func() {
						out := filepath.Join(dir, string(tc.codec), fmt.Sprintf("%d-%d", s.Index, i))
						outs[i], errs[i] = media.Transcode(ctx, s.Path, out, []media.Rung{r}, media.TranscodeOptions{FPS: fps})
					})
				}
				wg.Wait()
				for _, err := range errs {
					if err != nil {
						t.Fatal(err)
					}
				}
				a, b := outs[0][0], outs[1][0]
				if !sameBytes(t, a.Path, b.Path) || (a.InitPath != "" && !sameBytes(t, a.InitPath, b.InitPath)) {
					t.Errorf("segment %d: two transcodes wrote different bytes", s.Index)
				}
				if a.Codecs == "" || a.Bytes == 0 {
					t.Errorf("output %+v", a)
				}
				if len(parts) == 0 && a.InitPath != "" {
					parts = append(parts, a.InitPath)
				}
				one := a.Path
				if a.InitPath != "" {
					one = filepath.Join(dir, string(tc.codec), fmt.Sprintf("one-%d.mp4", s.Index))
					concat(t, one, []string{a.InitPath, a.Path})
				}
				if err := mediatest.Decodes(one); err != nil {
					t.Fatalf("segment %d: %v", s.Index, err)
				}
				parts = append(parts, a.Path)
			}
			whole := filepath.Join(dir, string(tc.codec), "all"+r.SegmentExt())
			concat(t, whole, parts)
			if name, tag := mediatest.Codec(t, whole); name != tc.probeName || (tc.tag != "" && tag != tc.tag) {
				t.Errorf("stream is %s/%s, want %s/%s", name, tag, tc.probeName, tc.tag)
			}
			ps := mediatest.Packets(t, whole, "v:0")
			if r.Container() == "fmp4" {
				// ffmpeg and ISO BMFF readers (players' MSE) place every
				// frame at the same time.
				iso := mediatest.FragmentedPackets(t, whole)
				if len(iso) != len(ps) {
					t.Fatalf("ffprobe reads %d frames, mp4ff %d", len(ps), len(iso))
				}
				for i := range iso {
					if math.Abs(iso[i].PTS-ps[i].PTS) > 1e-4 || iso[i].Key != ps[i].Key {
						t.Fatalf("frame %d: ffprobe %+v, ISO BMFF %+v", i, ps[i], iso[i])
					}
				}
			}
			if len(ps) != int(seconds*fps) {
				t.Errorf("%d frames, want %d", len(ps), int(seconds*fps))
			}
			if got, want := keyframes(t, r.Name, ps, fps), "0.000,2.000,3.000,5.000"; got != want {
				t.Errorf("keyframes at %s, want %s", got, want)
			}
			if math.Abs(ps[0].PTS-segs[0].Start) > 0.0015 {
				t.Errorf("starts at %.4f, source at %.4f", ps[0].PTS, segs[0].Start)
			}
		})
	}
}

func sameBytes(t *testing.T, a, b string) bool {
	t.Helper()
	x, err := os.ReadFile(a)
	if err != nil {
		t.Fatal(err)
	}
	y, err := os.ReadFile(b)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Equal(x, y)
}
