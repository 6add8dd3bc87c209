package e2e

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

	"github.com/segflow/segflow/infra/internal/e2ekit"
	"github.com/segflow/segflow/infra/internal/teststack"
	"github.com/segflow/segflow/shared/asset"
	"github.com/segflow/segflow/shared/layout"
	"github.com/segflow/segflow/shared/media"
	"github.com/segflow/segflow/shared/media/mediatest"
)

// A phone films upright into a landscape frame and says so in the display
// matrix; the MPEG-TS source segments do not carry it. Every rendition
// must come out upright: portrait sizes from the displayed size, and the
// same picture as ffmpeg's own autorotated decode of the upload.
func TestPhoneRotationPlaysUpright(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the stack")
	}
	s := teststack.Up(t)
	ctx := context.Background()
	dir := t.TempDir()
	const seconds, fps = 4.0, 30
	landscape := filepath.Join(dir, "landscape.mp4")
	mediatest.Make(t, landscape, mediatest.Clip{Seconds: seconds, Width: 1280, Height: 720, FPS: fps, Audio: true})
	// What phones write: shown turned 90 degrees clockwise.
	phone := filepath.Join(dir, "phone.mp4")
	if out, err := exec.Command("ffmpeg", "-hide_banner", "-v", "error", "-y", "-i", landscape, "-c", "copy",
		"-metadata:s:v:0", "rotate=270", phone).CombinedOutput(); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	probe, err := media.Probe(ctx, phone)
	if err != nil || probe.Video.Rotation != 270 || probe.Video.DisplayWidth != 720 || probe.Video.DisplayHeight != 1280 {
		t.Fatalf("probe of the phone clip: %+v %v", probe.Video, err)
	}

	s.Upload("uploads/phone.mp4", phone, nil)
	id := e2ekit.AssetOf(t, s, "uploads/phone.mp4")
	s.WaitStatus(id, 4*time.Minute, asset.StateComplete)
	a := layout.Asset(id)
	if m := e2ekit.ReadManifest(t, s, id); m.Rotation != 270 || m.Width != 720 || m.Height != 1280 {
		t.Fatalf("manifest: rotation %d, %dx%d; want 270, 720x1280", m.Rotation, m.Width, m.Height)
	}
	variants := masterPlaylist(t, s, id).Variants
	if len(variants) < 2 {
		t.Fatalf("master lists %d variants", len(variants))
	}
	for _, v := range variants {
		var w, h int
		if _, err := fmt.Sscanf(v.Resolution, "%dx%d", &w, &h); err != nil || h <= w {
			t.Errorf("variant %s: RESOLUTION %q is not portrait", v.URI, v.Resolution)
		}
	}
	// The top rendition is the upload's picture upright: compared with
	// ffmpeg's autorotated decode of the upload, not with a sideways one.
	top := fetchRendition(t, s, a.Prefix(), variants[0].URI, filepath.Join(dir, "top.ts"), seconds, fps)
	var w, h int
	fmt.Sscanf(variants[0].Resolution, "%dx%d", &w, &h)
	psnr, err := media.PSNR(ctx, phone, top, w, h)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: %dx%d, PSNR %.2f dB against the upright upload", variants[0].URI, w, h, psnr)
	if psnr < 30 {
		t.Errorf("top rendition PSNR %.2f dB against the upright upload: not the upright picture", psnr)
	}
	// The poster is upright too (thumbnail, at a lower priority, may
	// write it after the asset completes).
	e2ekit.WaitObject(t, s, a.Thumb("poster.jpg"))
	poster := filepath.Join(dir, "poster.jpg")
	if _, err := s.Store.GetFile(ctx, s.Bucket, a.Thumb("poster.jpg"), poster); err != nil {
		t.Fatal(err)
	}
	if pw, ph := mediatest.Size(t, poster); ph <= pw {
		t.Errorf("poster is %dx%d: not portrait", pw, ph)
	}
}

// A source above 1080p also gets a rung at its own height, and none above
// it.
func TestQHDGetsItsOwnRung(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the stack")
	}
	s := teststack.Up(t)
	ctx := context.Background()
	dir := t.TempDir()
	const seconds, fps = 2.0, 30
	src := filepath.Join(dir, "qhd.mp4")
	mediatest.Make(t, src, mediatest.Clip{Seconds: seconds, Width: 2560, Height: 1440, FPS: fps})
	s.Upload("uploads/qhd.mp4", src, nil)
	id := e2ekit.AssetOf(t, s, "uploads/qhd.mp4")
	s.WaitStatus(id, 4*time.Minute, asset.StateComplete)
	a := layout.Asset(id)
	variants := masterPlaylist(t, s, id).Variants
	var got []string
	for _, v := range variants {
		got = append(got, v.Resolution)
	}
	if len(got) != 5 || got[0] != "2560x1440" || got[1] != "1920x1080" {
		t.Fatalf("variants %v, want 2560x1440 first, then 1920x1080 and down (5 in all)", got)
	}
	top := fetchRendition(t, s, a.Prefix(), variants[0].URI, filepath.Join(dir, "top.ts"), seconds, fps)
	if psnr, err := media.PSNR(ctx, src, top, 2560, 1440); err != nil || psnr < 35 {
		t.Fatalf("1440p PSNR %.2f dB (%v)", psnr, err)
	}
}

// shape is what an upload is expected to become.
type shape struct {
	seconds float64
	fps     int
	// width and height are the displayed (upright, cropped) source size:
	// no rendition is larger, and each keeps its aspect within 2%.
	width, height int
	// channels of the stereo audio rendition; 0: the asset has no audio.
	channels int
}

// checkRenditions reads every variant of an asset's master as a player
// does and checks what every upload must give: each segment decodes on
// its own, each rendition lasts the source within a frame at a constant
// frame rate, is no larger than the source and keeps its aspect, and
// keyframes fall at the same times in every rung; the audio has the
// channels asked for and lasts as long. It returns the renditions (one
// file each, by name) for the caller's own checks.
func checkRenditions(t *testing.T, s *teststack.Stack, id string, want shape) map[string]string {
	t.Helper()
	dir := t.TempDir()
	a := layout.Asset(id)
	master := masterPlaylist(t, s, id)
	if len(master.Variants) == 0 {
		t.Fatal("master lists no variants")
	}
	frame := 1.0 / float64(want.fps)
	var keyTimes []string
	files := map[string]string{}
	for _, v := range master.Variants {
		name := strings.TrimSuffix(v.URI, ".m3u8")
		file := fetchRendition(t, s, a.Prefix(), v.URI, filepath.Join(dir, name+".ts"), want.seconds, want.fps)
		files[name] = file
		w, h := mediatest.Size(t, file)
		if w > want.width || h > want.height {
			t.Errorf("%s is %dx%d, larger than the %dx%d source", name, w, h, want.width, want.height)
		}
		if got, src := float64(w)/float64(h), float64(want.width)/float64(want.height); math.Abs(got/src-1) > 0.02 {
			t.Errorf("%s is %dx%d: aspect %.3f, the source's %.3f", name, w, h, got, src)
		}
		ps := mediatest.Packets(t, file, "v:0")
		var keys []string
		for i, p := range ps {
			if i > 0 && math.Abs(p.PTS-ps[i-1].PTS-frame) > 0.0015 {
				t.Errorf("%s: frame interval %.4fs at %.3f, want %.4f", name, p.PTS-ps[i-1].PTS, p.PTS, frame)
			}
			if p.Key {
				keys = append(keys, ftoa(p.PTS))
			}
		}
		if span := mediatest.Span(ps); math.Abs(span-want.seconds) > frame+1e-3 {
			t.Errorf("%s lasts %.4fs, the source %.3fs", name, span, want.seconds)
		}
		keyTimes = append(keyTimes, strings.Join(keys, ","))
	}
	for i := 1; i < len(keyTimes); i++ {
		if keyTimes[i] != keyTimes[0] {
			t.Errorf("keyframes differ between renditions:\n%s\n%s", keyTimes[0], keyTimes[i])
		}
	}
	if want.channels == 0 {
		return files
	}
	audio := fetchRendition(t, s, a.Prefix(), "audio.m3u8", filepath.Join(dir, "audio.ts"), want.seconds, want.fps)
	files["audio"] = audio
	if codec, ch := mediatest.Audio(t, audio); codec != "aac" || ch != want.channels {
		t.Errorf("audio is %s in %d channels, want aac in %d", codec, ch, want.channels)
	}
	checkAudioTimeline(t, "audio", audio, want.seconds)
	return files
}

// checkAudioTimeline checks that an audio rendition (its segments joined
// in one file) runs without a gap and lasts the source's seconds.
func checkAudioTimeline(t *testing.T, name, file string, seconds float64) {
	t.Helper()
	aps := mediatest.Packets(t, file, "a:0")
	for i := 1; i < len(aps); i++ {
		if gap := aps[i].PTS - aps[i-1].PTS - aps[i-1].Duration; math.Abs(gap) > 0.005 {
			t.Errorf("%s: gap of %.4fs at %.3f", name, gap, aps[i].PTS)
		}
	}
	if span := mediatest.Span(aps); math.Abs(span-seconds) > 0.05 {
		t.Errorf("%s lasts %.3fs, the source %.3fs", name, span, seconds)
	}
}

// A WebM from a browser or a screen recorder (VP9 and Opus, which
// MPEG-TS cannot carry) becomes the same H.264 ladder as any MP4, and so
// do AV1 and ProRes masters.
func TestNonTSSourcesPlay(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the stack")
	}
	s := teststack.Up(t)
	ctx := context.Background()
	const seconds, fps = 6.0, 25
	tests := []struct {
		file         string
		video, audio []string
	}{
		{"screen.webm", []string{"-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-b:v", "2M"}, []string{"-c:a", "libopus"}},
		{"master.mov", []string{"-c:v", "prores_ks", "-profile:v", "0", "-pix_fmt", "yuv422p10le"}, []string{"-c:a", "pcm_s24le"}},
		{"film.mkv", []string{"-c:v", "libsvtav1", "-preset", "12"}, []string{"-c:a", "libopus"}},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			src := filepath.Join(t.TempDir(), tc.file)
			mediatest.Make(t, src, mediatest.Clip{Seconds: seconds, Width: 1280, Height: 720, FPS: fps, GOP: 2 * fps,
				Audio: true, VideoArgs: tc.video, AudioArgs: tc.audio})
			key := "uploads/" + tc.file
			s.Upload(key, src, nil)
			id := e2ekit.AssetOf(t, s, key)
			s.WaitStatus(id, 4*time.Minute, asset.StateComplete)
			renditions := checkRenditions(t, s, id, shape{seconds: seconds, fps: fps, width: 1280, height: 720, channels: 2})
			if len(renditions) != 4 { // 720p, 480p, 360p and the audio
				t.Errorf("renditions %v", renditions)
			}
			psnr, err := media.PSNR(ctx, src, renditions["720p"], 1280, 720)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s: 720p PSNR %.2f dB", tc.file, psnr)
			if psnr < 30 {
				t.Errorf("720p PSNR %.2f dB against the upload", psnr)
			}
		})
	}
}

// A podcast or a song is a valid upload: an audio-only asset whose
// master's one variant is the AAC audio playlist, with the file's cover
// art as its poster.
func TestAudioOnlyUpload(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the stack")
	}
	s := teststack.Up(t)
	ctx := context.Background()
	dir := t.TempDir()
	const seconds = 9.0
	cover, song := filepath.Join(dir, "cover.jpg"), filepath.Join(dir, "song.mp3")
	for _, args := range [][]string{
		{"-f", "lavfi", "-i", "testsrc2=size=600x600", "-frames:v", "1", cover},
		{"-f", "lavfi", "-i", fmt.Sprintf("sine=frequency=440:sample_rate=44100:duration=%g", seconds), "-i", cover,
			"-map", "0", "-map", "1", "-ac", "2", "-c:a", "libmp3lame", "-b:a", "192k", "-c:v", "mjpeg", "-disposition:v", "attached_pic", song},
	} {
		if out, err := exec.Command("ffmpeg", append([]string{"-hide_banner", "-v", "error", "-y"}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("%v %s", err, out)
		}
	}
	s.Upload("uploads/song.mp3", song, nil)
	id := e2ekit.AssetOf(t, s, "uploads/song.mp3")
	s.WaitStatus(id, 3*time.Minute, asset.StateComplete)
	if m := e2ekit.ReadManifest(t, s, id); !m.AudioOnly() || len(m.Segments) < 2 {
		t.Fatalf("manifest: audio only %v, %d segments", m.AudioOnly(), len(m.Segments))
	}
	variants := masterPlaylist(t, s, id).Variants
	if len(variants) != 1 || variants[0].URI != "audio.m3u8" || variants[0].Codecs != "mp4a.40.2" ||
		variants[0].Resolution != "" || variants[0].Bandwidth < 100_000 {
		t.Fatalf("master variants %+v", variants)
	}
	a := layout.Asset(id)
	audio := fetchRendition(t, s, a.Prefix(), "audio.m3u8", filepath.Join(dir, "audio.ts"), seconds, 30)
	if codec, ch := mediatest.Audio(t, audio); codec != "aac" || ch != 2 {
		t.Errorf("audio is %s in %d channels", codec, ch)
	}
	checkAudioTimeline(t, "audio", audio, seconds)
	poster := filepath.Join(dir, "poster.jpg")
	if _, err := s.Store.GetFile(ctx, s.Bucket, a.Thumb("poster.jpg"), poster); err != nil {
		t.Fatalf("no poster from the cover art: %v", err)
	}
	if w, h := mediatest.Size(t, poster); w != 600 || h != 600 {
		t.Errorf("poster is %dx%d, the cover 600x600", w, h)
	}
	st := s.WaitStatus(id, time.Minute, asset.StateComplete)
	if st.Stages["split"].State != asset.StateDone {
		t.Errorf("status %+v", st)
	}
}

// Broadcast and HDR masters: a 1080i file is deinterlaced before scaling
// (no rendition shows combing), and HDR10 (PQ) and HLG sources become SDR
// BT.709 renditions, tone-mapped, as H.264 players expect.
func TestBroadcastAndHDRSources(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the stack")
	}
	s := teststack.Up(t)
	const seconds, fps = 4.0, 25
	hdr := func(transfer string) []string {
		return []string{"-vf", "zscale=tin=bt709:min=bt709:pin=bt709:t=" + transfer + ":m=bt2020nc:p=bt2020:npl=100,format=yuv420p10le",
			"-c:v", "libx265", "-preset", "ultrafast", "-g", "50",
			"-x265-params", "log-level=error:colorprim=bt2020:transfer=" + transfer + ":colormatrix=bt2020nc",
			"-color_primaries", "bt2020", "-color_trc", transfer, "-colorspace", "bt2020nc"}
	}
	sdr := func(t *testing.T, name, file string) {
		if transfer, primaries := mediatest.Color(t, file); transfer != "bt709" || primaries != "bt709" {
			t.Errorf("%s: transfer %q, primaries %q: not tone-mapped to SDR BT.709", name, transfer, primaries)
		}
	}
	tests := []struct {
		file   string
		source string // lavfi video
		encode []string
		check  func(t *testing.T, name, file string)
	}{
		{"news-1080i.mp4", "testsrc2=size=1920x1080:rate=50",
			[]string{"-vf", "tinterlace=mode=interleave_top,setfield=tff", "-c:v", "libx264", "-preset", "ultrafast", "-crf", "12",
				"-flags", "+ildct+ilme", "-x264opts", "tff=1", "-g", "50", "-pix_fmt", "yuv420p"},
			func(t *testing.T, name, file string) {
				if woven, progressive := mediatest.Fields(t, file); woven*10 > progressive {
					t.Errorf("%s: idet sees %d woven and %d progressive frames: not deinterlaced", name, woven, progressive)
				}
			}},
		{"hdr10.mp4", "testsrc2=size=1920x1080:rate=25", hdr("smpte2084"), sdr},
		{"hlg.mp4", "testsrc2=size=1920x1080:rate=25", hdr("arib-std-b67"), sdr},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			src := filepath.Join(t.TempDir(), tc.file)
			mediatest.FFmpeg(t, append(append([]string{"-f", "lavfi", "-i", fmt.Sprintf("%s:duration=%g", tc.source, seconds)}, tc.encode...), src)...)
			key := "uploads/" + tc.file
			s.Upload(key, src, nil)
			id := e2ekit.AssetOf(t, s, key)
			s.WaitStatus(id, 4*time.Minute, asset.StateComplete)
			renditions := checkRenditions(t, s, id, shape{seconds: seconds, fps: fps, width: 1920, height: 1080})
			if len(renditions) != 4 {
				t.Errorf("renditions %v", renditions)
			}
			for name, file := range renditions {
				if name != "audio" {
					tc.check(t, name, file)
				}
			}
		})
	}
	// The sources themselves are what the checks above tell apart.
	src := filepath.Join(t.TempDir(), "i.mp4")
	mediatest.FFmpeg(t, append(append([]string{"-f", "lavfi", "-i", "testsrc2=size=1920x1080:rate=50:duration=1"}, tests[0].encode...), src)...)
	if woven, progressive := mediatest.Fields(t, src); woven < progressive {
		t.Errorf("the 1080i source: idet sees %d woven, %d progressive frames", woven, progressive)
	}
}

// A letterboxed film uploaded with Segflow-Crop: auto loses its black
// bars: one crop for every segment, the ladder from the cropped size (no
// 720p rung for a 1280x536 picture), and no rendition keeps a bar. The
// same file without the option keeps its frame.
func TestAutoCrop(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the stack")
	}
	s := teststack.Up(t)
	ctx := context.Background()
	const seconds, fps = 6.0, 25
	src := filepath.Join(t.TempDir(), "scope.mp4")
	mediatest.FFmpeg(t, "-f", "lavfi", "-i", fmt.Sprintf("testsrc2=size=1280x536:rate=%d:duration=%g", fps, seconds),
		"-vf", "pad=1280:720:0:92", "-c:v", "libx264", "-preset", "ultrafast", "-crf", "12", "-g", "50", src)
	s.Upload("uploads/scope.mp4", src, map[string]string{"Segflow-Crop": "auto"})
	s.Upload("uploads/scope-uncropped.mp4", src, nil)
	id, whole := e2ekit.AssetOf(t, s, "uploads/scope.mp4"), e2ekit.AssetOf(t, s, "uploads/scope-uncropped.mp4")
	s.WaitStatus(id, 4*time.Minute, asset.StateComplete)
	if m := e2ekit.ReadManifest(t, s, id); m.Crop != "1280:536:0:92" || m.Width != 1280 || m.Height != 536 {
		t.Fatalf("manifest: crop %q, %dx%d; want 1280:536:0:92, 1280x536", m.Crop, m.Width, m.Height)
	}
	renditions := checkRenditions(t, s, id, shape{seconds: seconds, fps: fps, width: 1280, height: 536})
	if len(renditions) != 2 { // 480p and 360p: 536 is under 720
		t.Errorf("renditions %v", renditions)
	}
	for name, file := range renditions {
		w, h := mediatest.Size(t, file)
		c, err := media.DetectCrop(ctx, file)
		if err != nil {
			t.Fatal(err)
		}
		if c.H < h-4 {
			t.Errorf("%s (%dx%d) still has bars: cropdetect keeps %v", name, w, h, c)
		}
	}
	s.WaitStatus(whole, 4*time.Minute, asset.StateComplete)
	if m := e2ekit.ReadManifest(t, s, whole); m.Crop != "" || m.Height != 720 {
		t.Errorf("without the option: crop %q, height %d", m.Crop, m.Height)
	}
}

// A phone's variable frame rate (frames dropped in low light, on a 1/600
// timescale) becomes renditions at a constant rate: every frame interval
// the same, keyframes aligned across rungs, the duration held.
func TestVariableFrameRate(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the stack")
	}
	s := teststack.Up(t)
	ctx := context.Background()
	const seconds, fps = 8.0, 30
	src := filepath.Join(t.TempDir(), "phone-vfr.mp4")
	mediatest.FFmpeg(t, "-f", "lavfi", "-i", fmt.Sprintf("testsrc2=size=1280x720:rate=%d:duration=%g", fps, seconds),
		"-f", "lavfi", "-i", fmt.Sprintf("sine=duration=%g", seconds),
		"-vf", `select='not(eq(mod(n\,11)\,5))*not(eq(mod(n\,17)\,9))',settb=1/600`, "-fps_mode", "vfr", "-enc_time_base", "1/600",
		"-c:v", "libx264", "-preset", "ultrafast", "-crf", "12", "-g", "30", "-video_track_timescale", "600", "-c:a", "aac", src)
	probe, err := media.Probe(ctx, src)
	if err != nil || probe.Video.CFR != fps {
		t.Fatalf("probe of the VFR clip: %+v %v; want CFR %d", probe.Video, err, fps)
	}
	s.Upload("uploads/phone-vfr.mp4", src, nil)
	id := e2ekit.AssetOf(t, s, "uploads/phone-vfr.mp4")
	s.WaitStatus(id, 4*time.Minute, asset.StateComplete)
	checkRenditions(t, s, id, shape{seconds: seconds, fps: fps, width: 1280, height: 720, channels: 2})
}

// A film with a 5.1 English track and a stereo French commentary gets one
// audio rendition per track, named and tagged from the stream's tags, and
// the 5.1 kept as its own rendition beside its stereo one.
func TestSeveralAudioTracks(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the stack")
	}
	s := teststack.Up(t)
	dir := t.TempDir()
	const seconds, fps = 6.0, 25
	src := filepath.Join(dir, "film.mkv")
	mediatest.FFmpeg(t, "-f", "lavfi", "-i", fmt.Sprintf("testsrc2=size=640x360:rate=%d:duration=%g", fps, seconds),
		"-f", "lavfi", "-i", fmt.Sprintf("sine=frequency=300:duration=%g", seconds),
		"-f", "lavfi", "-i", fmt.Sprintf("sine=frequency=900:duration=%g", seconds),
		"-map", "0", "-map", "1", "-map", "2", "-c:v", "libx264", "-preset", "ultrafast", "-g", "50",
		"-c:a", "flac", "-ac:a:0", "6", "-ac:a:1", "2",
		"-metadata:s:a:0", "language=eng", "-metadata:s:a:1", "language=fre", "-metadata:s:a:1", "title=Commentaire", src)
	s.Upload("uploads/film.mkv", src, nil)
	id := e2ekit.AssetOf(t, s, "uploads/film.mkv")
	s.WaitStatus(id, 4*time.Minute, asset.StateComplete)
	checkRenditions(t, s, id, shape{seconds: seconds, fps: fps, width: 640, height: 360, channels: 2})

	master := string(e2ekit.Object(t, s, layout.Asset(id).Master()))
	want := []struct{ name, attrs string }{
		{"audio", `NAME="English",DEFAULT=YES,AUTOSELECT=YES,LANGUAGE="en",CHANNELS="2",URI="audio.m3u8"`},
		{"audio-51", `NAME="English (5.1)",DEFAULT=NO,AUTOSELECT=YES,LANGUAGE="en",CHANNELS="6",URI="audio-51.m3u8"`},
		{"audio2", `NAME="Commentaire",DEFAULT=NO,AUTOSELECT=YES,LANGUAGE="fr",CHANNELS="2",URI="audio2.m3u8"`},
	}
	if n := strings.Count(master, "#EXT-X-MEDIA:TYPE=AUDIO"); n != len(want) {
		t.Errorf("%d audio renditions in the master, want %d:\n%s", n, len(want), master)
	}
	for _, w := range want {
		if !strings.Contains(master, w.attrs) {
			t.Errorf("master lacks %s:\n%s", w.attrs, master)
			continue
		}
		file := fetchRendition(t, s, layout.Asset(id).Prefix(), w.name+".m3u8", filepath.Join(dir, w.name+".ts"), seconds, fps)
		_, ch := mediatest.Audio(t, file)
		if wantCh := map[bool]int{true: 6, false: 2}[strings.HasSuffix(w.name, "-51")]; ch != wantCh {
			t.Errorf("%s has %d channels, want %d", w.name, ch, wantCh)
		}
		checkAudioTimeline(t, w.name, file, seconds)
	}
}

// Sidecar subtitles, uploads/<video name>.<language>.srt|vtt, uploaded
// before or after their video, become WebVTT SUBTITLES renditions with
// that language, their cues timed to the video's first frame; a sidecar
// that is not subtitles is refused and the asset is untouched.
func TestSidecarSubtitles(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the stack")
	}
	s := teststack.Up(t)
	ctx := context.Background()
	dir := t.TempDir()
	const seconds, fps = 6.0, 25
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	video := filepath.Join(dir, "talk.mp4")
	mediatest.Make(t, video, mediatest.Clip{Seconds: seconds, Width: 640, Height: 360, FPS: fps, Audio: true})
	// French before the video, a hostile "German" one too; English after.
	s.Upload("uploads/talk.fr.srt", write("talk.fr.srt", "1\n00:00:01,000 --> 00:00:02,500\nBonjour à tous\n\n2\n00:00:03,000 --> 00:00:04,000\nMerci\n"), nil)
	s.Upload("uploads/talk.de.srt", write("talk.de.srt", "#EXTM3U\n#EXTINF:2,\n/etc/passwd\n"), nil)
	s.Upload("uploads/talk.mp4", video, nil)
	id := e2ekit.AssetOf(t, s, "uploads/talk.mp4")
	s.WaitStatus(id, 3*time.Minute, asset.StateComplete)
	s.Upload("uploads/talk.en.vtt", write("talk.en.vtt", "WEBVTT\n\n00:00:02.000 --> 00:00:03.000\nHello everyone\n"), nil)
	a := layout.Asset(id)
	e2ekit.WaitObject(t, s, a.Rendition("subs-en", 0, ".vtt"))

	var master string
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(200 * time.Millisecond) {
		master = string(e2ekit.Object(t, s, a.Master()))
		if strings.Contains(master, `URI="subs-en.m3u8"`) || time.Now().After(deadline) {
			break
		}
	}
	for _, want := range []string{
		`TYPE=SUBTITLES,GROUP-ID="subs",NAME="Français",DEFAULT=NO,AUTOSELECT=YES,LANGUAGE="fr",URI="subs-fr.m3u8"`,
		`TYPE=SUBTITLES,GROUP-ID="subs",NAME="English",DEFAULT=NO,AUTOSELECT=YES,LANGUAGE="en",URI="subs-en.m3u8"`,
		`SUBTITLES="subs"`,
	} {
		if !strings.Contains(master, want) {
			t.Errorf("master lacks %s:\n%s", want, master)
		}
	}
	if strings.Contains(master, "subs-de") {
		t.Errorf("the playlist posing as subtitles is listed:\n%s", master)
	}
	// The cues sit at their times on the video's timeline: cue zero is the
	// first frame's MPEG-TS timestamp.
	top := masterPlaylist(t, s, id).Variants[0].URI
	first := mediatest.Packets(t, fetchRendition(t, s, a.Prefix(), top, filepath.Join(dir, "top.ts"), seconds, fps), "v:0")[0].PTS
	for lang, cue := range map[string]string{"fr": "00:01.000 --> 00:02.500\nBonjour à tous", "en": "00:02.000 --> 00:03.000\nHello everyone"} {
		pl := string(e2ekit.Object(t, s, a.Playlist("subs-"+lang)))
		if !strings.Contains(pl, "#EXT-X-ENDLIST") || !strings.Contains(pl, "subs-"+lang+"/00000.vtt") {
			t.Errorf("subs-%s.m3u8:\n%s", lang, pl)
		}
		vtt := string(e2ekit.Object(t, s, a.Rendition("subs-"+lang, 0, ".vtt")))
		var mpegts int64
		if _, err := fmt.Sscanf(vtt, "WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:%d,LOCAL:00:00:00.000", &mpegts); err != nil || math.Abs(float64(mpegts)/90000-first) > 1e-4 {
			t.Errorf("subs-%s: X-TIMESTAMP-MAP %d (%v), the first frame at %.5fs:\n%s", lang, mpegts, err, first, vtt)
		}
		if !strings.Contains(vtt, cue) {
			t.Errorf("subs-%s lacks the cue %q:\n%s", lang, cue, vtt)
		}
	}
	if _, err := s.Store.Stat(ctx, s.Bucket, a.Rendition("subs-de", 0, ".vtt")); err == nil {
		t.Error("the playlist posing as subtitles was attached")
	}
}

// A file made with x264's default keyint (250 frames: 8.3 s at 30 fps)
// starts playing as soon as one that has a keyframe every 2 s: split
// re-encodes its first GOP into 2 s pieces, and the renditions are as
// whole as any other's (every frame at a constant rate, keyframes aligned
// across rungs, the audio intact).
func TestLongFirstGOP(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the stack")
	}
	s := teststack.Up(t)
	const seconds, fps = 10.0, 30
	src := filepath.Join(t.TempDir(), "keyint250.mp4")
	mediatest.Make(t, src, mediatest.Clip{Seconds: seconds, Width: 1280, Height: 720, FPS: fps, GOP: 250, Audio: true})
	s.Upload("uploads/keyint250.mp4", src, nil)
	id := e2ekit.AssetOf(t, s, "uploads/keyint250.mp4")
	s.WaitStatus(id, 4*time.Minute, asset.StateComplete)
	var got []string
	for _, sg := range e2ekit.ReadManifest(t, s, id).Segments {
		got = append(got, fmt.Sprintf("%.2f", sg.Duration))
	}
	if want := "2.00 2.00 2.00 2.33 1.67"; strings.Join(got, " ") != want {
		t.Errorf("segment durations %v, want %s", got, want)
	}
	checkRenditions(t, s, id, shape{seconds: seconds, fps: fps, width: 1280, height: 720, channels: 2})
}

// An upload asking for a content-aware ladder gets one fitted to its
// picture: a slide deck's rungs are capped CRFs (the fixed bitrates their
// caps), encoded, packaged and played as any other; its renditions take
// well under the fixed ladder's bytes for the same deck uploaded without
// the option.
func TestContentAwareLadderUpload(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the stack")
	}
	s := teststack.Up(t)
	const seconds, fps = 8.0, 30
	slides := mediatest.ContentKinds(1280, 720)[0]
	clip := slides.Clip
	clip.Seconds, clip.Width, clip.Height, clip.Audio = seconds, 1280, 720, true
	src := filepath.Join(t.TempDir(), "deck.mp4")
	mediatest.Make(t, src, clip)
	s.Upload("uploads/deck-fitted.mp4", src, map[string]string{"Segflow-Ladder": "content-aware"})
	s.Upload("uploads/deck.mp4", src, nil)
	fitted, fixed := e2ekit.AssetOf(t, s, "uploads/deck-fitted.mp4"), e2ekit.AssetOf(t, s, "uploads/deck.mp4")
	s.WaitStatus(fitted, 4*time.Minute, asset.StateComplete)
	s.WaitStatus(fixed, 4*time.Minute, asset.StateComplete)
	mf, mx := e2ekit.ReadManifest(t, s, fitted), e2ekit.ReadManifest(t, s, fixed)
	if mf.Options.Ladder != media.LadderContentAware || mx.Options.Ladder != "" {
		t.Errorf("ladder options %q and %q; want %q and none", mf.Options.Ladder, mx.Options.Ladder, media.LadderContentAware)
	}
	if len(mf.Ladder) != len(mx.Ladder) {
		t.Fatalf("fitted ladder %+v, fixed %+v", mf.Ladder, mx.Ladder)
	}
	for i, r := range mf.Ladder {
		if r.CRF == 0 || r.Bitrate != mx.Ladder[i].Bitrate || mx.Ladder[i].CRF != 0 {
			t.Errorf("%s: CRF %d capped at %d; want a CRF capped at the fixed %d (fixed rung's CRF %d)", r.Name, r.CRF, r.Bitrate, mx.Ladder[i].Bitrate, mx.Ladder[i].CRF)
		}
	}
	want := shape{seconds: seconds, fps: fps, width: 1280, height: 720, channels: 2}
	bytes := func(files map[string]string) (n int64) {
		for name, f := range files {
			if strings.HasPrefix(name, "audio") {
				continue
			}
			st, err := os.Stat(f)
			if err != nil {
				t.Fatal(err)
			}
			n += st.Size()
		}
		return n
	}
	bf, bx := bytes(checkRenditions(t, s, fitted, want)), bytes(checkRenditions(t, s, fixed, want))
	t.Logf("video renditions: %d bytes fitted, %d fixed (%.3f)", bf, bx, float64(bf)/float64(bx))
	if float64(bf) > 0.8*float64(bx) {
		t.Errorf("fitted renditions %d bytes, fixed %d: want at most 0.8 of them", bf, bx)
	}
}
