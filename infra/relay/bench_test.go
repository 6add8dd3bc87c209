package relay_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/segflow/segflow/infra/internal/proctree"
	"github.com/segflow/segflow/infra/internal/testgw"
	"github.com/segflow/segflow/shared/testenv"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testgw.Cleanup()
	os.Exit(code)
}

// BenchmarkRelayVsNginxRTMP runs 20 publishers (ffmpeg -re, stream copy of
// a 720p30 H.264/AAC file) against the relay, then the same against nginx
// with the rtmp module writing HLS, three rounds of both, and reports each
// server's CPU seconds per round and RSS per stream, and the CPU ratio. nginx comes from Debian
// (libnginx-mod-rtmp; scripts/bench installs it).
func BenchmarkRelayVsNginxRTMP(b *testing.B) {
	const streams, seconds, rounds = 20, 30, 3
	if _, err := os.Stat("/usr/lib/nginx/modules/ngx_rtmp_module.so"); err != nil {
		b.Skip("nginx rtmp module not installed (apt-get install nginx-light libnginx-mod-rtmp)")
	}
	dir := b.TempDir()
	src := sourceFLV(b, dir)
	keysFile := streamKeys(b, dir, streams, "stream-key-%02d")

	relayBin := relayBinary(b, dir)
	m := testenv.StartMinIO(b)
	m.Bucket(b, "media")
	relay := func() (float64, int64) {
		rtmp := testenv.FreeAddr(b)
		spool, _ := os.MkdirTemp(dir, "spool-") // nothing left over from a killed run
		cmd := exec.Command(relayBin, "--rtmp", rtmp, "--srt", "", "--keys", keysFile,
			"--spool", spool, "--http", testenv.FreeAddr(b))
		cmd.Env = append(os.Environ(), m.Env()...)
		return measure(b, cmd, func(i int) string { return fmt.Sprintf("rtmp://%s/live/stream-key-%02d", rtmp, i) }, src, streams, seconds)
	}
	nginx := func() (float64, int64) {
		port := testenv.FreeAddr(b)
		hlsDir := filepath.Join(dir, "nginx-hls")
		os.MkdirAll(hlsDir, 0o777)
		conf := filepath.Join(dir, "nginx.conf")
		os.WriteFile(conf, []byte(fmt.Sprintf(`load_module /usr/lib/nginx/modules/ngx_rtmp_module.so;
user root;
worker_processes 1;
pid %s/nginx.pid;
error_log %s/nginx-error.log;
events { worker_connections 1024; }
rtmp { server { listen %s; chunk_size 4096;
  application live { live on; record off; hls on; hls_path %s; hls_fragment 2s; hls_nested on; } } }
`, dir, dir, port, hlsDir)), 0o644)
		cmd := exec.Command("nginx", "-c", conf, "-g", "daemon off;")
		return measure(b, cmd, func(i int) string { return fmt.Sprintf("rtmp://%s/live/stream-key-%02d", port, i) }, src, streams, seconds)
	}
	b.ResetTimer()
	for n := 0; n < b.N; n++ {
		// Rounds alternate which server goes first, and the ratio is of
		// the sums: this machine's speed drifts by ~10% within minutes,
		// which one pair of runs takes for a difference between servers.
		var rCPU, nCPU float64
		var rRSS, nRSS int64
		for round := range rounds {
			var rc, nc float64
			var rr, nr int64
			if round%2 == 0 {
				rc, rr = relay()
				nc, nr = nginx()
			} else {
				nc, nr = nginx()
				rc, rr = relay()
			}
			rCPU, nCPU = rCPU+rc, nCPU+nc
			rRSS, nRSS = max(rRSS, rr), max(nRSS, nr)
		}
		b.ReportMetric(rCPU/rounds, "relay-cpu-s")
		b.ReportMetric(nCPU/rounds, "nginx-cpu-s")
		b.ReportMetric(rCPU/nCPU, "cpu-ratio")
		b.ReportMetric(float64(rRSS)/streams/(1<<20), "relay-MiB/stream")
		b.ReportMetric(float64(nRSS)/streams/(1<<20), "nginx-MiB/stream")
	}
}

// streamKeys writes a keys file of n streams, s<i> with key format(i).
func streamKeys(b *testing.B, dir string, n int, format string) string {
	var keys strings.Builder
	for i := range n {
		fmt.Fprintf(&keys, "s%d="+format+"\n", i, i)
	}
	keysFile := filepath.Join(dir, "keys")
	if err := os.WriteFile(keysFile, []byte(keys.String()), 0o600); err != nil {
		b.Fatal(err)
	}
	return keysFile
}

// sourceFLV is the publishers' file: 10 s of 720p30 H.264 at 3 Mb/s
// (keyframes every 2 s) and AAC.
func sourceFLV(b *testing.B, dir string) string {
	src := filepath.Join(dir, "src.flv")
	if out, err := exec.Command("ffmpeg", "-hide_banner", "-v", "error", "-y",
		"-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=30:duration=10",
		"-f", "lavfi", "-i", "sine=frequency=1000:sample_rate=48000:duration=10",
		"-c:v", "libx264", "-preset", "ultrafast", "-g", "60", "-b:v", "3M", "-pix_fmt", "yuv420p",
		"-c:a", "aac", "-b:a", "128k", src).CombinedOutput(); err != nil {
		b.Fatalf("%v %s", err, out)
	}
	return src
}

// measure starts server, runs the publishers for seconds and returns the
// CPU seconds the server (and its children) used meanwhile and its peak RSS.
func measure(b *testing.B, server *exec.Cmd, url func(int) string, src string, streams, seconds int) (float64, int64) {
	return measureWith(b, server, streams, nil, func(i int) {
		out, err := exec.Command("ffmpeg", "-hide_banner", "-nostdin", "-v", "error", "-re", "-stream_loop", "-1",
			"-i", src, "-t", strconv.Itoa(seconds), "-c", "copy", "-f", "flv", url(i)).CombinedOutput()
		if err != nil {
			b.Errorf("publisher %d: %v %s", i, err, out)
		}
	})
}

// measureWith is measure with publish(i) running publisher i, and
// after (when not nil) called once they are done, before the server stops
// and inside the CPU reading: what the server still does for them then
// (the last segments, behind under load) is its work too.
func measureWith(b *testing.B, server *exec.Cmd, streams int, after func(), publish func(i int)) (float64, int64) {
	// Its own process group, killed whole: nginx's worker outlives a
	// killed master and kept its port.
	server.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := server.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { syscall.Kill(-server.Process.Pid, syscall.SIGKILL); server.Wait() }()
	time.Sleep(time.Second)
	cpu0 := proctree.CPU(server.Process.Pid)
	var wg sync.WaitGroup
	for i := 0; i < streams; i++ {
		wg.Go(func() { publish(i) })
	}
	var peak int64
	stop := make(chan struct{})
	go func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(200 * time.Millisecond):
				peak = max(peak, proctree.RSS(server.Process.Pid))
			}
		}
	}()
	wg.Wait()
	if after != nil {
		after()
	}
	close(stop)
	return proctree.CPU(server.Process.Pid) - cpu0, peak
}
