package relay_test

import (
	"context"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/segflow/segflow/infra/internal/proctree"
	"github.com/segflow/segflow/infra/internal/whiptest"
	"github.com/segflow/segflow/shared/storage"
	"github.com/segflow/segflow/shared/testenv"
)

// BenchmarkWHEPViewers publishes one 720p30 3 Mb/s stream (ffmpeg -re,
// stream copy) to the relay as its container runs it, then has 50 WebRTC
// viewers (pion, H.264 and Opus) watch it for 20 s, then 50 HLS viewers
// fetch each new source segment of it from MinIO for 20 s, same run, and
// reports the relay's CPU seconds and peak RSS in each round and MinIO's
// CPU seconds in the HLS round. The publish's own cost is in both relay
// figures.
func BenchmarkWHEPViewers(b *testing.B) {
	const viewers, seconds = 50, 20
	dir := b.TempDir()
	src := sourceFLV(b, dir)
	keysFile := filepath.Join(dir, "keys")
	os.WriteFile(keysFile, []byte("s0=stream-key-00\n"), 0o600)
	relayBin := relayBinary(b, dir)
	m := testenv.StartMinIO(b)
	m.Bucket(b, "media")
	rtmp, httpAddr := testenv.FreeAddr(b), testenv.FreeAddr(b)
	cmd := exec.Command(relayBin, "--rtmp", rtmp, "--srt", "", "--webrtc", "127.0.0.1:0", "--keys", keysFile,
		"--spool", filepath.Join(dir, "spool"), "--http", httpAddr)
	cmd.Env = append(os.Environ(), m.Env()...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); cmd.Wait() }()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pub := exec.CommandContext(ctx, "ffmpeg", "-hide_banner", "-nostdin", "-v", "error", "-re", "-stream_loop", "-1",
		"-i", src, "-c", "copy", "-f", "flv", "rtmp://"+rtmp+"/live/stream-key-00")
	if err := pub.Start(); err != nil {
		b.Fatal(err)
	}
	// It loops until cancelled: cancel, then wait (deferred the other
	// way round, Wait would wait for ever).
	defer func() { cancel(); pub.Wait() }()
	url := "http://" + httpAddr + "/whep/s0"
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(300 * time.Millisecond) {
		if code, _, _, _ := whiptest.Post(ctx, url, "", "v=0"); code == http.StatusBadRequest {
			break // live: the offer is what is wrong
		}
		if time.Now().After(deadline) {
			b.Fatal("the stream is not live after 20 s")
		}
	}
	usage := func(pid int, round func()) (float64, int64) {
		cpu0 := proctree.CPU(pid)
		var peak atomic.Int64
		stop := make(chan struct{})
		go func() {
			for {
				select {
				case <-stop:
					return
				case <-time.After(200 * time.Millisecond):
					if r := proctree.RSS(pid); r > peak.Load() {
						peak.Store(r)
					}
				}
			}
		}()
		round()
		close(stop)
		return proctree.CPU(pid) - cpu0, peak.Load()
	}
	b.ResetTimer()
	for range b.N {
		var vs []*whiptest.Viewer
		for i := range viewers {
			v, err := whiptest.View(ctx, url, b.TempDir(), whiptest.ViewOptions{})
			if err != nil {
				b.Fatalf("viewer %d: %v", i, err)
			}
			vs = append(vs, v)
		}
		whepCPU, whepRSS := usage(cmd.Process.Pid, func() { time.Sleep(seconds * time.Second) })
		watching := 0
		for _, v := range vs {
			if !v.FirstFrame().IsZero() {
				watching++
			}
			v.Delete(ctx)
			v.Close()
		}
		if watching < viewers {
			b.Errorf("%d of %d WebRTC viewers got video", watching, viewers)
		}
		// HLS viewers of the same stream: each fetches every new source
		// segment (the size of a source-quality rung) as it lands.
		minioCPU := 0.0
		hlsCPU, hlsRSS := usage(cmd.Process.Pid, func() {
			minioCPU, _ = usage(m.Server.Pid(), func() { hlsViewers(b, m, viewers, seconds*time.Second) })
		})
		b.ReportMetric(whepCPU, "whep-relay-cpu-s")
		b.ReportMetric(float64(whepRSS)/(1<<20), "whep-relay-MiB")
		b.ReportMetric(hlsCPU, "hls-relay-cpu-s")
		b.ReportMetric(float64(hlsRSS)/(1<<20), "hls-relay-MiB")
		b.ReportMetric(minioCPU, "hls-minio-cpu-s")
	}
}

// hlsViewers has n viewers fetch every new source segment in the bucket
// for d.
func hlsViewers(b *testing.B, m *testenv.MinIO, n int, d time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			seen := map[string]bool{}
			for ctx.Err() == nil {
				objs, err := m.Client.List(ctx, "media", "assets/live-s0-", storage.ListOptions{Recursive: true})
				if err != nil && !errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
					b.Errorf("list: %v", err)
					return
				}
				for _, o := range objs {
					if strings.Contains(o.Key, "/source/") && !seen[o.Key] {
						seen[o.Key] = true
						if len(seen) > 1 { // the first ones were there before
							m.Client.GetBytes(ctx, "media", o.Key)
						}
					}
				}
				select {
				case <-ctx.Done():
				case <-time.After(time.Second):
				}
			}
		})
	}
	wg.Wait()
}

// relayBinary builds the relay's own thin binary, as its container runs it.
func relayBinary(tb testing.TB, dir string) string {
	tb.Helper()
	bin := filepath.Join(dir, "segflow-relay")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/segflow/segflow/infra/cmd/segflow-relay").CombinedOutput(); err != nil {
		tb.Fatalf("build segflow-relay: %v %s", err, out)
	}
	return bin
}
