package e2e

import (
	"bufio"
	"bytes"
	"context"
	"net/http"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/grafov/m3u8"

	"github.com/segflow/segflow/infra/internal/teststack"
	"github.com/segflow/segflow/shared/layout"
)

// BenchmarkLiveLatency publishes 30 s over RTMP through the whole stack and
// reports, per segment, the time from its close at the relay (its first
// frame's arrival plus its duration) to its listing in the live playlists,
// which happens once every rendition of it exists; beside it the mean
// transcode call time, the encode part of that latency.
func BenchmarkLiveLatency(b *testing.B) {
	s := teststack.Up(b)
	b.ResetTimer()
	for n := 0; n < b.N; n++ {
		since := time.Now()
		done := make(chan error, 1)
		go func() {
			done <- exec.Command("ffmpeg", "-hide_banner", "-nostdin", "-v", "error", "-re",
				"-f", "lavfi", "-i", "testsrc2=size=854x480:rate=30:duration=30",
				"-f", "lavfi", "-i", "sine=frequency=1000:sample_rate=48000:duration=30",
				"-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", "60", "-pix_fmt", "yuv420p",
				"-c:a", "aac", "-f", "flv", s.Env.RTMPURL).Run()
		}()
		id := waitLiveAsset(b, s, since)
		a := layout.Asset(id)
		listed := map[string]time.Time{} // segment URI -> first seen listed
		var closed = map[string]time.Time{}
		finished := false
		for !finished {
			select {
			case err := <-done:
				if err != nil {
					b.Fatal(err)
				}
				done = nil
			default:
			}
			body, err := s.Store.GetBytes(context.Background(), s.Bucket, a.Playlist("360p"))
			if err == nil {
				pl, _, err := m3u8.DecodeFrom(bytes.NewReader(body), true)
				if err == nil {
					mp := pl.(*m3u8.MediaPlaylist)
					for _, seg := range mp.GetAllSegments() {
						if _, ok := listed[seg.URI]; !ok {
							listed[seg.URI] = time.Now()
							closed[seg.URI] = seg.ProgramDateTime.Add(time.Duration(seg.Duration * float64(time.Second)))
						}
					}
					finished = mp.Closed
				}
			}
			time.Sleep(50 * time.Millisecond)
		}
		var lat []time.Duration
		for uri, at := range listed {
			lat = append(lat, at.Sub(closed[uri]))
		}
		sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
		b.ReportMetric(lat[len(lat)/2].Seconds(), "latency-p50-s")
		b.ReportMetric(lat[len(lat)-1].Seconds(), "latency-max-s")
		b.ReportMetric(2, "segment-s")
		b.ReportMetric(meanCallSeconds(b, s, "transcode"), "transcode-call-s")
	}
}

// meanCallSeconds reads the gateway's call-duration histogram.
func meanCallSeconds(b *testing.B, s *teststack.Stack, fn string) float64 {
	resp, err := http.Get(s.Env.Gateway + "/metrics")
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	var sum, count float64
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if !strings.Contains(line, `function_name="`+fn+`"`) || !strings.Contains(line, `code="200"`) {
			continue
		}
		f := strings.Fields(line)
		v, _ := strconv.ParseFloat(f[len(f)-1], 64)
		switch {
		case strings.HasPrefix(line, "gateway_functions_seconds_sum"):
			sum += v
		case strings.HasPrefix(line, "gateway_functions_seconds_count"):
			count += v
		}
	}
	if count == 0 {
		return 0
	}
	return sum / count
}
