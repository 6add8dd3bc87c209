package hls

import (
	"bytes"
	"strings"
	"testing"

	"github.com/grafov/m3u8"
)

// TestJoin: a channel's window across a reconnect numbers segments on the
// channel's sequence, marks where the new publish starts, counts the
// discontinuities that slid out, and points into each publish's folder.
func TestJoin(t *testing.T) {
	part := func(r Rendition, base string, seq, disc int) Part {
		b, _, _, err := Media(r, MediaOptions{Ended: true, Total: len(r.Segments)})
		if err != nil {
			t.Fatal(err)
		}
		return Part{Playlist: b, Base: base, Sequence: seq, Discontinuity: disc}
	}
	prev := part(rend("720p", 0, 1, 2, 3, 4), "../../live-a-1/", 10, 2)
	cur := part(rend("720p", 0, 1, 2), "../../live-a-2/", 15, 3)
	fmp4 := rend("720p", 0, 1)
	fmp4.Init = "720p/init.mp4"
	tests := []struct {
		name      string
		parts     []Part
		window    int
		seq, disc uint64
		uris      []string
		breaks    []bool // DISCONTINUITY before each listed segment
	}{
		{"across the reconnect", []Part{prev, cur}, 5, 13, 2,
			[]string{"../../live-a-1/720p/3.ts", "../../live-a-1/720p/4.ts", "../../live-a-2/720p/0.ts", "../../live-a-2/720p/1.ts", "../../live-a-2/720p/2.ts"},
			[]bool{false, false, true, false, false}},
		{"the old publish slid out", []Part{prev, cur}, 2, 16, 3,
			[]string{"../../live-a-2/720p/1.ts", "../../live-a-2/720p/2.ts"}, []bool{false, false}},
		{"first publish", []Part{cur}, 6, 15, 3,
			[]string{"../../live-a-2/720p/0.ts", "../../live-a-2/720p/1.ts", "../../live-a-2/720p/2.ts"}, []bool{false, false, false}},
		{"fMP4 after TS", []Part{prev, part(fmp4, "../../live-a-2/", 15, 3)}, 3, 14, 2,
			[]string{"../../live-a-1/720p/4.ts", "../../live-a-2/720p/0.ts", "../../live-a-2/720p/1.ts"}, []bool{false, true, false}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := Join(tc.parts, tc.window)
			if err != nil {
				t.Fatal(err)
			}
			pl, _, err := m3u8.DecodeFrom(bytes.NewReader(b), true)
			if err != nil {
				t.Fatalf("%v\n%s", err, b)
			}
			mp := pl.(*m3u8.MediaPlaylist)
			if mp.SeqNo != tc.seq || mp.DiscontinuitySeq != tc.disc || mp.Closed {
				t.Errorf("sequence %d, discontinuity sequence %d, ended %v; want %d, %d, open\n%s", mp.SeqNo, mp.DiscontinuitySeq, mp.Closed, tc.seq, tc.disc, b)
			}
			segs := mp.GetAllSegments()
			if len(segs) != len(tc.uris) {
				t.Fatalf("%d segments, want %d\n%s", len(segs), len(tc.uris), b)
			}
			for i, s := range segs {
				if s.URI != tc.uris[i] || s.Discontinuity != tc.breaks[i] {
					t.Errorf("segment %d: %s discontinuity %v; want %s %v", i, s.URI, s.Discontinuity, tc.uris[i], tc.breaks[i])
				}
			}
			if last, _ := Last(b); last != int(tc.seq)+len(tc.uris)-1 {
				t.Errorf("Last = %d", last)
			}
			if strings.Contains(tc.name, "fMP4") && !strings.Contains(string(b), "#EXT-X-DISCONTINUITY\n#EXT-X-MAP:URI=\"../../live-a-2/720p/init.mp4\"") {
				t.Errorf("no init segment at the fMP4 publish:\n%s", b)
			}
		})
	}
	if b := End([]byte("#EXTM3U\n#EXTINF:2.000,\n0.ts")); !bytes.HasSuffix(b, []byte("0.ts\n#EXT-X-ENDLIST\n")) || string(End(b)) != string(b) {
		t.Errorf("End:\n%s", b)
	}
}
