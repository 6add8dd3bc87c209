package asset

import (
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/segflow/segflow/shared/media"
	"github.com/segflow/segflow/shared/storage"
)

// What Encode writes, ReadSegmentMeta reads back, through the header
// casing S3 returns; what is missing or broken is an error that says so.
func TestSegmentMeta(t *testing.T) {
	info := func(meta map[string]string) storage.Info {
		canon := map[string]string{}
		for k, v := range meta {
			canon[http.CanonicalHeaderKey(strings.ToLower(k))] = v
		}
		return storage.Info{Key: "assets/a/720p/00003.ts", Metadata: canon}
	}
	full := SegmentMeta{Index: 3, Start: 6.006, Duration: 2.002, Wallclock: time.Date(2026, 12, 4, 10, 0, 0, 123456789, time.UTC),
		Bandwidth: 2_500_000, Codecs: "avc1.64001f,mp4a.40.2"}
	cmaf := SegmentMeta{Index: 2, Start: 8, Duration: 4, Bandwidth: 700_000, Codecs: "avc1.4d401e", Time: 848160, Timescale: 90000,
		Keyframes: []media.Keyframe{{Offset: 0, Size: 23511, Time: 0}, {Offset: 61234, Size: 20011, Time: 2}}}
	for _, tc := range []struct {
		name string
		in   SegmentMeta
	}{
		{"rendition of a live segment", full},
		{"source segment of a file", SegmentMeta{Index: 0, Start: 0, Duration: 4}},
		{"CMAF rendition segment", cmaf},
	} {
		t.Run(tc.name, func(t *testing.T) {
			meta := tc.in.Encode(map[string]string{"Segflow-Producer": "transcode"})
			if meta["Segflow-Producer"] != "transcode" {
				t.Fatalf("Encode dropped what was there: %v", meta)
			}
			got, err := ReadSegmentMeta(info(meta))
			if err != nil || !got.Wallclock.Equal(tc.in.Wallclock) {
				t.Fatalf("read back %+v, %v; want %+v", got, err, tc.in)
			}
			got.Wallclock = tc.in.Wallclock
			if !reflect.DeepEqual(got, tc.in) {
				t.Fatalf("read back %+v, want %+v", got, tc.in)
			}
		})
	}
	for _, tc := range []struct {
		name string
		meta map[string]string
		want string
	}{
		{"no metadata (written by something else)", map[string]string{}, "Segment-Start"},
		{"zero duration", map[string]string{"Segment-Start": "0", "Segment-Duration": "0"}, "positive"},
		{"bad wall clock", map[string]string{"Segment-Start": "0", "Segment-Duration": "2", "Segment-Wallclock": "noon"}, "Segment-Wallclock"},
		{"bad bandwidth", map[string]string{"Segment-Start": "0", "Segment-Duration": "2", "Bandwidth": "lots"}, "Bandwidth"},
		{"bad index", map[string]string{"Segment-Start": "0", "Segment-Duration": "2", "Segment-Index": "x"}, "Segment-Index"},
		{"bad media time", map[string]string{"Segment-Start": "0", "Segment-Duration": "2", "Media-Time": "90000"}, "Media-Time"},
		{"bad keyframes", map[string]string{"Segment-Start": "0", "Segment-Duration": "2", "Keyframes": "0:0:0"}, "Keyframes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := ReadSegmentMeta(info(tc.meta)); err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "00003.ts") {
				t.Fatalf("err = %v, want one naming the segment and %s", err, tc.want)
			}
		})
	}
}

// TestInTail: the last two target lengths of a file are its tail, counted
// from the first segment's start (the split's timeline starts 1.4 s in),
// so a 60 s file's segments starting at 50 and 56 s get frame threads and
// the one at 44 s does not; a live stream, with no end, has no tail.
func TestInTail(t *testing.T) {
	file := Manifest{Duration: 60}
	for i, start := range []float64{0, 2, 8, 14, 20, 26, 32, 38, 44, 50, 56} {
		file.Segments = append(file.Segments, Segment{Index: i, Start: 1.4 + start, Duration: 6})
	}
	live := file
	live.Live = true
	short := Manifest{Duration: 5, Segments: []Segment{{Start: 1.4, Duration: 2}, {Index: 1, Start: 3.4, Duration: 3}}}
	tests := []struct {
		name string
		m    Manifest
		seg  int
		want bool
	}{
		{"first of a long file", file, 0, false},
		{"third from last", file, 8, false},
		{"next to last", file, 9, true},
		{"last", file, 10, true},
		{"live", live, 10, false},
		{"short file's first", short, 0, true},
		{"short file's last", short, 1, true},
		{"no segments listed", Manifest{Duration: 60}, 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			seg := Segment{Index: tc.seg}
			if tc.seg < len(tc.m.Segments) {
				seg = tc.m.Segments[tc.seg]
			}
			if got := tc.m.InTail(seg); got != tc.want {
				t.Errorf("InTail(segment %d at %.1f s of %.0f s) = %v, want %v", tc.seg, seg.Start, tc.m.Duration, got, tc.want)
			}
		})
	}
}
