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
