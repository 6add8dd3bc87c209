package media_test

import (
	"context"
	"fmt"
	"math"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segflow/segflow/shared/media"
	"github.com/segflow/segflow/shared/media/mediatest"
	"github.com/segflow/segflow/shared/testenv"
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
				if !testenv.SameFile(t, a.Path, b.Path) || (a.InitPath != "" && !testenv.SameFile(t, a.InitPath, b.InitPath)) {
					t.Errorf("segment %d: two transcodes wrote different bytes", s.Index)
				}
				if a.Codecs == "" || a.Bytes == 0 {
					t.Errorf("output %+v", a)
				}
				checkCodecs(t, a.Path, a.InitPath, a.Codecs)
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
			// Read through as a player reads the playlist's segments one
			// after the other: not one warning (MPEG-TS continuity
			// counters restart in every segment, marked as such).
			if out, err := exec.Command("ffmpeg", "-hide_banner", "-nostdin", "-v", "warning", "-i", whole, "-f", "null", "-").CombinedOutput(); err != nil || len(out) > 0 {
				t.Errorf("playing the segments in a row: %v\n%s", err, out)
			}
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

// checkCodecs compares a rendition's CODECS string with what ffprobe,
// a reader of the bitstream that shares no code with ours, says of the
// stream: profile, level and bit depth.
func checkCodecs(t *testing.T, path, init, codecs string) {
	t.Helper()
	file := path
	if init != "" {
		file = filepath.Join(t.TempDir(), "one.mp4")
		concat(t, file, []string{init, path})
	}
	out, err := exec.Command("ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
		"stream=codec_name,profile,level,pix_fmt", "-of", "csv=p=0", file).Output()
	if err != nil {
		t.Fatal(err)
	}
	line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n") // MPEG-TS: the program's copy follows
	f := strings.Split(line, ",")
	if len(f) != 4 {
		t.Fatalf("ffprobe: %q", out)
	}
	name, profile, pixFmt := f[0], f[1], f[2]
	level, _ := strconv.Atoi(f[3])
	var want string
	ok := false
	switch name {
	case "h264":
		// avc1.PPCCLL: profile_idc, constraint flags, level_idc.
		idc := map[string]string{"High": "64", "Main": "4d", "Constrained Baseline": "42", "Baseline": "42"}[profile]
		want = fmt.Sprintf("avc1.%s..%02x", idc, level)
		ok = len(codecs) == 11 && codecs[:7] == want[:7] && codecs[9:] == want[9:]
	case "hevc":
		want = fmt.Sprintf("hvc1.1.6.L%d.", level) // Main: profile 1, compatibility 6
		ok = profile == "Main" && strings.HasPrefix(codecs, want)
	case "av1":
		want = fmt.Sprintf("av01.0.%02dM.08", level) // Main, seq_level_idx, tier, 8 bits
		ok = profile == "Main" && pixFmt == "yuv420p" && codecs == want
	case "vp9":
		want = "vp09.00.LL.08" // ffprobe knows no VP9 level
		ok = profile == "Profile 0" && pixFmt == "yuv420p" && strings.HasPrefix(codecs, "vp09.00.") && strings.HasSuffix(codecs, ".08")
	}
	if !ok {
		t.Errorf("CODECS %q, but the stream is %s %s level %d %s (want %s)", codecs, name, profile, level, pixFmt, want)
	}
}
