// Package mediatest makes test media with ffmpeg's lavfi sources
// (testsrc2 and a sine tone) and reads back what tests check with ffprobe.
package mediatest

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// Clip describes a generated clip.
type Clip struct {
	Seconds       float64
	Width, Height int
	FPS           int
	Audio         bool // a 1 kHz sine, 48 kHz stereo
	// GOP is the source keyframe interval in frames (default 2 s).
	GOP int
	// Source is the lavfi video source and its own options ("color=c=white"),
	// testsrc2 when empty; size, rate and duration are added.
	Source string
	// Extra video filters after the source (drawtext, ...).
	VideoFilter string
	// Bitrate, when set, encodes the video the way a typical mezzanine
	// is (x264 veryfast, CABAC, this average bit rate) instead of
	// near-lossless (ultrafast crf 10, about 29 Mb/s at 1080p30).
	Bitrate int
	// VideoArgs, when set, replace the H.264 encoder settings ("-c:v",
	// "libvpx-vp9", ...): the container follows the path's extension.
	VideoArgs []string
	// AudioArgs, when set, replace the AAC encoder settings.
	AudioArgs []string
	// Channels of the sine (default 2).
	Channels int
}

// Make writes the clip as H.264/AAC MP4, at near-lossless quality unless
// c.Bitrate asks for a mezzanine's, so that quality checks measure
// segflow's encode and not the source's.
func Make(t testing.TB, path string, c Clip) {
	t.Helper()
	if c.FPS == 0 {
		c.FPS = 30
	}
	if c.GOP == 0 {
		c.GOP = 2 * c.FPS
	}
	if c.Source == "" {
		c.Source = "testsrc2"
	}
	sep := "="
	if strings.Contains(c.Source, "=") {
		sep = ":"
	}
	src := fmt.Sprintf("%s%ssize=%dx%d:rate=%d:duration=%g", c.Source, sep, c.Width, c.Height, c.FPS, c.Seconds)
	if c.VideoFilter != "" {
		src += "," + c.VideoFilter
	}
	args := []string{"-hide_banner", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i", src}
	if c.Audio {
		if c.Channels == 0 {
			c.Channels = 2
		}
		args = append(args, "-f", "lavfi", "-i", fmt.Sprintf("sine=frequency=1000:sample_rate=48000:duration=%g", c.Seconds), "-ac", strconv.Itoa(c.Channels))
	}
	quality := []string{"-preset", "ultrafast", "-crf", "10"}
	if c.Bitrate > 0 {
		quality = []string{"-preset", "veryfast", "-b:v", strconv.Itoa(c.Bitrate)}
	}
	video := append([]string{"-c:v", "libx264"}, quality...)
	video = append(video, "-pix_fmt", "yuv420p")
	if c.VideoArgs != nil {
		video = c.VideoArgs
	}
	args = append(args, video...)
	args = append(args, "-g", strconv.Itoa(c.GOP))
	if c.Audio {
		audio := []string{"-c:a", "aac", "-b:a", "192k"}
		if c.AudioArgs != nil {
			audio = c.AudioArgs
		}
		args = append(args, audio...)
	}
	if ext := filepath.Ext(path); ext == ".mp4" || ext == ".mov" {
		args = append(args, "-movflags", "+faststart")
	}
	args = append(args, path)
	if out, err := exec.Command("ffmpeg", args...).CombinedOutput(); err != nil {
		t.Fatalf("make clip: %v\n%s", err, out)
	}
}

// Packet is one packet as ffprobe reports it.
type Packet struct {
	PTS, Duration float64
	Key           bool
	Size          int // bytes of payload
}

// Packets lists a stream's packets ("v:0" or "a:0") in presentation order.
func Packets(t testing.TB, path, stream string) []Packet {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-select_streams", stream,
		"-show_entries", "packet=pts_time,duration_time,size,flags", "-of", "csv=p=0", path).Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v", path, err)
	}
	var ps []Packet
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		// ffprobe writes the fields in its own order: pts_time,
		// duration_time, size, flags.
		f := strings.Split(strings.TrimSpace(line), ",")
		if len(f) < 4 {
			continue
		}
		pts, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			continue
		}
		d, _ := strconv.ParseFloat(f[1], 64)
		size, _ := strconv.Atoi(f[2])
		ps = append(ps, Packet{PTS: pts, Duration: d, Size: size, Key: strings.HasPrefix(f[3], "K")})
	}
	sort.Slice(ps, func(i, j int) bool { return ps[i].PTS < ps[j].PTS })
	return ps
}

// Decodes says whether ffmpeg decodes the whole file without an error.
func Decodes(path string) error {
	out, err := exec.Command("ffmpeg", "-hide_banner", "-nostdin", "-v", "error", "-xerror", "-i", path, "-f", "null", "-").CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		return fmt.Errorf("decode %s: %v %s", path, err, out)
	}
	return nil
}

// TaggedClip writes 12 s made for the taggers: the text "SEGFLOW 2026" on
// grey (0-3 s), black (3-6 s), then testsrc2 (6-12 s); silent for 6 s,
// then espeak-ng reading the digits one to nine. The container follows
// the file name (.ts, .mp4).
func TaggedClip(t testing.TB, path string) {
	t.Helper()
	speech := path + ".speech.wav"
	// These espeak-ng settings are ones pocketsphinx's generic model
	// recognises some digits of; synthetic speech is hard for it.
	if out, err := exec.Command("espeak-ng", "-v", "en-us", "-s", "140", "-g", "15", "-p", "40", "-w", speech,
		"one two three four five six seven eight nine").CombinedOutput(); err != nil {
		t.Fatalf("espeak-ng: %v %s", err, out)
	}
	font := "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"
	graph := "color=c=0x404040:s=1280x720:r=30:d=3,drawtext=fontfile=" + font +
		":text='SEGFLOW 2026':fontsize=110:fontcolor=white:x=(w-tw)/2:y=(h-th)/2[v0];" +
		"color=c=black:s=1280x720:r=30:d=3[v1];testsrc2=s=1280x720:r=30:d=6[v2];" +
		"[v0][v1][v2]concat=n=3:v=1:a=0,format=yuv420p[v];" +
		"anullsrc=r=48000:cl=mono,atrim=duration=6[a1];" +
		"[1:a]aresample=48000,apad,atrim=duration=6[a2];[a1][a2]concat=n=2:v=0:a=1,aformat=channel_layouts=stereo[a]"
	cmd := exec.Command("ffmpeg", "-hide_banner", "-nostdin", "-v", "error", "-y",
		"-f", "lavfi", "-i", "nullsrc", "-i", speech,
		"-filter_complex", graph, "-map", "[v]", "-map", "[a]", "-c:v", "libx264", "-preset", "ultrafast", "-g", "60",
		"-c:a", "aac", "-t", "12", path)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make tagged clip: %v %s", err, b)
	}
}

// Codec returns the first video stream's codec name and tag ("hevc",
// "hvc1"), as ffprobe reads them.
func Codec(t testing.TB, path string) (string, string) {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-select_streams", "v:0",
		"-show_entries", "stream=codec_name,codec_tag_string", "-of", "csv=p=0", path).Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v", path, err)
	}
	// MPEG-TS joined from segments may list the stream once per program.
	first, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	name, tag, _ := strings.Cut(first, ",")
	return name, tag
}

// Size returns the first video stream's width and height (an image's
// too), as ffprobe reads them.
func Size(t testing.TB, path string) (int, int) {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-select_streams", "v:0",
		"-show_entries", "stream=width,height", "-of", "csv=p=0", path).Output()
	var w, h int
	if _, serr := fmt.Sscanf(string(out), "%d,%d", &w, &h); err != nil || serr != nil {
		t.Fatalf("ffprobe %s: %q %v %v", path, out, err, serr)
	}
	return w, h
}

// Audio returns the codec and channel count of a file's first audio
// stream.
func Audio(t testing.TB, path string) (string, int) {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-select_streams", "a:0",
		"-show_entries", "stream=codec_name,channels", "-of", "csv=p=0", path).Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v", path, err)
	}
	first, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	name, ch, _ := strings.Cut(first, ",")
	n, _ := strconv.Atoi(ch)
	return name, n
}

// FFmpeg runs ffmpeg quietly with args (inputs, filters, an output) and
// fails the test when it fails: media shaped in ways Make does not.
func FFmpeg(t testing.TB, args ...string) {
	t.Helper()
	if out, err := exec.Command("ffmpeg", append([]string{"-hide_banner", "-nostdin", "-v", "error", "-y"}, args...)...).CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg %v: %v\n%s", args, err, out)
	}
}

// Fields counts a file's frames by what ffmpeg's idet filter sees in
// them: woven from two fields (top or bottom first), or progressive.
func Fields(t testing.TB, path string) (interlaced, progressive int) {
	t.Helper()
	out, err := exec.Command("ffmpeg", "-hide_banner", "-nostdin", "-i", path, "-map", "0:v:0", "-vf", "idet", "-f", "null", "-").CombinedOutput()
	if err != nil {
		t.Fatalf("idet %s: %v\n%s", path, err, out)
	}
	var tff, bff int
	i := strings.LastIndex(string(out), "Multi frame detection:")
	if i < 0 {
		t.Fatalf("idet %s printed no counts:\n%s", path, out)
	}
	fmt.Sscanf(strings.Join(strings.Fields(string(out[i:])), " "), "Multi frame detection: TFF: %d BFF: %d Progressive: %d", &tff, &bff, &progressive)
	return tff + bff, progressive
}

// Color returns the color transfer and primaries a file's first video
// stream declares ("" when it declares none).
func Color(t testing.TB, path string) (transfer, primaries string) {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-select_streams", "v:0",
		"-show_entries", "stream=color_transfer,color_primaries", "-of", "default=nw=1", path).Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v", path, err)
	}
	for _, line := range strings.Split(string(out), "\n") {
		k, v, _ := strings.Cut(strings.TrimSpace(line), "=")
		switch k {
		case "color_transfer":
			transfer = v
		case "color_primaries":
			primaries = v
		}
	}
	if transfer == "unknown" {
		transfer = ""
	}
	if primaries == "unknown" {
		primaries = ""
	}
	return transfer, primaries
}

// Span is how long packets last: from the first one's start to the last
// one's end.
func Span(ps []Packet) float64 {
	if len(ps) == 0 {
		return 0
	}
	return ps[len(ps)-1].PTS + ps[len(ps)-1].Duration - ps[0].PTS
}
