package media_test

import (
	"context"
	"fmt"
	"math"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/segflow/segflow/shared/media"
	"github.com/segflow/segflow/shared/media/mediatest"
)

// Uploads come in codecs MPEG-TS does not carry (VP9 and Opus in WebM,
// AV1, ProRes, MJPEG, DNxHR). They are cut by stream copy all the same,
// into Matroska segments that keep their timing, and every segment
// transcodes into the ladder's H.264 with the segment's timestamps.
func TestSplitAnySourceCodec(t *testing.T) {
	tests := []struct {
		name, file, ext string
		video, audio    []string
	}{
		{"vp9 opus webm", "src.webm", ".mkv", []string{"-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-b:v", "1M"}, []string{"-c:a", "libopus"}},
		{"av1 mkv", "src.mkv", ".mkv", []string{"-c:v", "libsvtav1", "-preset", "12"}, nil},
		{"prores mov", "src.mov", ".mkv", []string{"-c:v", "prores_ks", "-profile:v", "0", "-pix_fmt", "yuv422p10le"}, []string{"-c:a", "pcm_s16le"}},
		{"mjpeg avi", "src.avi", ".mkv", []string{"-c:v", "mjpeg", "-q:v", "5", "-pix_fmt", "yuvj420p"}, []string{"-c:a", "pcm_s16le"}},
		{"dnxhr mxf", "src.mxf", ".mkv", []string{"-c:v", "dnxhd", "-profile:v", "dnxhr_lb", "-pix_fmt", "yuv422p"}, []string{"-c:a", "pcm_s16le"}},
		{"mpeg-2 ps", "src.mpg", ".ts", []string{"-c:v", "mpeg2video", "-b:v", "2M"}, []string{"-c:a", "mp2"}},
	}
	ctx := context.Background()
	const seconds, fps = 6.0, 25
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			src := filepath.Join(dir, tc.file)
			mediatest.Make(t, src, mediatest.Clip{Seconds: seconds, Width: 640, Height: 360, FPS: fps, GOP: fps,
				Audio: true, VideoArgs: tc.video, AudioArgs: tc.audio})
			info, err := media.Probe(ctx, src)
			if err != nil {
				t.Fatal(err)
			}
			if got := media.SourceExt(info.Video.Codec); got != tc.ext {
				t.Fatalf("%s source segments go in %s, want %s", info.Video.Codec, got, tc.ext)
			}
			segs, err := media.Split(ctx, src, filepath.Join(dir, "source"), info, media.SplitOptions{Target: 2 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			if len(segs) < 3 {
				t.Fatalf("%d segments", len(segs))
			}
			total := 0.0
			for i, s := range segs {
				if filepath.Ext(s.Path) != tc.ext {
					t.Errorf("segment %d is %s", i, s.Path)
				}
				if i > 0 && math.Abs(segs[i-1].Start+segs[i-1].Duration-s.Start) > 1e-6 {
					t.Errorf("segment %d starts at %.6f, the one before ends at %.6f", i, s.Start, segs[i-1].Start+segs[i-1].Duration)
				}
				if codec, ch := mediatest.Audio(t, s.Path); codec != "aac" || ch != 2 {
					t.Errorf("segment %d audio is %q in %d channels, want aac stereo", i, codec, ch)
				}
				total += s.Duration
			}
			if math.Abs(total-seconds) > 1.0/fps+1e-3 {
				t.Errorf("segments last %.4fs, the source %.1fs", total, seconds)
			}
			// Each segment transcodes at its own place on the timeline: the
			// first too, whose B-frame encode starts decoding before it.
			rungs := []media.Rung{{Name: "180p", Codec: media.H264, Width: 320, Height: 180, Bitrate: 300_000, Profile: "main", Level: "3.0"}}
			for _, s := range segs[:2] {
				outs, err := media.Transcode(ctx, s.Path, filepath.Join(dir, "out", strconv.Itoa(s.Index)), rungs,
					media.TranscodeOptions{FPS: info.Video.FPS, Audio: []string{"audio"}})
				if err != nil {
					t.Fatal(err)
				}
				ps := mediatest.Packets(t, outs[0].Path, "v:0")
				if math.Abs(ps[0].PTS-s.Start) > 1e-3 || !ps[0].Key {
					t.Errorf("segment %d: rendition starts at %.4f (key %v), the segment at %.4f", s.Index, ps[0].PTS, ps[0].Key, s.Start)
				}
				if want := int(math.Round(s.Duration * fps)); len(ps) != want {
					t.Errorf("segment %d: rendition has %d frames, the segment %d", s.Index, len(ps), want)
				}
				if err := mediatest.Decodes(outs[1].Path); err != nil {
					t.Errorf("segment %d audio: %v", s.Index, err)
				}
			}
		})
	}
}

// Audio alone (a song, a podcast) is cut into MPEG-TS segments of AAC at
// the target duration, timed by the audio, and each transcodes to the
// audio rendition alone.
func TestSplitAudioOnly(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	src := filepath.Join(dir, "talk.mp3")
	if err := runFF("-f", "lavfi", "-i", "sine=frequency=300:sample_rate=44100:duration=7", "-ac", "1", "-c:a", "libmp3lame", src); err != nil {
		t.Fatal(err)
	}
	info, err := media.Probe(ctx, src)
	if err != nil || !info.AudioOnly() {
		t.Fatalf("probe: %+v %v", info, err)
	}
	segs, err := media.Split(ctx, src, filepath.Join(dir, "source"), info, media.SplitOptions{Target: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	total := 0.0
	for i, s := range segs {
		if filepath.Ext(s.Path) != ".ts" || (i < len(segs)-1 && math.Abs(s.Duration-2) > 0.05) {
			t.Errorf("segment %d: %+v", i, s)
		}
		if i > 0 && math.Abs(segs[i-1].Start+segs[i-1].Duration-s.Start) > 1e-6 {
			t.Errorf("segment %d starts at %.6f, the one before ends at %.6f", i, s.Start, segs[i-1].Start+segs[i-1].Duration)
		}
		total += s.Duration
	}
	if len(segs) != 4 || math.Abs(total-7) > 0.05 {
		t.Fatalf("%d segments lasting %.3fs, want 4 lasting 7s", len(segs), total)
	}
	outs, err := media.Transcode(ctx, segs[1].Path, filepath.Join(dir, "out"), nil, media.TranscodeOptions{Audio: []string{"audio"}})
	if err != nil || len(outs) != 1 || outs[0].Rung.Name != "audio" {
		t.Fatalf("transcode: %+v %v", outs, err)
	}
	if codec, ch := mediatest.Audio(t, outs[0].Path); codec != "aac" || ch != 2 {
		t.Errorf("audio rendition is %s in %d channels", codec, ch)
	}
}

// A live segment whose audio stops before its video (the publisher's
// encoder stopped its audio first), has a hole in it, or has none at all,
// still makes an audio rendition that covers the video: silence where
// the sound is missing. The same in MPEG-TS and in CMAF (a live stream
// packaged cmaf).
func TestLiveAudioGapsAreFilled(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	tests := []struct {
		name    string
		seconds float64
		audio   []string // extra ffmpeg arguments for the audio; nil: none
	}{
		{"audio stops early", 4, []string{"-f", "lavfi", "-i", "sine=duration=2.6"}},
		{"a hole mid-segment", 4, []string{"-f", "lavfi", "-i", "sine=duration=4", "-af", "aselect='not(between(t,1,2.5))'"}},
		{"whole", 4, []string{"-f", "lavfi", "-i", "sine=duration=4"}},
		{"no audio", 4, nil},
		// The last segment of a publisher that dropped: two frames.
		{"two frames, two audio frames", 2.0 / 30, []string{"-f", "lavfi", "-i", "sine=duration=0.045"}},
		{"two frames, one audio frame", 2.0 / 30, []string{"-f", "lavfi", "-i", "sine=duration=0.02"}},
	}
	for _, tc := range tests {
		seg := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-")+".ts")
		args := append([]string{"-f", "lavfi", "-i", fmt.Sprintf("testsrc2=size=320x180:rate=30:duration=%g", tc.seconds)}, tc.audio...)
		args = append(args, "-c:v", "libx264", "-g", "60", "-c:a", "aac", "-f", "mpegts", seg)
		mediatest.FFmpeg(t, args...)
		for _, cmaf := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s cmaf=%v", tc.name, cmaf), func(t *testing.T) {
				rungs := []media.Rung{{Name: "180p", Codec: media.H264, Width: 320, Height: 180, Bitrate: 300_000, Profile: "main", Level: "3.0", CMAF: cmaf}}
				out := filepath.Join(dir, fmt.Sprintf("out-%s-%v", filepath.Base(seg), cmaf))
				outs, err := media.Transcode(ctx, seg, out, rungs, media.TranscodeOptions{FPS: 30, Audio: []string{"audio"}, Live: true, CMAF: cmaf})
				if err != nil {
					t.Fatal(err)
				}
				checkFilled(t, out, outs)
			})
		}
	}
}

// checkFilled checks a live segment's renditions: each decodes, and the
// audio runs without a gap from the video's first frame to its last.
func checkFilled(t *testing.T, dir string, outs []media.Output) {
	t.Helper()
	files := make([]string, len(outs))
	for i, o := range outs {
		files[i] = o.Path
		if o.InitPath != "" {
			files[i] = filepath.Join(dir, o.Rung.Name+"-whole.mp4")
			concat(t, files[i], []string{o.InitPath, o.Path})
		}
		if err := mediatest.Decodes(files[i]); err != nil {
			t.Error(err)
		}
	}
	v, a := mediatest.Packets(t, files[0], "v:0"), mediatest.Packets(t, files[1], "a:0")
	if len(a) == 0 {
		t.Fatal("no audio")
	}
	for i := 1; i < len(a); i++ {
		d := a[i-1].Duration
		if d == 0 { // ffprobe gives an MP4's first packet no duration
			d = a[i].Duration
		}
		if gap := a[i].PTS - a[i-1].PTS - d; math.Abs(gap) > 0.005 {
			t.Errorf("audio gap of %.4fs at %.3f", gap, a[i].PTS)
		}
	}
	vEnd, aEnd := v[len(v)-1].PTS+1.0/30, a[len(a)-1].PTS+a[len(a)-1].Duration
	if math.Abs(a[0].PTS-v[0].PTS) > 0.05 || math.Abs(aEnd-vEnd) > 0.05 {
		t.Errorf("audio %.3f-%.3f, video %.3f-%.3f", a[0].PTS, aEnd, v[0].PTS, vEnd)
	}
}
