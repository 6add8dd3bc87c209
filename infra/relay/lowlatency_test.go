package relay_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/segflow/segflow/shared/media"
	"github.com/segflow/segflow/shared/testenv"
)

// llPlaylist is what a test reads off an LL-HLS media playlist.
type llPlaylist struct {
	body     string
	sequence int      // EXT-X-MEDIA-SEQUENCE
	segments []string // the URIs of the whole segments, gaps included
	// openStart is where the segment being made starts on the wall
	// clock: the last PROGRAM-DATE-TIME plus the segments after it.
	openStart   time.Time
	openParts   []float64 // the durations of the parts of the segment being made
	openURIs    []string
	preloadHint string
	init        string
}

func parseLL(t *testing.T, body string) llPlaylist {
	t.Helper()
	p := llPlaylist{body: body}
	attr := regexp.MustCompile(`URI="([^"]+)"`)
	var extinf float64
	for _, line := range strings.Split(body, "\n") {
		switch {
		case strings.HasPrefix(line, "#EXT-X-MEDIA-SEQUENCE:"):
			p.sequence, _ = strconv.Atoi(strings.TrimPrefix(line, "#EXT-X-MEDIA-SEQUENCE:"))
		case strings.HasPrefix(line, "#EXT-X-MAP:"):
			p.init = attr.FindStringSubmatch(line)[1]
		case strings.HasPrefix(line, "#EXT-X-PROGRAM-DATE-TIME:"):
			var err error
			if p.openStart, err = time.Parse(time.RFC3339Nano, strings.TrimPrefix(line, "#EXT-X-PROGRAM-DATE-TIME:")); err != nil {
				t.Fatal(err)
			}
		case strings.HasPrefix(line, "#EXT-X-PART:"):
			d, _ := strconv.ParseFloat(regexp.MustCompile(`DURATION=([0-9.]+)`).FindStringSubmatch(line)[1], 64)
			p.openParts, p.openURIs = append(p.openParts, d), append(p.openURIs, attr.FindStringSubmatch(line)[1])
		case strings.HasPrefix(line, "#EXTINF:"):
			extinf, _ = strconv.ParseFloat(strings.TrimSuffix(strings.TrimPrefix(line, "#EXTINF:"), ","), 64)
		case strings.HasPrefix(line, "#EXT-X-PRELOAD-HINT:"):
			p.preloadHint = attr.FindStringSubmatch(line)[1]
		case line != "" && !strings.HasPrefix(line, "#"):
			p.segments, p.openParts, p.openURIs = append(p.segments, line), nil, nil
			p.openStart = p.openStart.Add(time.Duration(extinf * float64(time.Second)))
		}
	}
	return p
}

func get(t *testing.T, url string) (int, []byte) { return testenv.Get(t, url) }

// TestLowLatencyRendition publishes over RTMP and plays the stream's
// LL-HLS source rendition as a low-latency player does: the
// multivariant playlist, then blocking reloads for the next part, whose
// answer must come as soon as that part's last frame is in (measured on
// the playlist's own PROGRAM-DATE-TIME, which the publisher's real-time
// sending makes the wall clock), the preload hint, and a whole segment
// that decodes.
func TestLowLatencyRendition(t *testing.T) {
	e := start(t)
	srv := httptest.NewServer(e.relay.LowLatency())
	defer srv.Close()
	base := srv.URL + "/cam1/"
	if code, _ := get(t, base+"index.m3u8"); code != http.StatusNotFound {
		t.Fatalf("a stream that is not publishing: %d, want 404", code)
	}
	done := make(chan error, 1)
	go func() { done <- publish(t, 12, "flv", "rtmp://"+e.rtmp+"/live/"+key) }()

	// The multivariant playlist waits for the first part.
	deadline := time.Now().Add(10 * time.Second)
	var master []byte
	for code := 0; code != http.StatusOK; {
		if time.Now().After(deadline) {
			t.Fatalf("no multivariant playlist: %d %s", code, master)
		}
		time.Sleep(100 * time.Millisecond)
		code, master = get(t, base+"index.m3u8")
	}
	for _, want := range []string{`CODECS="avc1.`, `mp4a.40.2`, "RESOLUTION=640x360", `AUDIO="audio"`, "video1_stream.m3u8", `URI="audio2_stream.m3u8"`} {
		if !strings.Contains(string(master), want) {
			t.Fatalf("multivariant playlist lacks %s:\n%s", want, master)
		}
	}

	var lags []time.Duration
	for len(lags) < 8 {
		_, b := get(t, base+"video1_stream.m3u8")
		p := parseLL(t, string(b))
		for _, want := range []string{"#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES", "#EXT-X-PART-INF:PART-TARGET=0.3", "#EXT-X-VERSION:"} {
			if !strings.Contains(p.body, want) {
				t.Fatalf("media playlist lacks %s:\n%s", want, p.body)
			}
		}
		if p.preloadHint == "" || p.init == "" {
			t.Fatalf("no preload hint or map:\n%s", p.body)
		}
		// The part the hint names: in segment sequence+len(segments), at
		// the index after the parts listed.
		msn, part := p.sequence+len(p.segments), len(p.openParts)
		start := time.Now()
		_, b = get(t, fmt.Sprintf("%svideo1_stream.m3u8?_HLS_msn=%d&_HLS_part=%d", base, msn, part))
		answered := time.Now()
		q := parseLL(t, string(b))
		if !strings.Contains(q.body, `URI="`+p.preloadHint+`"`) {
			t.Fatalf("blocking reload for %d.%d (%s) returned without it:\n%s", msn, part, p.preloadHint, q.body)
		}
		// Where the awaited part ends on the wall clock: its segment's
		// start plus the parts up to it.
		end := q.openStart
		for i, u := range q.openURIs {
			end = end.Add(time.Duration(q.openParts[i] * float64(time.Second)))
			if u == p.preloadHint {
				break
			}
		}
		lags = append(lags, answered.Sub(end))
		t.Logf("part %d.%d: waited %v, answered %v after its end", msn, part, answered.Sub(start).Round(time.Millisecond), answered.Sub(end).Round(time.Millisecond))
	}
	for _, lag := range lags {
		// A part is complete once the next frame arrives (a frame, 33 ms,
		// plus the publisher's pacing); half a second means it was held.
		if lag > 500*time.Millisecond {
			t.Fatalf("blocking reloads answered %v after their parts ended", lags)
		}
	}

	// The preload hint's request waits for the part and gets its bytes.
	_, b := get(t, base+"video1_stream.m3u8")
	p := parseLL(t, string(b))
	if code, part := get(t, base+p.preloadHint); code != http.StatusOK || len(part) == 0 {
		t.Fatalf("preload hint %s: %d, %d bytes", p.preloadHint, code, len(part))
	}
	// A whole segment decodes: two seconds of 30 fps video.
	_, init := get(t, base+p.init)
	seg := p.segments[len(p.segments)-1]
	_, body := get(t, base+seg)
	file := filepath.Join(t.TempDir(), "seg.mp4")
	if err := os.WriteFile(file, append(init, body...), 0o644); err != nil {
		t.Fatal(err)
	}
	info, err := media.Probe(context.Background(), file)
	if err != nil {
		t.Fatal(err)
	}
	// fMP4 keeps the stream's timeline: the segment starts where it is.
	if d := info.Duration - info.StartTime; info.Video == nil || info.Video.Codec != "h264" || info.Video.Width != 640 || d < 1.9 || d > 2.1 {
		t.Fatalf("segment %s: %+v (video %+v)", seg, info, info.Video)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	e.waitEnded("cam1", 30*time.Second)
	if code, _ := get(t, base+"index.m3u8"); code != http.StatusNotFound {
		t.Fatalf("after the publish ended: %d, want 404", code)
	}
	if code, _ := get(t, srv.URL+"/cam2/index.m3u8"); code != http.StatusNotFound {
		t.Fatalf("another stream: %d, want 404", code)
	}
}
