package relay_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/segflow/segflow/shared/telemetry"
	"github.com/segflow/segflow/shared/testenv"
)

// BenchmarkRelayAtSize: 100, 200 and 300 publishers (SEGFLOW_RELAY_COUNTS,
// comma-separated) of 720p30 H.264 at 3 Mb/s with AAC, for 30 s, against
// the relay (segments to MinIO) and against nginx-rtmp writing HLS, the
// servers alternating first. The publishers replay one pre-encoded FLV
// from this process (flvFile.publish: a write per frame, no ffmpeg per
// publisher), so their own CPU stays small. Reported per count: each
// server's streams per core (publisher-seconds per CPU-second), RSS per
// stream, and the segments each server cut against those the publish
// time holds (a stream of 30 s in 2 s GOPs: 15): missing ones never came,
// late ones came more than 2 s after the publishes ended (behind under
// load; the server's CPU is read once they are in), with the relay's own
// dropped ones (spool full).
func BenchmarkRelayAtSize(b *testing.B) {
	if _, err := os.Stat("/usr/lib/nginx/modules/ngx_rtmp_module.so"); err != nil {
		b.Skip("nginx rtmp module not installed (apt-get install nginx-light libnginx-mod-rtmp)")
	}
	counts := []int{100, 200, 300}
	if v := os.Getenv("SEGFLOW_RELAY_COUNTS"); v != "" {
		counts = nil
		for _, f := range strings.Split(v, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil {
				b.Fatal(err)
			}
			counts = append(counts, n)
		}
	}
	const seconds = 30
	dir := b.TempDir()
	file, err := readFLV(sourceFLV(b, dir))
	if err != nil {
		b.Fatal(err)
	}
	most := 0
	for _, n := range counts {
		most = max(most, n)
	}
	keysFile := streamKeys(b, dir, most, "stream-key-%03d")
	relayBin := relayBinary(b, dir)
	m := testenv.StartMinIO(b)
	m.Bucket(b, "media")
	publisher := func(server string, url func(int) string) func(int) {
		return func(i int) {
			if err := file.publish(context.Background(), url(i), seconds*time.Second); err != nil {
				b.Errorf("%s: publisher %d: %v", server, i, err)
			}
		}
	}
	want := float64(0) // segments a run's publishes hold, set per count below
	relay := func(streams int) (cpu float64, rss int64, segs segmentCount, dropped float64) {
		rtmp, web := testenv.FreeAddr(b), testenv.FreeAddr(b)
		spool, _ := os.MkdirTemp(dir, "spool-")
		cmd := exec.Command(relayBin, "--rtmp", rtmp, "--srt", "", "--keys", keysFile, "--spool", spool, "--http", web)
		cmd.Env = append(os.Environ(), m.Env()...)
		logs, _ := os.Create(filepath.Join(dir, fmt.Sprintf("relay-%d.log", streams)))
		defer logs.Close()
		cmd.Stderr, cmd.Stdout = logs, logs
		cpu, rss = measureWith(b, cmd, streams, func() {
			segs = settle(want, func() float64 {
				cut, d := relaySegments(b, "http://"+web+"/metrics")
				dropped = d
				return cut
			})
		}, publisher("relay", func(i int) string { return fmt.Sprintf("rtmp://%s/live#stream-key-%03d", rtmp, i) }))
		return cpu, rss, segs, dropped
	}
	nginx := func(streams int) (cpu float64, rss int64, segs segmentCount) {
		port := testenv.FreeAddr(b)
		hlsDir, _ := os.MkdirTemp(dir, "nginx-hls-")
		conf := filepath.Join(dir, "nginx.conf")
		os.WriteFile(conf, []byte(fmt.Sprintf(`load_module /usr/lib/nginx/modules/ngx_rtmp_module.so;
user root;
worker_processes 1;
worker_rlimit_nofile 8192;
pid %s/nginx.pid;
error_log %s/nginx-error.log;
events { worker_connections 4096; }
rtmp { server { listen %s; chunk_size 4096;
  application live { live on; record off; hls on; hls_path %s; hls_fragment 2s; hls_nested on; hls_cleanup off; } } }
`, dir, dir, port, hlsDir)), 0o644)
		cmd := exec.Command("nginx", "-c", conf, "-g", "daemon off;")
		cpu, rss = measureWith(b, cmd, streams, func() {
			segs = settle(want, func() float64 {
				ts, _ := filepath.Glob(filepath.Join(hlsDir, "*", "*.ts"))
				return float64(len(ts))
			})
		}, publisher("nginx", func(i int) string { return fmt.Sprintf("rtmp://%s/live#stream-key-%03d", port, i) }))
		return cpu, rss, segs
	}
	// The publish time holds seconds/2 GOPs per stream.
	const perStream = seconds / 2
	b.ResetTimer()
	for range b.N {
		for k, n := range counts {
			want = float64(n * perStream)
			var rc, nc, dropped float64
			var cut, ncut segmentCount
			var rr, nr int64
			if k%2 == 0 {
				rc, rr, cut, dropped = relay(n)
				nc, nr, ncut = nginx(n)
			} else {
				nc, nr, ncut = nginx(n)
				rc, rr, cut, dropped = relay(n)
			}
			p := fmt.Sprintf("n%d-", n)
			b.ReportMetric(float64(n*seconds)/rc, p+"relay-streams/core")
			b.ReportMetric(float64(n*seconds)/nc, p+"nginx-streams/core")
			b.ReportMetric(rc/nc, p+"cpu-ratio")
			b.ReportMetric(float64(rr)/float64(n)/(1<<20), p+"relay-MiB/stream")
			b.ReportMetric(float64(nr)/float64(n)/(1<<20), p+"nginx-MiB/stream")
			b.ReportMetric(want-cut.final, p+"relay-missing-segments")
			b.ReportMetric(cut.final-cut.onTime, p+"relay-late-segments")
			b.ReportMetric(dropped, p+"relay-dropped-segments")
			b.ReportMetric(want-ncut.final, p+"nginx-missing-segments")
			b.ReportMetric(ncut.final-ncut.onTime, p+"nginx-late-segments")
		}
	}
}

// segmentCount is a server's segments of a run: those there 2 s after
// the publishes ended (on time), and those there once the count stopped
// rising (final); the difference came late, what final lacks never came.
type segmentCount struct{ onTime, final float64 }

// settle counts a run's segments: at 2 s, then until all want are there
// or the count has not risen for 5 s (at most a minute).
func settle(want float64, count func() float64) segmentCount {
	time.Sleep(2 * time.Second)
	c := segmentCount{onTime: count()}
	c.final = c.onTime
	for still, deadline := time.Now(), time.Now().Add(time.Minute); c.final < want && time.Since(still) < 5*time.Second && time.Now().Before(deadline); {
		time.Sleep(500 * time.Millisecond)
		if n := count(); n > c.final {
			c.final, still = n, time.Now()
		}
	}
	return c
}

// relaySegments reads the relay's segments cut and dropped, all streams.
func relaySegments(b *testing.B, metricsURL string) (cut, dropped float64) {
	scrape, err := telemetry.GetScrape(context.Background(), metricsURL)
	if err != nil {
		b.Fatal(err)
	}
	return scrape.Sum("segflow_relay_segments_total", nil), scrape.Sum("segflow_relay_segments_dropped_total", nil)
}
