package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/segflow/segflow/infra/internal/proctree"
	"github.com/segflow/segflow/infra/internal/teststack"
	"github.com/segflow/segflow/shared/asset"
	"github.com/segflow/segflow/shared/media"
	"github.com/segflow/segflow/shared/media/mediatest"
)

// BenchmarkVODPipeline makes the same H.264 ladder from a 60 s 1080p file
// twice in one run: with one bare ffmpeg process (one decode, split filter,
// the encoder settings transcode uses), and through the whole pipeline
// (object in the bucket -> split -> transcode per segment -> packager). It
// reports the wall-time ratio pipeline/ffmpeg, the upload's own time, and
// the peak RSS of each.
func BenchmarkVODPipeline(b *testing.B) {
	seconds := 60.0
	if v := os.Getenv("SEGFLOW_BENCH_SECONDS"); v != "" {
		seconds, _ = strconv.ParseFloat(v, 64)
	}
	dir := b.TempDir()
	src := filepath.Join(dir, "src.mp4")
	mediatest.Make(b, src, mediatest.Clip{Seconds: seconds, Width: 1920, Height: 1080, FPS: 30, Audio: true})
	info, err := media.Probe(context.Background(), src)
	if err != nil {
		b.Fatal(err)
	}
	rungs, _ := media.Ladder(info.Video, nil)
	s := teststack.Up(b)
	// The ladder is what bare ffmpeg makes: thumbnails and tags are work it
	// does not do, so they are taken out of the stack for the comparison.
	for _, fn := range []string{"aitag", "thumbnail"} {
		if err := s.GW.Remove(context.Background(), fn); err != nil {
			b.Fatal(err)
		}
	}
	time.Sleep(3 * time.Second) // the router's next subscription refresh
	b.ResetTimer()
	var bare, pipe time.Duration
	var bareRSS, pipeRSS int64
	for i := 0; i < b.N; i++ {
		// Bare ffmpeg runs before and after the pipeline and counts its
		// faster run: this machine's speed drifts by ~10% within minutes,
		// and the baseline should not gain from a slow spell.
		d1, rss1 := bareLadder(b, src, dir, rungs)
		d, rss := pipeline(b, s, src, i)
		pipe += d
		pipeRSS = max(pipeRSS, rss)
		d2, rss2 := bareLadder(b, src, dir, rungs)
		bare += min(d1, d2)
		bareRSS = max(bareRSS, rss1, rss2)
	}
	b.StopTimer()
	b.ReportMetric(bare.Seconds()/float64(b.N), "ffmpeg-s")
	b.ReportMetric(pipe.Seconds()/float64(b.N), "pipeline-s")
	b.ReportMetric(pipe.Seconds()/bare.Seconds(), "ratio")
	b.ReportMetric(float64(bareRSS)/(1<<20), "ffmpeg-peak-MiB")
	b.ReportMetric(float64(pipeRSS)/(1<<20), "pipeline-peak-MiB")
}

// bareLadder runs one ffmpeg making every rung, with transcode's filter
// graph and encoder settings, and the AAC audio.
func bareLadder(b *testing.B, src, dir string, rungs []media.Rung) (time.Duration, int64) {
	args := []string{"-hide_banner", "-nostdin", "-v", "error", "-y", "-i", src, "-filter_complex", media.LadderGraph(rungs, "")}
	for i, r := range rungs {
		args = append(args, "-map", fmt.Sprintf("[o%d]", i))
		args = append(args, media.EncoderArgs(r, "60", "veryfast")...)
		args = append(args, "-f", "mpegts", filepath.Join(dir, "bare-"+r.Name+".ts"))
	}
	args = append(args, "-map", "0:a", "-c:a", "aac", "-b:a", "128k", "-f", "mpegts", filepath.Join(dir, "bare-audio.ts"))
	cmd := exec.Command("ffmpeg", args...)
	start := time.Now()
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("bare ffmpeg: %v %s", err, out)
	}
	return time.Since(start), cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss * 1024
}

// pipeline uploads the file and waits for the asset, sampling the RSS of
// every process of the stack (MinIO, segflow, functions, their ffmpegs).
func pipeline(b *testing.B, s *teststack.Stack, src string, i int) (time.Duration, int64) {
	key := fmt.Sprintf("uploads/bench-%d.mp4", i)
	stop := make(chan struct{})
	var peak int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(500 * time.Millisecond):
				peak = max(peak, proctree.RSS(s.Pid()))
			}
		}
	}()
	// The clock starts once the file is in the bucket, as bare ffmpeg's
	// starts with the file on disk: the upload is the user's transfer
	// (reported on its own), the rest is the pipeline's work.
	up := time.Now()
	s.Upload(key, src, nil)
	start := time.Now()
	b.ReportMetric(start.Sub(up).Seconds(), "upload-s")
	s.WaitStatus(assetOf(b, s, key), 30*time.Minute, asset.StateComplete)
	d := time.Since(start)
	close(stop)
	wg.Wait()
	return d, peak
}
