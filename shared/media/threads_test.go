package media_test

import (
	"context"
	"fmt"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/segflow/segflow/shared/media"
	"github.com/segflow/segflow/shared/media/mediatest"
)

// TestTranscodeBytesIgnoreCores makes one file segment's H.264 ladder on a
// machine of one core and on one of all this machine's cores (ffmpeg
// started from a thread whose CPU affinity it inherits). A retried or
// duplicated event may run on another machine, and it must rewrite the
// same bytes; with encoder threads that follow the core count it does not.
func TestTranscodeBytesIgnoreCores(t *testing.T) {
	if runtime.NumCPU() < 2 {
		t.Skip("needs two cores to compare with one")
	}
	dir := t.TempDir()
	_, info, segs := splitClip(t, dir, mediatest.Clip{Seconds: 4, Width: 1280, Height: 720, FPS: 30}, 4*time.Second)
	rungs, err := media.Ladder(info.Video, nil)
	if err != nil {
		t.Fatal(err)
	}
	transcode := func(cores int) []media.Output {
		type result struct {
			outs []media.Output
			err  error
		}
		done := make(chan result)
		go func() {
			// The thread stays locked and ends with the goroutine, so
			// the narrowed affinity goes nowhere else.
			runtime.LockOSThread()
			var set unix.CPUSet
			for c := range cores {
				set.Set(c)
			}
			if err := unix.SchedSetaffinity(0, &set); err != nil {
				done <- result{err: err}
				return
			}
			outs, err := media.Transcode(context.Background(), segs[0].Path,
				filepath.Join(dir, fmt.Sprintf("cores-%d", cores)), rungs, media.TranscodeOptions{FPS: info.Video.FPS})
			done <- result{outs, err}
		}()
		r := <-done
		if r.err != nil {
			t.Fatalf("%d cores: %v", cores, r.err)
		}
		return r.outs
	}
	one, all := transcode(1), transcode(runtime.NumCPU())
	for i := range one {
		if !sameBytes(t, one[i].Path, all[i].Path) {
			t.Errorf("%s: one core and %d cores wrote different bytes", one[i].Rung.Name, runtime.NumCPU())
		}
	}
}
