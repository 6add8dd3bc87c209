package media_test

import (
	"context"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/segflow/segflow/shared/media"
	"github.com/segflow/segflow/shared/media/mediatest"
)

// TestTranscodeCMAF makes an H.264 rung and the audio of a split clip as
// CMAF (fragmented MP4 with init segments) beside the same rung as
// MPEG-TS, and checks what HLS, DASH and I-frame playlists rely on: each
// CMAF track plays through its segments without a warning, the segments'
// decode times (what a DASH SegmentTimeline lists) follow one another
// exactly, the audio starts with the video, and every keyframe the
// transcode reports is a decodable picture at the time it says, read from
// its byte range alone (after the init segment, or the TS segment's
// PAT/PMT).
func TestTranscodeCMAF(t *testing.T) {
	if testing.Short() {
		t.Skip("encodes")
	}
	ctx := context.Background()
	dir := t.TempDir()
	const fps = 30
	// Source keyframes every 1.5 s: a 3 s target cuts at 3.0 and 6.0.
	_, _, segs := splitClip(t, dir, mediatest.Clip{Seconds: 9, Width: 640, Height: 360, FPS: fps, Audio: true, GOP: 45}, 3*time.Second)
	if len(segs) != 3 {
		t.Fatalf("segments = %+v", segs)
	}
	cmaf := media.Rung{Name: "360p", Codec: media.H264, Width: 640, Height: 360, Bitrate: 500_000, Profile: "main", Level: "3.0", CMAF: true}
	ts := cmaf
	ts.Name, ts.CMAF = "ts-360p", false
	files := map[string][]media.Output{}
	for _, s := range segs {
		outs, err := media.Transcode(ctx, s.Path, filepath.Join(dir, "out", fmt.Sprint(s.Index)), []media.Rung{cmaf, ts},
			media.TranscodeOptions{FPS: fps, Audio: []string{"audio"}, CMAF: true})
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range outs {
			files[o.Rung.Name] = append(files[o.Rung.Name], o)
		}
	}
	for _, name := range []string{"360p", "audio"} {
		outs := files[name]
		if outs[0].InitPath == "" || filepath.Ext(outs[0].Path) != ".m4s" {
			t.Fatalf("%s: not CMAF: %+v", name, outs[0])
		}
		parts := []string{outs[0].InitPath}
		for i, o := range outs {
			parts = append(parts, o.Path)
			// Each segment starts where its source's stream does, on the
			// source's timeline.
			src := segs[i].Start
			if name == "audio" {
				src = mediatest.Packets(t, segs[i].Path, "a:0")[0].PTS
			}
			if got := float64(o.Time) / float64(o.Timescale); o.Timescale == 0 || math.Abs(got-src) > 1e-4 {
				t.Errorf("%s segment %d starts at %d/%d, its source at %.6f", name, i, o.Time, o.Timescale, src)
			}
		}
		whole := filepath.Join(dir, name+"-all.mp4")
		concat(t, whole, parts)
		if out, err := exec.Command("ffmpeg", "-hide_banner", "-nostdin", "-v", "warning", "-i", whole, "-f", "null", "-").CombinedOutput(); err != nil || len(out) > 0 {
			t.Errorf("%s: playing the segments in a row: %v\n%s", name, err, out)
		}
	}
	checkCodecs(t, files["360p"][0].Path, files["360p"][0].InitPath, files["360p"][0].Codecs)
	if c := files["audio"][0].Codecs; c != "mp4a.40.2" {
		t.Errorf("audio CODECS %q", c)
	}
	video := mediatest.Packets(t, filepath.Join(dir, "360p-all.mp4"), "v:0")
	audio := mediatest.Packets(t, filepath.Join(dir, "audio-all.mp4"), "a:0")
	if len(video) != 9*fps || math.Abs(video[0].PTS-segs[0].Start) > 0.0015 {
		t.Errorf("video: %d frames from %.4f, want %d from %.4f", len(video), video[0].PTS, 9*fps, segs[0].Start)
	}
	if math.Abs(audio[0].PTS-video[0].PTS) > 0.03 {
		t.Errorf("audio starts at %.4f, video at %.4f", audio[0].PTS, video[0].PTS)
	}
	// One AAC frame after another across the seams (ffprobe gives the
	// first packet no duration).
	for i := 1; i < len(audio); i++ {
		if gap := audio[i].PTS - audio[i-1].PTS - 1024.0/48000; math.Abs(gap) > 0.0001 {
			t.Errorf("audio gap of %.4fs at %.3f", gap, audio[i].PTS)
		}
	}
	// I-frames: at 0 and 2 s in every 3 s segment (the GOP is 2 s), in
	// both containers, each a picture of its own.
	for _, name := range []string{"360p", "ts-360p"} {
		for i, o := range files[name] {
			var times []string
			for _, kf := range o.Keyframes {
				times = append(times, fmt.Sprintf("%.3f", kf.Time))
				checkIFrame(t, dir, o, kf, segs[i].Start)
			}
			if got := strings.Join(times, ","); got != "0.000,2.000" {
				t.Errorf("%s segment %d: keyframes at %s, want 0.000,2.000", name, i, got)
			}
		}
	}
}

// checkIFrame cuts one keyframe's byte range out of its segment as an
// I-frame playlist's player reads it (after the init segment for fMP4;
// for MPEG-TS after the segment's bytes before its first keyframe, its
// PAT and PMT) and checks that it holds one decodable keyframe shown at
// the segment's start plus the keyframe's time.
func checkIFrame(t *testing.T, dir string, o media.Output, kf media.Keyframe, start float64) {
	t.Helper()
	seg, err := os.ReadFile(o.Path)
	if err != nil {
		t.Fatal(err)
	}
	if kf.Offset < 0 || kf.Size <= 0 || kf.Offset+kf.Size > int64(len(seg)) {
		t.Fatalf("%s: keyframe %+v outside the segment's %d bytes", o.Path, kf, len(seg))
	}
	var head []byte
	if o.InitPath != "" {
		if head, err = os.ReadFile(o.InitPath); err != nil {
			t.Fatal(err)
		}
	} else {
		head = seg[:o.Keyframes[0].Offset]
	}
	file := filepath.Join(dir, fmt.Sprintf("iframe-%s-%d%s", o.Rung.Name, kf.Offset, filepath.Ext(o.Path)))
	if filepath.Ext(o.Path) == ".m4s" {
		file = strings.TrimSuffix(file, ".m4s") + ".mp4"
	}
	if err := os.WriteFile(file, append(append([]byte(nil), head...), seg[kf.Offset:kf.Offset+kf.Size]...), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "frame=pts_time,key_frame,pict_type",
		"-of", "csv=p=0", file).Output()
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	var pts float64
	var key int
	var pict string
	if _, err := fmt.Sscanf(strings.ReplaceAll(line, ",", " "), "%d %f %s", &key, &pts, &pict); err != nil || key != 1 || pict != "I" {
		t.Fatalf("%s: first frame %q, want a keyframe", file, line)
	}
	if want := start + kf.Time; math.Abs(pts-want) > 0.0015 {
		t.Errorf("%s: keyframe shown at %.4f, want %.4f", file, pts, want)
	}
}
