package dash

import (
	"math"
	"strings"
	"testing"

	"github.com/Eyevinn/dash-mpd/mpd"

	"github.com/segflow/segflow/shared/hls"
	"github.com/segflow/segflow/shared/layout"
)

func rendition(name, codecs string, timescale uint32, start float64, durations ...float64) hls.Rendition {
	r := hls.Rendition{Name: name, Codecs: codecs, Init: name + "/init.mp4", Resolution: "1280x720", FrameRate: 29.97}
	t := start
	for i, d := range durations {
		r.Segments = append(r.Segments, hls.Segment{Index: i, URI: name + "/" + layout.SegmentName(i, ".m4s"), Duration: d,
			Bandwidth: int64(1_000_000 * (i + 1)), Time: int64(math.Round(t * float64(timescale))), Timescale: timescale})
		t += d
	}
	return r
}

// The MPD parses back with dash-mpd, lists every segment at its own time
// under the name the bucket has, starts the period at the first video
// frame, and groups video by codec.
func TestManifest(t *testing.T) {
	h264 := rendition("720p", "avc1.64001f", 90000, 1.4, 4, 4, 4, 2.5)
	hevc := rendition("h265-720p", "hvc1.1.6.L93.90", 90000, 1.4, 4, 4, 4, 2.5)
	audio := rendition("audio", "mp4a.40.2", 48000, 1.421333, 4, 4, 4, 2.5)
	audio.Language, audio.Label, audio.Channels = "fr", "Français", 2
	b, err := Manifest([]hls.Rendition{h264, hevc}, []hls.Rendition{audio}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	m, err := mpd.MPDFromBytes(b)
	if err != nil {
		t.Fatalf("does not parse back: %v\n%s", err, b)
	}
	if m.GetType() != "static" || len(m.Periods) != 1 || len(m.Periods[0].AdaptationSets) != 3 {
		t.Fatalf("structure:\n%s", b)
	}
	s := string(b)
	for _, want := range []string{
		`mediaPresentationDuration="PT14.5S"`,
		`<SegmentTemplate media="720p/$Number%05d$.m4s" initialization="720p/init.mp4" startNumber="0" timescale="90000" presentationTimeOffset="126000">`,
		`<S t="126000" d="360000" r="2"></S>`, `<S t="1206000" d="225000"></S>`,
		`presentationTimeOffset="67200"`, // audio: the first video frame on 48 kHz
		`<S t="68224" d="192000" r="2"></S>`,
		`lang="fr"`, `<Label>Français</Label>`, `value="2"`, `frameRate="30000/1001"`,
		`codecs="hvc1.1.6.L93.90"`, `bandwidth="4000000"`,
	} {
		if !strings.Contains(s, want) {
			t.Errorf("no %s in\n%s", want, s)
		}
	}
	if strings.Contains(s, "ContentProtection") {
		t.Errorf("a clear asset's manifest names protection:\n%s", s)
	}
	// $Number$ makes the names the playlists list.
	for _, seg := range h264.Segments {
		tmpl := m.Periods[0].AdaptationSets[0].Representations[0].SegmentTemplate
		name := strings.Replace(tmpl.Media, "$Number%05d$", layout.SegmentName(seg.Index, ""), 1)
		if name != seg.URI {
			t.Errorf("segment %d: template gives %s, the playlist lists %s", seg.Index, name, seg.URI)
		}
	}
	tsOnly := h264
	tsOnly.Init = ""
	if _, err := Manifest([]hls.Rendition{tsOnly}, nil, Options{}); err == nil {
		t.Error("MPEG-TS rendition accepted")
	}
}

// A cbcs asset's manifest says so in every adaptation set: the common
// scheme with the default key ID, and the Clear Key system.
func TestManifestProtected(t *testing.T) {
	video := rendition("720p", "avc1.64001f", 90000, 1.4, 4, 2.5)
	audio := rendition("audio", "mp4a.40.2", 48000, 1.421333, 4, 2.5)
	b, err := Manifest([]hls.Rendition{video}, []hls.Rendition{audio}, Options{KeyID: []byte("0123456789abcdef")})
	if err != nil {
		t.Fatal(err)
	}
	m, err := mpd.MPDFromBytes(b)
	if err != nil {
		t.Fatalf("does not parse back: %v\n%s", err, b)
	}
	for _, as := range m.Periods[0].AdaptationSets {
		cps := as.ContentProtections
		if len(cps) != 2 || cps[0].SchemeIdUri != "urn:mpeg:dash:mp4protection:2011" || cps[0].Value != "cbcs" ||
			cps[0].DefaultKID != "30313233-3435-3637-3839-616263646566" ||
			cps[1].SchemeIdUri != "urn:uuid:e2719d58-a985-b3c9-781a-b030af78d30e" {
			t.Errorf("adaptation set %s: protection %+v\n%s", as.ContentType, cps, b)
		}
	}
}
