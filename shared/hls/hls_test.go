package hls

import (
	"strings"
	"testing"

	"github.com/grafov/m3u8"
)

func rend(name string, idx ...int) Rendition {
	r := Rendition{Name: name, Codecs: "avc1.64001f", Resolution: "1280x720", FrameRate: 29.97}
	for _, i := range idx {
		r.Segments = append(r.Segments, Segment{Index: i, URI: name + "/" + itoa(i) + ".ts", Duration: 4.004, Bandwidth: int64(3_000_000 + i*100_000)})
	}
	return r
}

func itoa(i int) string { return string(rune('0' + i)) }

func TestMediaListsOnlyTheRunWithoutHoles(t *testing.T) {
	tests := []struct {
		name     string
		idx      []int
		total    int
		listed   int
		complete bool
	}{
		{"growing", []int{0, 1, 2}, 5, 3, false},
		{"hole", []int{0, 1, 3, 4}, 5, 2, false},
		{"out of order complete", []int{2, 0, 4, 1, 3}, 5, 5, true},
		{"nothing yet", []int{1, 2}, 5, 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, n, complete, err := Media(rend("720p", tc.idx...), MediaOptions{Total: tc.total})
			if err != nil {
				t.Fatal(err)
			}
			if n != tc.listed || complete != tc.complete {
				t.Fatalf("listed %d complete %v, want %d %v:\n%s", n, complete, tc.listed, tc.complete, b)
			}
			if c, end := Count(b); c != n || end != complete {
				t.Fatalf("Count = %d %v", c, end)
			}
			p, _, err := m3u8.DecodeFrom(strings.NewReader(string(b)), true)
			if err != nil {
				t.Fatalf("does not parse back: %v\n%s", err, b)
			}
			mp := p.(*m3u8.MediaPlaylist)
			if n > 0 && mp.TargetDuration != 5 {
				t.Fatalf("target duration %v:\n%s", mp.TargetDuration, b)
			}
		})
	}
}

func TestMasterHasAudioGroupAndBandwidths(t *testing.T) {
	audio := rend("audio", 0, 1)
	audio.Audio, audio.Codecs = true, "mp4a.40.2"
	for i := range audio.Segments {
		audio.Segments[i].Bandwidth = 130_000
	}
	subs := rend("subs", 0)
	subs.Subtitles = true
	surround := rend("audio-51", 0, 1)
	surround.Audio, surround.Codecs, surround.Channels, surround.Label, surround.Language = true, "mp4a.40.2", 6, "English (5.1)", "en"
	for i := range surround.Segments {
		surround.Segments[i].Bandwidth = 390_000
	}
	audio.Channels, audio.Label, audio.Language = 2, "English", "en"
	b := string(Master([]Rendition{rend("720p", 0, 1), rend("1080p")}, []Rendition{audio, surround}, []Rendition{subs}))
	for _, want := range []string{
		`#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aud"`,
		`NAME="English",DEFAULT=YES,AUTOSELECT=YES,LANGUAGE="en",CHANNELS="2",URI="audio.m3u8"`,
		`NAME="English (5.1)",DEFAULT=NO,AUTOSELECT=YES,LANGUAGE="en",CHANNELS="6",URI="audio-51.m3u8"`,
		`BANDWIDTH=3490000`, // the video's peak and the largest audio's
		`AVERAGE-BANDWIDTH=3440000`,
		`CODECS="avc1.64001f,mp4a.40.2"`,
		`RESOLUTION=1280x720`,
		`FRAME-RATE=29.970`,
		`AUDIO="aud"`,
		"720p.m3u8",
		`TYPE=SUBTITLES,GROUP-ID="subs"`,
		`SUBTITLES="subs"`,
	} {
		if !strings.Contains(b, want) {
			t.Errorf("master lacks %s:\n%s", want, b)
		}
	}
	if strings.Contains(b, "1080p.m3u8") {
		t.Errorf("a rendition with no segment is listed:\n%s", b)
	}
	if strings.Contains(b, "PROGRAM-ID") || !strings.Contains(b, "#EXT-X-STREAM-INF:BANDWIDTH=") {
		t.Errorf("variants carry PROGRAM-ID (gone since HLS version 6):\n%s", b)
	}
}

// An audio-only asset's master has one variant, the audio playlist, with
// the audio's codec and bandwidth and no picture attributes.
func TestMasterAudioOnly(t *testing.T) {
	audio := rend("audio", 0, 1)
	audio.Audio, audio.Codecs = true, "mp4a.40.2"
	for i := range audio.Segments {
		audio.Segments[i].Bandwidth = 130_000
	}
	subs := rend("subs", 0)
	subs.Subtitles = true
	b := string(Master(nil, []Rendition{audio}, []Rendition{subs}))
	if !strings.Contains(b, "BANDWIDTH=130000,AVERAGE-BANDWIDTH=130000,CODECS=\"mp4a.40.2\",SUBTITLES=\"subs\"\naudio.m3u8\n") ||
		strings.Contains(b, "RESOLUTION") || strings.Contains(b, "TYPE=AUDIO") || !strings.Contains(b, `TYPE=SUBTITLES,GROUP-ID="subs"`) {
		t.Errorf("audio-only master:\n%s", b)
	}
}

func TestLiveWindow(t *testing.T) {
	r := rend("720p", 3, 4, 5, 6, 7)
	b, n, complete, err := Media(r, MediaOptions{Window: 3})
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	if n != 3 || complete || !strings.Contains(s, "#EXT-X-MEDIA-SEQUENCE:5") || strings.Contains(s, "ENDLIST") {
		t.Fatalf("live window:\n%s", s)
	}
	if last, ended := Last(b); last != 7 || ended {
		t.Fatalf("Last = %d %v", last, ended)
	}
	b, _, complete, _ = Media(r, MediaOptions{Window: 3, Ended: true})
	if !complete || !strings.Contains(string(b), "#EXT-X-ENDLIST") {
		t.Fatalf("ended live:\n%s", b)
	}
}
