package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/grafov/m3u8"
	"github.com/pion/webrtc/v4"

	"github.com/segflow/segflow/infra/internal/e2ekit"
	"github.com/segflow/segflow/infra/internal/teststack"
	"github.com/segflow/segflow/infra/internal/whiptest"
	"github.com/segflow/segflow/shared/asset"
	"github.com/segflow/segflow/shared/layout"
	"github.com/segflow/segflow/shared/media/mediatest"
	"github.com/segflow/segflow/shared/storage"
)

// BenchmarkLiveLatency publishes 1, 5 and 20 streams of 720p30 at once
// (ffmpeg -re, stream copy of one file, so the publishers cost little) and
// reports, over every segment of every stream, the time from its last
// frame reaching the relay to its being listed in every rendition's
// playlist: p50 and p95 in seconds, and how many segments were never
// listed while their stream ran. The last frame's time is the segment's
// PROGRAM-DATE-TIME plus its EXTINF: the relay anchors the wall clock at
// the stream's first frame and the publisher sends in real time (-re).
// When a playlist was listed is read from its rank metadata (the last
// segment it lists), one listing per stream every 100 ms. Beside them:
// the mean transcode call, the encode part of that latency.
func BenchmarkLiveLatency(b *testing.B) {
	seconds := 40
	if v := os.Getenv("SEGFLOW_BENCH_SECONDS"); v != "" {
		seconds, _ = strconv.Atoi(v)
	}
	const most = 20
	var keys strings.Builder
	for i := range most {
		fmt.Fprintf(&keys, "bench-%d=benchkey-%d\n", i, i)
	}
	s := teststack.UpWithKeys(b, keys.String())
	src := filepath.Join(b.TempDir(), "720p.mp4")
	mediatest.Make(b, src, mediatest.Clip{Seconds: float64(seconds), Width: 1280, Height: 720, FPS: 30, Audio: true, Bitrate: 3_000_000})
	base := s.Env.RTMPURL[:strings.LastIndex(s.Env.RTMPURL, "/")+1]
	for _, n := range []int{1, 5, 20} {
		b.Run(fmt.Sprintf("streams=%d", n), func(b *testing.B) {
			var all []float64
			missed := 0
			for range b.N {
				lat, miss := publishAndMeasure(b, s.With(b), n, func(i int) error {
					out, err := exec.Command("ffmpeg", "-hide_banner", "-nostdin", "-v", "error", "-re", "-i", src,
						"-c", "copy", "-f", "flv", base+"benchkey-"+strconv.Itoa(i)).CombinedOutput()
					if err != nil {
						return fmt.Errorf("%v %s", err, out)
					}
					return nil
				})
				all, missed = append(all, lat...), missed+miss
			}
			slices.Sort(all)
			b.ReportMetric(percentile(all, 0.50), "p50-s")
			b.ReportMetric(percentile(all, 0.95), "p95-s")
			b.ReportMetric(float64(missed), "unlisted-live")
			b.ReportMetric(float64(len(all)), "segments")
			b.ReportMetric(meanCallSeconds(b, s, "transcode"), "transcode-call-s") // mean since the stack started
		})
	}
}

// publishAndMeasure runs n publishers at once (publish(i) sends stream
// bench-<i> with key benchkey-<i> until it ends) and returns each
// segment's latency and how many segments were not listed while their
// stream ran.
func publishAndMeasure(b *testing.B, s *teststack.Stack, n int, publish func(i int) error) ([]float64, int) {
	since := time.Now()
	var pubs sync.WaitGroup
	for i := range n {
		pubs.Go(func() {
			if err := publish(i); err != nil {
				b.Errorf("publisher %d: %v", i, err)
			}
		})
	}
	// Each stream's publish asset, then its playlists' ranks as they move.
	ids := make([]string, n)
	for i := range n {
		ids[i] = publishOf(b, s, "bench-"+strconv.Itoa(i), since)
	}
	listed := make([]map[int]time.Time, n) // segment -> when every rendition listed it
	stop := make(chan struct{})
	var polls sync.WaitGroup
	for i := range n {
		listed[i] = map[int]time.Time{}
		polls.Go(func() { watchRanks(s, ids[i], listed[i], stop) })
	}
	pubs.Wait()
	streaming := time.Now()
	close(stop)
	polls.Wait()
	var lat []float64
	missed := 0
	for i, id := range ids {
		// The publish's manifest lists every segment once it ended; its
		// playlist, read now, those listed by the end (with their dates).
		var m *asset.Manifest
		for m == nil || !m.Ended {
			m = e2ekit.ReadManifest(b, s, id)
			time.Sleep(100 * time.Millisecond)
		}
		if len(m.Ladder) == 0 {
			b.Fatalf("%s has no ladder", id)
		}
		missed += len(m.Segments) - len(listed[i])
		if len(listed[i]) == 0 {
			continue // nothing listed while it ran (an overloaded machine)
		}
		body, err := s.Store.GetBytes(context.Background(), s.Bucket, layout.Asset(id).Playlist(m.Ladder[0].Name))
		if err != nil {
			b.Fatalf("%s: no playlist at the end: %v", id, err)
		}
		pl, _, err := m3u8.DecodeFrom(bytes.NewReader(body), true)
		if err != nil {
			b.Fatal(err)
		}
		segs := pl.(*m3u8.MediaPlaylist).GetAllSegments()
		for k, seg := range segs {
			at, ok := listed[i][k]
			if !ok || at.After(streaming) {
				continue
			}
			lat = append(lat, at.Sub(seg.ProgramDateTime.Add(time.Duration(seg.Duration*float64(time.Second)))).Seconds())
		}
	}
	return lat, missed
}

// BenchmarkWHIPLatency is BenchmarkLiveLatency's measure for one WHIP
// publisher (pion sending H.264 and Opus in real time, as a browser does)
// beside one RTMP publisher of the same 720p30 picture, same run: last
// frame at the relay to listed in every rendition, p50 and p95.
func BenchmarkWHIPLatency(b *testing.B) {
	seconds := 40
	if v := os.Getenv("SEGFLOW_BENCH_SECONDS"); v != "" {
		seconds, _ = strconv.Atoi(v)
	}
	s := teststack.UpWithKeys(b, "bench-0=benchkey-0\n")
	dir := b.TempDir()
	// One encode for both: H.264 baseline with a keyframe every 2 s (the
	// file cannot answer the relay's keyframe requests), Opus beside it;
	// the RTMP publisher sends the same video with the sine as AAC.
	clip, err := whiptest.Encode(dir, seconds, 30, 60, "1280x720", "", webrtc.MimeTypeH264)
	if err != nil {
		b.Fatal(err)
	}
	flv := filepath.Join(dir, "720p.flv")
	mediatest.FFmpeg(b, "-f", "h264", "-framerate", "30", "-i", clip.Video, "-i", clip.Ogg,
		"-c:v", "copy", "-c:a", "aac", "-b:a", "128k", "-f", "flv", flv)
	rtmpURL := s.Env.RTMPURL[:strings.LastIndex(s.Env.RTMPURL, "/")+1] + "benchkey-0"
	for _, c := range []struct {
		name    string
		publish func(int) error
	}{
		{"rtmp", func(int) error {
			out, err := exec.Command("ffmpeg", "-hide_banner", "-nostdin", "-v", "error", "-re", "-i", flv,
				"-c", "copy", "-f", "flv", rtmpURL).CombinedOutput()
			if err != nil {
				return fmt.Errorf("%v %s", err, out)
			}
			return nil
		}},
		{"whip", func(int) error {
			ctx := context.Background()
			pub, err := whiptest.Dial(ctx, s.Env.WHIPURL, "benchkey-0", webrtc.MimeTypeH264)
			if err != nil {
				return err
			}
			defer pub.Close()
			if err := pub.Send(ctx, clip); err != nil {
				return err
			}
			_, err = pub.Delete(ctx)
			return err
		}},
	} {
		b.Run(c.name, func(b *testing.B) {
			var all []float64
			missed := 0
			for range b.N {
				// The last publish's asset is still being tagged and
				// packaged: each starts on a machine as idle as the other's.
				waitQuiet(b, 2*time.Minute)
				lat, miss := publishAndMeasure(b, s.With(b), 1, c.publish)
				all, missed = append(all, lat...), missed+miss
			}
			slices.Sort(all)
			b.ReportMetric(percentile(all, 0.50), "p50-s")
			b.ReportMetric(percentile(all, 0.95), "p95-s")
			b.ReportMetric(float64(missed), "unlisted-live")
			b.ReportMetric(float64(len(all)), "segments")
		})
	}
}

// waitQuiet waits, up to within, until the machine's CPUs were busy less
// than 15% of a second.
func waitQuiet(b *testing.B, within time.Duration) {
	busy := func() (used, total float64) {
		raw, _ := os.ReadFile("/proc/stat")
		f := strings.Fields(strings.SplitN(string(raw), "\n", 2)[0])
		for i, v := range f[1:] {
			n, _ := strconv.ParseFloat(v, 64)
			total += n
			if i != 3 && i != 4 { // idle, iowait
				used += n
			}
		}
		return used, total
	}
	for deadline := time.Now().Add(within); time.Now().Before(deadline); {
		u0, t0 := busy()
		time.Sleep(time.Second)
		u1, t1 := busy()
		if (u1-u0)/(t1-t0) < 0.15 {
			return
		}
	}
	b.Logf("machine still busy after %s", within)
}

// publishOf waits for stream's publish started after since.
func publishOf(b *testing.B, s *teststack.Stack, stream string, since time.Time) string {
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		raw, err := s.Store.GetBytes(context.Background(), s.Bucket, layout.Channel(stream).State())
		if err == nil {
			var st struct {
				Current string    `json:"current"`
				Started time.Time `json:"started"`
			}
			if json.Unmarshal(raw, &st) == nil && !st.Started.Before(since.Add(-time.Second)) {
				return st.Current
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	b.Fatalf("stream %s never started\n%s", stream, s.Log())
	return ""
}

// watchRanks records, for each segment, when the last of the publish's
// playlists came to list it: every playlist's rank (the packager's
// Segflow-Rank metadata: its last segment) from one listing.
func watchRanks(s *teststack.Stack, id string, listed map[int]time.Time, stop <-chan struct{}) {
	a := layout.Asset(id)
	var names []string
	for {
		select {
		case <-stop:
			return
		case <-time.After(100 * time.Millisecond):
		}
		if names == nil {
			m, err := asset.ReadManifest(context.Background(), s.Store, s.Bucket, id)
			if err != nil {
				continue
			}
			names = m.RenditionNames()
		}
		objs, err := s.Store.List(context.Background(), s.Bucket, a.Prefix(), storage.ListOptions{WithMetadata: true})
		if err != nil {
			continue
		}
		now, ranks := time.Now(), map[string]int{}
		for _, o := range objs {
			if v := o.Meta("Segflow-Rank"); v != "" {
				n, _ := strconv.Atoi(strings.TrimSuffix(v, ",end"))
				ranks[o.Key] = n
			}
		}
		low := -1
		for k, name := range names {
			r, ok := ranks[a.Playlist(name)]
			if !ok {
				low = -1
				break
			}
			if k == 0 || r < low {
				low = r
			}
		}
		for seg := 0; seg <= low; seg++ {
			if _, ok := listed[seg]; !ok {
				listed[seg] = now
			}
		}
	}
}

func percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, int(p*float64(len(sorted))))]
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
