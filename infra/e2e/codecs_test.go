package e2e

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/grafov/m3u8"

	"github.com/segflow/segflow/infra/internal/e2ekit"
	"github.com/segflow/segflow/infra/internal/teststack"
	"github.com/segflow/segflow/shared/asset"
	"github.com/segflow/segflow/shared/layout"
	"github.com/segflow/segflow/shared/media/mediatest"
)

// TestCodecChoice uploads a clip asking for every codec (Segflow-Codecs
// metadata, as `mc cp --attr` sets it) and reads each rendition as a
// player does: the master names the codec, fMP4 playlists map their init
// segment, and init plus segments decode into every frame of the clip.
func TestCodecChoice(t *testing.T) {
	if testing.Short() {
		t.Skip("encodes four codecs")
	}
	s := teststack.Up(t)
	dir := t.TempDir()
	const seconds, fps = 8.0, 30
	src := filepath.Join(dir, "clip.mp4")
	mediatest.Make(t, src, mediatest.Clip{Seconds: seconds, Width: 640, Height: 360, FPS: fps, Audio: true})
	s.Upload("uploads/codecs.mp4", src, map[string]string{"Segflow-Codecs": "h264,h265,vp9,av1"})
	id := e2ekit.AssetOf(t, s, "uploads/codecs.mp4")
	s.WaitStatus(id, 3*time.Minute, asset.StateComplete)

	a := layout.Asset(id)
	get := func(key string) []byte { return e2ekit.Object(t, s, key) }
	// RFC 6381 prefix in CODECS -> ffprobe's codec name.
	codecs := map[string]string{"avc1.": "h264", "hvc1.": "hevc", "vp09.": "vp9", "av01.": "av1"}
	seen := map[string]bool{}
	playlists := map[string][]byte{"master.m3u8": get(a.Master())}
	for _, v := range masterPlaylist(t, s, id).Variants {
		want := ""
		for prefix, name := range codecs {
			if strings.Contains(v.Codecs, prefix) {
				want = name
			}
		}
		if want == "" || seen[want] {
			t.Errorf("variant %s: CODECS %q", v.URI, v.Codecs)
			continue
		}
		seen[want] = true
		playlists[v.URI] = get(a.Prefix() + v.URI)
		for _, alt := range v.Alternatives {
			if alt.URI != "" {
				playlists[alt.URI] = get(a.Prefix() + alt.URI)
			}
		}
		mpl, _, err := m3u8.DecodeFrom(bytes.NewReader(playlists[v.URI]), true)
		if err != nil {
			t.Fatal(err)
		}
		mp := mpl.(*m3u8.MediaPlaylist)
		if !mp.Closed {
			t.Errorf("%s has no ENDLIST", v.URI)
		}
		// fMP4: the init segment then every segment is one file that
		// decodes as a whole. MPEG-TS segments decode one by one (their
		// continuity counters restart per file).
		var whole []byte
		if mp.Map != nil {
			whole = append(whole, get(a.Prefix()+mp.Map.URI)...)
		} else if want != "h264" {
			t.Errorf("%s (%s, fMP4) has no EXT-X-MAP", v.URI, want)
		}
		for i, seg := range mp.GetAllSegments() {
			b := get(a.Prefix() + seg.URI)
			if mp.Map == nil {
				one := filepath.Join(dir, "one.ts")
				if err := os.WriteFile(one, b, 0o644); err != nil {
					t.Fatal(err)
				}
				if err := mediatest.Decodes(one); err != nil {
					t.Errorf("%s segment %d: %v", v.URI, i, err)
				}
			}
			whole = append(whole, b...)
		}
		file := filepath.Join(dir, strings.TrimSuffix(v.URI, ".m3u8")+".media")
		if err := os.WriteFile(file, whole, 0o644); err != nil {
			t.Fatal(err)
		}
		if mp.Map != nil {
			if err := mediatest.Decodes(file); err != nil {
				t.Errorf("%s: %v", v.URI, err)
			}
		}
		if got, _ := mediatest.Codec(t, file); got != want {
			t.Errorf("%s: stream is %q, want %s", v.URI, got, want)
		}
		if n := len(mediatest.Packets(t, file, "v:0")); n != int(seconds*fps) {
			t.Errorf("%s: %d frames, want %d", v.URI, n, int(seconds*fps))
		}
	}
	if len(seen) != len(codecs) {
		t.Errorf("master has renditions of %v, want all of %v", seen, codecs)
	}
	parsersAccept(t, playlists)
	// ffmpeg plays the master from the bucket, every variant and the
	// audio, without one warning: CODECS, maps, seams and timestamps
	// are all as its HLS reader expects. The master is taken once it
	// lists the captions (aitag, at a lower priority, may finish after
	// the asset completes), so every run reads the same master.
	e2ekit.WaitObject(t, s, a.Tags(-1))
	waitSettled(t, s, "packager", 0)
	if !strings.Contains(string(get(a.Master())), `URI="subs.m3u8"`) {
		t.Errorf("the master lists no captions once aitag is done:\n%s", get(a.Master()))
	}
	master := "http://" + s.Env.S3Endpoint + "/" + s.Bucket + "/" + a.Master()
	out, err := exec.Command("ffmpeg", "-hide_banner", "-nostdin", "-v", "warning", "-i", master, "-map", "0", "-f", "null", "-").CombinedOutput()
	var warnings []string
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		// ffmpeg 5.1's HLS reader reads no WebVTT rendition, and says so.
		if line != "" && !strings.Contains(line, "Can't support the subtitle(uri: subs.m3u8)") {
			warnings = append(warnings, line)
		}
	}
	if err != nil || len(warnings) > 0 {
		t.Errorf("ffmpeg playing %s: %v\n%s", master, err, strings.Join(warnings, "\n"))
	}
}
