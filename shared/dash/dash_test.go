package dash

import (
	"math"
	"strings"
	"testing"
	"time"

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
	subs := hls.Rendition{Name: "subs-fr", Language: "fr", Label: "Français", Subtitles: true,
		Segments: []hls.Segment{{Index: 0, URI: "subs-fr/00000.vtt", Duration: 14.5, Bandwidth: 300}}}
	captions := rendition("subs", "", 90000, 1.4, 4, 4, 4, 2.5) // segmented: not for DASH
	b, err := Manifest([]hls.Rendition{h264, hevc}, []hls.Rendition{audio}, Options{Subtitles: []hls.Rendition{subs, captions}})
	if err != nil {
		t.Fatal(err)
	}
	m, err := mpd.MPDFromBytes(b)
	if err != nil {
		t.Fatalf("does not parse back: %v\n%s", err, b)
	}
	if m.GetType() != "static" || len(m.Periods) != 1 || len(m.Periods[0].AdaptationSets) != 4 {
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
		`<AdaptationSet id="3" lang="fr" contentType="text" mimeType="text/vtt">`, `<BaseURL>subs-fr/00000.vtt</BaseURL>`, `value="subtitle"`,
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

// A running stream's MPD is dynamic: it lists each rendition's last
// Window segments, numbered as the bucket names them, and its
// availabilityStartTime is where media time 0 falls on the wall clock, so
// every segment sits at the instant the relay received it.
func TestManifestLive(t *testing.T) {
	wall := time.Date(2026, 12, 5, 18, 0, 0, 0, time.UTC)
	live := func(name, codecs string, timescale uint32) hls.Rendition {
		r := hls.Rendition{Name: name, Codecs: codecs, Init: name + "/init.mp4", Resolution: "640x360", FrameRate: 30}
		// Segments 10-14 of a channel, 2 s each from media time 21.4 s,
		// which the relay received at 18:00:00.
		for i := range 5 {
			at := 21.4 + 2*float64(i)
			r.Segments = append(r.Segments, hls.Segment{Index: 10 + i, URI: name + "/" + layout.SegmentName(10+i, ".m4s"), Duration: 2,
				Bandwidth: 800_000, Time: int64(math.Round(at * float64(timescale))), Timescale: timescale,
				ProgramDateTime: wall.Add(time.Duration(2*i) * time.Second)})
		}
		return r
	}
	now := wall.Add(15 * time.Second)
	b, err := Manifest([]hls.Rendition{live("360p", "avc1.4d401e", 90000)}, []hls.Rendition{live("audio", "mp4a.40.2", 48000)},
		Options{Live: &Live{Window: 3, Target: 2, Now: now}})
	if err != nil {
		t.Fatal(err)
	}
	m, err := mpd.MPDFromBytes(b)
	if err != nil {
		t.Fatalf("does not parse back: %v\n%s", err, b)
	}
	s := string(b)
	for _, want := range []string{
		`type="dynamic"`, `availabilityStartTime="2026-12-05T17:59:38.6Z"`, `publishTime="2026-12-05T18:00:15Z"`,
		`minimumUpdatePeriod="PT2S"`, `<UTCTiming schemeIdUri="urn:mpeg:dash:utc:direct:2014" value="2026-12-05T18:00:15Z">`, `timeShiftBufferDepth="PT6S"`, `suggestedPresentationDelay="PT6S"`,
		`media="360p/$Number%05d$.m4s" initialization="360p/init.mp4" startNumber="12" timescale="90000" presentationTimeOffset="0"`,
		`<S t="2286000" d="180000" r="2"></S>`, `<S t="1219200" d="96000" r="2"></S>`,
	} {
		if !strings.Contains(s, want) {
			t.Errorf("no %s in\n%s", want, s)
		}
	}
	if m.MediaPresentationDuration != nil {
		t.Errorf("a running stream has a duration:\n%s", s)
	}
	// Once the publisher stops: static, over the same window.
	b, err = Manifest([]hls.Rendition{live("360p", "avc1.4d401e", 90000)}, nil, Options{Live: &Live{Window: 3, Target: 2, Now: now, Ended: true}})
	if err != nil || !strings.Contains(string(b), `type="static"`) || !strings.Contains(string(b), `mediaPresentationDuration="PT6S"`) ||
		!strings.Contains(string(b), `startNumber="12" timescale="90000" presentationTimeOffset="2286000"`) || strings.Contains(string(b), "minimumUpdatePeriod") {
		t.Errorf("ended stream's MPD (%v):\n%s", err, b)
	}
	if _, err := Manifest(nil, nil, Options{Live: &Live{Window: 3, Target: 2, Now: now}}); err == nil {
		t.Error("a live MPD without segments")
	}
}
