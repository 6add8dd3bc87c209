package media_test

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/segflow/segflow/shared/media"
	"github.com/segflow/segflow/shared/media/mediatest"
)

func TestProbeRejectsBadInput(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	good := filepath.Join(dir, "good.mp4")
	mediatest.Make(t, good, mediatest.Clip{Seconds: 2, Width: 320, Height: 240, Audio: true})
	data, _ := os.ReadFile(good)

	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, b, 0o644)
		return p
	}
	random := make([]byte, 64<<10)
	for i := range random {
		random[i] = byte(i*7919 + i/13)
	}
	srt := write("cues.srt", []byte("1\n00:00:00,000 --> 00:00:01,000\nhello\n"))
	dataOnly := filepath.Join(dir, "cues.mkv")
	mustFF(t, "-i", srt, "-c:s", "srt", dataOnly)

	// Files that make ffmpeg open what they name: another media file on
	// this machine (here the good clip, as TS) or any URL.
	other := filepath.Join(dir, "someone-elses.ts")
	mustFF(t, "-i", good, "-c", "copy", "-f", "mpegts", other)
	playlist := "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2,\n" + other + "\n#EXT-X-ENDLIST\n"
	image := filepath.Join(dir, "photo.jpg")
	mustFF(t, "-f", "lavfi", "-i", "testsrc2=size=320x240", "-frames:v", "1", image)
	png := filepath.Join(dir, "logo.png")
	mustFF(t, "-f", "lavfi", "-i", "testsrc2=size=320x240", "-frames:v", "1", png)
	tests := []struct {
		name string
		path string
		want error
	}{
		{"an HLS playlist named .mp4", write("evil.mp4", []byte(playlist)), media.ErrNotMedia},
		{"an HLS playlist after a BOM", write("evil2.mp4", []byte("\ufeff\n"+playlist)), media.ErrNotMedia},
		{"ffconcat", write("evil.mov", []byte("ffconcat version 1.0\nfile '"+other+"'\n")), media.ErrNotMedia},
		{"DASH manifest", write("evil.mpd", []byte(`<?xml version="1.0"?><MPD xmlns="urn:mpeg:dash:schema:mpd:2011"></MPD>`)), media.ErrNotMedia},
		{"a JPEG photo", image, media.ErrNotMedia},
		{"a PNG", png, media.ErrNotMedia},
		{"random bytes", write("random.mp4", random), media.ErrNotMedia},
		{"text", write("notes.txt", []byte("hello, this is not a video\n")), media.ErrNotMedia},
		{"truncated", write("cut.mp4", data[:len(data)/2]), media.ErrTruncated},
		{"a subtitle track only", dataOnly, media.ErrNotMedia},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			info, err := media.Probe(ctx, tc.path)
			if err == nil {
				err = media.CheckIntegrity(ctx, tc.path)
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v (info %+v), want %v", err, info, tc.want)
			}
		})
	}
	info, err := media.Probe(ctx, good)
	if err != nil || media.CheckIntegrity(ctx, good) != nil {
		t.Fatalf("good clip: %v", err)
	}
	if info.Video.Width != 320 || info.Video.FPS != 30 || info.Audio == nil || math.Abs(info.Duration-2) > 0.1 || info.AudioOnly() {
		t.Fatalf("info = %+v video %+v", info, info.Video)
	}
}

// A song or a podcast is an upload too: audio alone, with its album art
// (a still picture, not a video) when it has some.
func TestProbeAudioOnly(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	cover := filepath.Join(dir, "cover.jpg")
	mustFF(t, "-f", "lavfi", "-i", "testsrc2=size=300x300", "-frames:v", "1", cover)
	plain, song := filepath.Join(dir, "talk.m4a"), filepath.Join(dir, "song.mp3")
	mustFF(t, "-f", "lavfi", "-i", "sine=duration=1", "-c:a", "aac", plain)
	mustFF(t, "-f", "lavfi", "-i", "sine=duration=1", "-i", cover, "-map", "0", "-map", "1", "-c:a", "libmp3lame",
		"-c:v", "mjpeg", "-disposition:v", "attached_pic", song)
	for _, tc := range []struct {
		path  string
		cover bool
	}{{plain, false}, {song, true}} {
		info, err := media.Probe(ctx, tc.path)
		if err != nil || !info.AudioOnly() || info.CoverArt != tc.cover {
			t.Errorf("%s: %+v %v: want audio only, cover art %v", tc.path, info, err, tc.cover)
		}
	}
}

func mustFF(t *testing.T, args ...string) {
	t.Helper()
	if err := runFF(args...); err != nil {
		t.Fatal(err)
	}
}

// TestSplitTranscodeSeams splits a clip, transcodes every segment to the
// whole ladder and checks what a player needs at the seams.
func TestSplitTranscodeSeams(t *testing.T) {
	if testing.Short() {
		t.Skip("encodes 1080p")
	}
	ctx := context.Background()
	dir := t.TempDir()
	const seconds, fps = 10.0, 30
	src, info, segs := splitClip(t, dir, mediatest.Clip{Seconds: seconds, Width: 1920, Height: 1080, FPS: fps, Audio: true, GOP: 45}, 4*time.Second)
	// Keyframes every 1.5 s: cuts at 3.0 (the first keyframe from the
	// 2 s lead on) and 6.0 (from 2+4 on).
	if len(segs) != 3 || math.Abs(segs[0].Duration-3) > 0.001 || math.Abs(segs[1].Duration-3) > 0.001 {
		t.Fatalf("segments = %+v", segs)
	}
	total := 0.0
	for i, s := range segs {
		total += s.Duration
		if i > 0 && math.Abs(segs[i-1].Start+segs[i-1].Duration-s.Start) > 1e-6 {
			t.Fatalf("segment %d does not start where %d ends: %+v", i, i-1, segs)
		}
	}
	if math.Abs(total-seconds) > 1.0/fps {
		t.Fatalf("segments last %.3fs, source %.3fs", total, seconds)
	}

	rungs, err := media.Ladder(info.Video, []media.Codec{media.H264})
	if err != nil {
		t.Fatal(err)
	}
	rungs = append(rungs, media.Rung{Name: "av1-360p", Codec: media.AV1, Width: 640, Height: 360, Bitrate: 400_000})
	files := map[string][]string{}
	var initAV1 string
	for _, s := range segs {
		outs, err := media.Transcode(ctx, s.Path, filepath.Join(dir, "out", filepath.Base(s.Path)), rungs,
			media.TranscodeOptions{FPS: info.Video.FPS, Audio: []string{"audio"}})
		if err != nil {
			t.Fatal(err)
		}
		if len(outs) != len(rungs)+1 {
			t.Fatalf("outputs = %d", len(outs))
		}
		for _, o := range outs {
			files[o.Rung.Name] = append(files[o.Rung.Name], o.Path)
			if o.InitPath != "" {
				initAV1 = o.InitPath
			}
			if o.Bytes == 0 || o.Codecs == "" {
				t.Fatalf("output %+v", o)
			}
		}
	}
	for _, r := range rungs {
		whole := filepath.Join(dir, r.Name+"-all"+r.SegmentExt())
		parts := files[r.Name]
		if r.Container() == "fmp4" {
			parts = append([]string{initAV1}, parts...)
		}
		concat(t, whole, parts)
		// Every segment decodes on its own, as a player fetches it (MPEG-TS
		// continuity counters restart per file, so the byte concatenation
		// is only read for timestamps).
		for _, p := range files[r.Name] {
			if r.Container() == "fmp4" {
				p = filepath.Join(dir, "one.mp4")
				concat(t, p, []string{initAV1, files[r.Name][0]})
			}
			if err := mediatest.Decodes(p); err != nil {
				t.Fatalf("%s: %v", r.Name, err)
			}
		}
		ps := mediatest.Packets(t, whole, "v:0")
		if len(ps) != int(seconds*fps) {
			t.Errorf("%s: %d frames, want %d", r.Name, len(ps), int(seconds*fps))
		}
		// A keyframe at every segment start, then every 2 s in the segment.
		keys := keyframes(t, r.Name, ps, fps)
		if want := "0.000,2.000,3.000,5.000,6.000,8.000"; keys != want {
			t.Errorf("%s: keyframes at %v, want %s", r.Name, keys, want)
		}
		if math.Abs(ps[0].PTS-segs[0].Start) > 0.0015 {
			t.Errorf("%s starts at %.4f, source at %.4f", r.Name, ps[0].PTS, segs[0].Start)
		}
	}
	// Audio: encoded once and cut between packets, so the seams are gapless.
	audio := filepath.Join(dir, "audio-all.ts")
	concat(t, audio, files["audio"])
	aps := mediatest.Packets(t, audio, "a:0")
	for i := 1; i < len(aps); i++ {
		gap := aps[i].PTS - (aps[i-1].PTS + aps[i-1].Duration)
		if math.Abs(gap) > 0.005 {
			t.Errorf("audio gap of %.4fs at %.3f", gap, aps[i].PTS)
		}
	}
	if math.Abs(aps[0].PTS-segs[0].Start) > 0.03 {
		t.Errorf("audio starts at %.4f, the video at %.4f", aps[0].PTS, segs[0].Start)
	}
	// The TS around the AAC payload: several frames per PES, PAT/PMT once
	// per segment, so that it costs little of the variant's BANDWIDTH.
	for _, p := range files["audio"] {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		payload := 0
		for _, pk := range mediatest.Packets(t, p, "a:0") {
			payload += pk.Size
		}
		if over := float64(fi.Size())/float64(payload) - 1; over > 0.15 {
			t.Errorf("%s: MPEG-TS is %.0f%% over its AAC payload, want <= 15%%", p, over*100)
		}
	}
	top := filepath.Join(dir, "1080p-all.ts")
	psnr, err := media.PSNR(ctx, src, top, 1920, 1080)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("1080p PSNR %.2f dB", psnr)
	if psnr < 38 {
		t.Errorf("1080p PSNR %.2f dB < 38", psnr)
	}
}

func concat(t *testing.T, out string, parts []string) {
	t.Helper()
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range parts {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		f.Write(b)
	}
}
