package mediatest

import (
	"context"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/segflow/segflow/shared/media"
)

// ChildCPU is the CPU time of every finished child process so far (the
// ffmpeg, tesseract and pocketsphinx runs a benchmark makes): benchmarks
// report the difference across what they measure.
func ChildCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_CHILDREN, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// Segmented makes clip c at dir/src.mp4 and cuts it as split does, for
// benchmarks that compare per-segment work with the transcode of the same
// segments: the probe, the source segments and the default ladder.
func Segmented(tb testing.TB, dir string, c Clip) (*media.Info, []media.Segment, []media.Rung) {
	tb.Helper()
	ctx := context.Background()
	src := filepath.Join(dir, "src.mp4")
	Make(tb, src, c)
	info, err := media.Probe(ctx, src)
	if err != nil {
		tb.Fatal(err)
	}
	segs, err := media.Split(ctx, src, filepath.Join(dir, "segs"), info, media.SplitOptions{})
	if err != nil {
		tb.Fatal(err)
	}
	rungs, _ := media.Ladder(info.Video, nil)
	return info, segs, rungs
}
