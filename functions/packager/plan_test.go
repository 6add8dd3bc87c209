package packager

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/grafov/m3u8"

	"github.com/segflow/segflow/shared/asset"
	"github.com/segflow/segflow/shared/layout"
	"github.com/segflow/segflow/shared/media"
	"github.com/segflow/segflow/shared/storage"
)

// The plan is the packager's whole decision, made from a manifest and a
// listing: which segments each playlist lists, when it ends, what the
// master says. No storage needed.
func TestMakePlan(t *testing.T) {
	const id = "clip-0123456789"
	a := layout.Asset(id)
	ladder := []media.Rung{{Name: "720p", Codec: "h264", Width: 1280, Height: 720}, {Name: "360p", Codec: "h264", Width: 640, Height: 360}}
	vod := &asset.Manifest{ID: id, Audio: true, Ladder: ladder, Segments: []asset.Segment{{Index: 0, Duration: 2}, {Index: 1, Start: 2, Duration: 2}, {Index: 2, Start: 4, Duration: 1}}}
	live := *vod
	live.Live, live.SegmentTarget = true, 2
	seg := func(rendition string, n int, meta bool) storage.Info {
		info := storage.Info{Key: a.Rendition(rendition, n, ".ts")}
		if meta {
			info.Metadata = asset.SegmentMeta{Index: n, Start: float64(2 * n), Duration: 2, Bandwidth: 1_000_000, Codecs: "avc1.64001f"}.Encode(nil)
		}
		return info
	}
	listing := func(skip string) []storage.Info {
		var out []storage.Info
		for _, r := range []string{"720p", "360p", "audio"} {
			for n := range 3 {
				if r+"/"+layout.SegmentName(n, "") != skip {
					out = append(out, seg(r, n, true))
				}
			}
		}
		return append(out, storage.Info{Key: a.Manifest()}, seg("360p", 7, false)) // not a segment yet: no metadata
	}
	var firsts []storage.Info
	for _, o := range listing("") {
		if !strings.Contains(o.Key, "/0000") || strings.HasSuffix(o.Key, "/00000.ts") {
			firsts = append(firsts, o)
		}
	}
	for _, tc := range []struct {
		name      string
		m         *asset.Manifest
		objs      []storage.Info
		complete  int
		listed    int
		ended     []string // playlists with ENDLIST
		notListed string   // a segment URI no playlist may list
		playable  bool
		target    int // every playlist's EXT-X-TARGETDURATION
	}{
		{"every segment there", vod, listing(""), 3, 9, []string{"720p", "360p", "audio"}, "360p/00007.ts", true, 2},
		{"one segment missing", vod, listing("360p/00002"), 2, 8, []string{"720p", "audio"}, "360p/00002.ts", true, 2},
		// A rendition without its first segment lists none: no master yet.
		{"a first segment missing", vod, listing("360p/00000"), 2, 6, []string{"720p", "audio"}, "360p/00001.ts", false, 2},
		// While the split goes on, later segments may be as long as its
		// target: the growing playlists keep one target duration.
		{"still splitting", func() *asset.Manifest { m := *vod; m.Splitting = true; return &m }(), listing(""), 0, 9, nil, "360p/00007.ts", true, 6},
		// Only the first segment made yet, a short one.
		{"first segment only", func() *asset.Manifest { m := *vod; m.Splitting = true; m.Segments = m.Segments[:1]; return &m }(), firsts, 0, 3, nil, "360p/00001.ts", true, 6},
		// Live lists a segment only once every rendition has it.
		{"live, one rendition behind", &live, listing("360p/00002"), 0, 6, nil, "720p/00002.ts", true, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := makePlan(tc.m, tc.objs)
			if err != nil {
				t.Fatal(err)
			}
			if p.complete != tc.complete || p.listed != tc.listed || p.renditions != 3 || p.playable != tc.playable {
				t.Fatalf("complete %d listed %d of %d renditions, playable %v, want %d, %d of 3, %v", p.complete, p.listed, p.renditions, p.playable, tc.complete, tc.listed, tc.playable)
			}
			var names []string
			for _, pl := range p.media {
				names = append(names, pl.name)
				body := string(pl.body)
				ended := strings.Contains(body, "#EXT-X-ENDLIST")
				want := false
				for _, e := range tc.ended {
					want = want || e == pl.name
				}
				if target := fmt.Sprintf("#EXT-X-TARGETDURATION:%d\n", tc.target); !strings.Contains(body, target) {
					t.Errorf("%s: want %s", pl.name, body)
				}
				if ended != want {
					t.Errorf("%s ENDLIST %v, want %v:\n%s", pl.name, ended, want, body)
				}
				if strings.Contains(body, strings.TrimPrefix(tc.notListed, pl.name+"/")) && strings.HasPrefix(tc.notListed, pl.name+"/") {
					t.Errorf("%s lists %s:\n%s", pl.name, tc.notListed, body)
				}
			}
			if strings.Join(names, ",") != "720p,360p,audio" {
				t.Errorf("playlists %v", names)
			}
			master := string(p.master)
			if !strings.Contains(master, "720p.m3u8") || !strings.Contains(master, `CODECS="avc1.64001f`) || strings.Contains(master, "# segflow") {
				t.Errorf("master:\n%s", master)
			}
		})
	}
}

// A VOD master lists a captions rendition only once its playlist has
// ENDLIST: the asset is complete with its video and audio, and nothing
// its master lists may still be growing then.
func TestVODMasterListsFinishedCaptions(t *testing.T) {
	const id = "talk-0123456789"
	a := layout.Asset(id)
	m := &asset.Manifest{ID: id, Audio: true, Ladder: []media.Rung{{Name: "360p", Codec: "h264", Width: 640, Height: 360}},
		Segments: []asset.Segment{{Index: 0, Duration: 6}, {Index: 1, Start: 6, Duration: 6}}}
	seg := func(rendition, ext string, n int) storage.Info {
		return storage.Info{Key: a.Rendition(rendition, n, ext),
			Metadata: asset.SegmentMeta{Index: n, Start: float64(6 * n), Duration: 6, Bandwidth: 1_000_000}.Encode(nil)}
	}
	objs := []storage.Info{seg("360p", ".ts", 0), seg("360p", ".ts", 1), seg("audio", ".ts", 0), seg("audio", ".ts", 1), seg("subs", ".vtt", 0)}
	p, err := makePlan(m, objs)
	if err != nil {
		t.Fatal(err)
	}
	if p.complete != p.renditions || strings.Contains(string(p.master), "subs.m3u8") {
		t.Fatalf("complete %d of %d; master with half the captions:\n%s", p.complete, p.renditions, p.master)
	}
	if p, err = makePlan(m, append(objs, seg("subs", ".vtt", 1))); err != nil || !strings.Contains(string(p.master), `URI="subs.m3u8"`) {
		t.Fatalf("%v; master without the finished captions:\n%s", err, p.master)
	}
}

// A live publish's master lists the relay's LL-HLS source rendition,
// measured on the source segments, until the publish ends.
func TestLiveMasterListsLowLatency(t *testing.T) {
	const id = "live-cam-1796466815"
	a := layout.Asset(id)
	ll := &asset.LowLatency{URL: "http://gw:8080/live/cam/", Codecs: "avc1.64001f,mp4a.40.2"}
	base := asset.Manifest{ID: id, Audio: true, Live: true, SegmentTarget: 2, Width: 1280, Height: 720, FPS: 30, LowLatency: ll,
		Ladder:   []media.Rung{{Name: "360p", Codec: "h264", Width: 640, Height: 360}},
		Segments: []asset.Segment{{Index: 0, Duration: 2}, {Index: 1, Start: 2, Duration: 2}}}
	var objs []storage.Info
	for n, size := range []int64{750_000, 1_000_000} { // 3 and 4 Mb/s
		objs = append(objs, storage.Info{Key: a.Source(n, ".ts"), Size: size,
			Metadata: asset.SegmentMeta{Index: n, Start: float64(2 * n), Duration: 2}.Encode(nil)})
		for _, r := range []string{"360p", "audio"} {
			objs = append(objs, storage.Info{Key: a.Rendition(r, n, ".ts"),
				Metadata: asset.SegmentMeta{Index: n, Start: float64(2 * n), Duration: 2, Bandwidth: 500_000, Codecs: "avc1.4d401e"}.Encode(nil)})
		}
	}
	variant := "#EXT-X-STREAM-INF:BANDWIDTH=4000000,AVERAGE-BANDWIDTH=3500000,CODECS=\"avc1.64001f,mp4a.40.2\",RESOLUTION=1280x720,FRAME-RATE=30.000,AUDIO=\"aud-ll\"\nhttp://gw:8080/live/cam/video1_stream.m3u8\n"
	for _, tc := range []struct {
		name   string
		edit   func(m *asset.Manifest)
		objs   []storage.Info
		listed bool
	}{
		{"publishing", func(*asset.Manifest) {}, objs, true},
		{"ended", func(m *asset.Manifest) { m.Ended = true }, objs, false},
		{"no source segment yet", func(*asset.Manifest) {}, objs[1:3], false},
		{"no relay URL", func(m *asset.Manifest) { m.LowLatency = nil }, objs, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := base
			tc.edit(&m)
			p, err := makePlan(&m, tc.objs)
			if err != nil {
				t.Fatal(err)
			}
			master := string(p.master)
			if got := strings.Contains(master, variant) && strings.Contains(master, `URI="http://gw:8080/live/cam/audio2_stream.m3u8"`); got != tc.listed {
				t.Fatalf("low-latency variant listed %v, want %v:\n%s", got, tc.listed, master)
			}
			if strings.Contains(master, "live/cam/") != tc.listed {
				t.Fatalf("master:\n%s", master)
			}
			// A parser takes it: rungs and the source each one variant.
			pl, kind, err := m3u8.DecodeFrom(strings.NewReader(master), true)
			if err != nil || kind != m3u8.MASTER {
				t.Fatalf("master does not parse: %v\n%s", err, master)
			}
			if n := len(pl.(*m3u8.MasterPlaylist).Variants); (n == 2) != tc.listed {
				t.Fatalf("%d variants:\n%s", n, master)
			}
		})
	}
}

// A live CMAF stream gets a dynamic MPD from its first segment listed in
// every rendition, over the segments its playlists list, and a static one
// once it has ended; a stream packaged as MPEG-TS gets none.
func TestLiveCMAFPlanHasMPD(t *testing.T) {
	const id = "live-cam-1796466815"
	a := layout.Asset(id)
	wall := time.Date(2026, 12, 5, 18, 0, 0, 0, time.UTC)
	base := asset.Manifest{ID: id, Audio: true, Live: true, SegmentTarget: 2, Width: 640, Height: 360, FPS: 30,
		Ladder:   []media.Rung{{Name: "360p", Codec: "h264", Width: 640, Height: 360, CMAF: true}},
		Segments: []asset.Segment{{Index: 0, Duration: 2}, {Index: 1, Start: 2, Duration: 2}},
		Options:  asset.UploadOptions{Packaging: asset.PackagingCMAF}}
	var objs []storage.Info
	for n := range 2 {
		for _, r := range []string{"360p", "audio"} {
			ts := uint32(90000)
			if r == "audio" {
				ts = 48000
			}
			objs = append(objs, storage.Info{Key: a.Rendition(r, n, ".m4s"),
				Metadata: asset.SegmentMeta{Index: n, Start: 1.4 + float64(2*n), Duration: 2, Bandwidth: 500_000, Codecs: "avc1.4d401e",
					Wallclock: wall.Add(time.Duration(2*n) * time.Second), Time: int64(1.4+float64(2*n)) * int64(ts), Timescale: ts}.Encode(nil)})
		}
	}
	for _, tc := range []struct {
		name string
		edit func(m *asset.Manifest)
		objs []storage.Info
		want string // the MPD's type; "" for none
	}{
		{"publishing", func(*asset.Manifest) {}, objs, `type="dynamic"`},
		{"ended", func(m *asset.Manifest) { m.Ended = true }, objs, `type="static"`},
		{"audio not there yet", func(*asset.Manifest) {}, objs[:1], ""},
		{"MPEG-TS", func(m *asset.Manifest) { m.Options.Packaging = "" }, objs, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := base
			tc.edit(&m)
			p, err := makePlan(&m, tc.objs)
			if err != nil {
				t.Fatal(err)
			}
			if tc.want == "" {
				if p.dash != nil {
					t.Fatalf("an MPD:\n%s", p.dash)
				}
				return
			}
			if !strings.Contains(string(p.dash), tc.want) || !strings.Contains(string(p.dash), `media="360p/$Number%05d$.m4s"`) {
				t.Fatalf("MPD, want %s:\n%s", tc.want, p.dash)
			}
		})
	}
}
