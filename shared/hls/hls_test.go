package hls

import (
	"bytes"
	"encoding/hex"
	"os/exec"
	"strings"
	"testing"

	"github.com/grafov/m3u8"

	"github.com/segflow/segflow/shared/media"
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

// An I-frame playlist lists every keyframe of every segment as a byte
// range lasting until the next keyframe; MPEG-TS segments get an
// EXT-X-MAP of their PAT/PMT, fMP4 renditions the init segment; the
// master points at it with EXT-X-I-FRAME-STREAM-INF, whose bandwidth is
// the densest keyframe's.
func TestIFrames(t *testing.T) {
	ts := rend("720p", 0, 1)
	for i := range ts.Segments {
		ts.Segments[i].Keyframes = []media.Keyframe{{Offset: 564, Size: 40000, Time: 0}, {Offset: 700000, Size: 30000, Time: 2.002}}
	}
	cmaf := rend("360p", 0, 1)
	cmaf.Init = "360p/init.mp4"
	for i := range cmaf.Segments {
		cmaf.Segments[i].Keyframes = []media.Keyframe{{Offset: 0, Size: 9000, Time: 0}}
	}
	b, err := IFrames(ts, MediaOptions{Total: 2})
	if err != nil {
		t.Fatal(err)
	}
	want := `#EXTM3U
#EXT-X-VERSION:5
#EXT-X-PLAYLIST-TYPE:VOD
#EXT-X-MEDIA-SEQUENCE:0
#EXT-X-TARGETDURATION:3
#EXT-X-I-FRAMES-ONLY
#EXT-X-MAP:URI="720p/0.ts",BYTERANGE="564@0"
#EXT-X-BYTERANGE:40000@564
#EXTINF:2.002,
720p/0.ts
#EXT-X-BYTERANGE:30000@700000
#EXTINF:2.002,
720p/0.ts
#EXT-X-MAP:URI="720p/1.ts",BYTERANGE="564@0"
#EXT-X-BYTERANGE:40000@564
#EXTINF:2.002,
720p/1.ts
#EXT-X-BYTERANGE:30000@700000
#EXTINF:2.002,
720p/1.ts
#EXT-X-ENDLIST
`
	if string(b) != want {
		t.Errorf("MPEG-TS I-frames:\n%s\nwant\n%s", b, want)
	}
	b, err = IFrames(cmaf, MediaOptions{Total: 3})
	if err != nil {
		t.Fatal(err)
	}
	if s := string(b); !strings.Contains(s, `#EXT-X-MAP:URI="360p/init.mp4"`) || !strings.Contains(s, "#EXT-X-BYTERANGE:9000@0\n#EXTINF:4.004,") ||
		strings.Contains(s, "ENDLIST") || !strings.Contains(s, "EVENT") {
		t.Errorf("fMP4 I-frames, 2 of 3 segments:\n%s", s)
	}
	if b, err := IFrames(rend("480p", 0), MediaOptions{Total: 1}); b != nil || err != nil {
		t.Errorf("no keyframes known: %q, %v", b, err)
	}
	master := string(Master([]Rendition{ts, cmaf}, nil, nil))
	if !strings.Contains(master, `#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=159841,AVERAGE-BANDWIDTH=139860,CODECS="avc1.64001f",RESOLUTION=1280x720,URI="720p-iframes.m3u8"`) ||
		!strings.Contains(master, `URI="360p-iframes.m3u8"`) || strings.Contains(master, "PROGRAM-ID") {
		t.Errorf("master:\n%s", master)
	}
}

// EncryptSegment is AES-128-CBC with PKCS7 padding and the sequence number
// as IV: the bytes openssl makes from the same key and IV, and
// DecryptSegment takes them back (and refuses a wrong key).
func TestEncryptSegment(t *testing.T) {
	key := []byte("0123456789abcdef")
	plain := bytes.Repeat([]byte{0x47, 1, 2, 3}, 47*3) // three TS packets
	enc, err := EncryptSegment(plain, key, 7)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("openssl", "enc", "-aes-128-cbc", "-K", hex.EncodeToString(key), "-iv", "00000000000000000000000000000007")
	cmd.Stdin = bytes.NewReader(plain)
	want, err := cmd.Output()
	if err != nil {
		t.Fatalf("openssl: %v", err)
	}
	if !bytes.Equal(enc, want) {
		t.Fatalf("encrypted %d bytes differ from openssl's %d", len(enc), len(want))
	}
	back, err := DecryptSegment(enc, key, 7)
	if err != nil || !bytes.Equal(back, plain) {
		t.Fatalf("decrypt: %v", err)
	}
	if _, err := DecryptSegment(enc, []byte("fedcba9876543210"), 7); err == nil {
		t.Error("a wrong key decrypted")
	}
	tests := []struct {
		encryption string
		key        string
	}{
		{"aes-128", `#EXT-X-KEY:METHOD=AES-128,URI="key"` + "\n"},
		// The key ID 0x30..0x66 ("0123456789abcdef") in base64.
		{"cbcs", `#EXT-X-KEY:METHOD=SAMPLE-AES,URI="data:text/plain;base64,MDEyMzQ1Njc4OWFiY2RlZg==",KEYFORMAT="org.w3.clearkey",KEYFORMATVERSIONS="1"` + "\n"},
	}
	for _, tc := range tests {
		b, _, _, err := Media(rend("720p", 0, 1), MediaOptions{Total: 2, Encryption: tc.encryption, KeyID: []byte("0123456789abcdef")})
		if err != nil || strings.Count(string(b), "#EXT-X-KEY") != 1 || !strings.Contains(string(b), tc.key) || strings.Contains(string(b), "IV=") {
			t.Errorf("%s playlist (%v):\n%s", tc.encryption, err, b)
		}
	}
	if _, _, _, err := Media(rend("720p", 0, 1), MediaOptions{Encryption: "rot13"}); err == nil {
		t.Error("an unknown encryption made a playlist")
	}
}
