package media_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/segflow/segflow/shared/media"
	"github.com/segflow/segflow/shared/media/mediatest"
	"github.com/segflow/segflow/shared/testenv"
)

// TestEncodesIgnoreCores encodes one segment (its H.264 ladder, an H.265
// rung, its watermark; as a file's segment and as a live one) as on a
// machine of one core and as on one of manyCores. A retried or duplicated
// event may run on another machine, and it must rewrite the same bytes;
// with encoder threads that follow the core count it does not. It runs on
// any machine, one core included: ffmpeg is told the larger count.
func TestEncodesIgnoreCores(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	_, info, segs := splitClip(t, dir, mediatest.Clip{Seconds: 4, Width: 1280, Height: 720, FPS: 30}, 4*time.Second)
	h264, err := media.Ladder(info.Video, nil)
	if err != nil {
		t.Fatal(err)
	}
	h265, err := media.Ladder(info.Video, []media.Codec{media.H265})
	if err != nil {
		t.Fatal(err)
	}
	// A content-aware ladder's rungs: CRF capped by VBV, on a file's
	// first segment (which spreads other rungs over frame threads).
	capped := make([]media.Rung, len(h264))
	for i, r := range h264 {
		r.CRF = 23
		capped[i] = r
	}
	ladder := func(rungs []media.Rung, live bool) func(out string) ([]string, error) {
		return func(out string) ([]string, error) {
			outs, err := media.Transcode(ctx, segs[0].Path, out, rungs, media.TranscodeOptions{FPS: info.Video.FPS, Live: live, First: rungs[0].CRF > 0})
			paths := make([]string, len(outs))
			for i, o := range outs {
				paths[i] = o.Path
			}
			return paths, err
		}
	}
	watermark := func(live bool) func(out string) ([]string, error) {
		return func(out string) ([]string, error) {
			if err := os.MkdirAll(out, 0o755); err != nil {
				return nil, err
			}
			path := filepath.Join(out, "marked.ts")
			return []string{path}, media.Watermark(ctx, segs[0].Path, path,
				media.WatermarkOptions{Text: "segflow", Position: "top-right", FPS: info.Video.FPS, Live: live})
		}
	}
	tests := []struct {
		name string
		// encode writes its outputs under out and returns their paths.
		encode func(out string) ([]string, error)
	}{
		{"ladder", ladder(h264, false)},
		{"h265", ladder(h265[:1], false)},
		{"content-aware", ladder(capped, false)},
		{"watermark", watermark(false)},
		{"live ladder", ladder(h264, true)},
		{"live h265", ladder(h265[:1], true)},
		{"live watermark", watermark(true)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var paths [2][]string
			err := onCores(1, func() error {
				var err error
				paths[0], err = tc.encode(filepath.Join(dir, tc.name, "cores-1"))
				return err
			})
			if err != nil {
				t.Fatalf("one core: %v", err)
			}
			err = onManyCores(t, func() error {
				var err error
				paths[1], err = tc.encode(filepath.Join(dir, tc.name, fmt.Sprintf("cores-%d", manyCores)))
				return err
			})
			if err != nil {
				t.Fatalf("%d cores: %v", manyCores, err)
			}
			for i := range paths[0] {
				if !testenv.SameFile(t, paths[0][i], paths[1][i]) {
					t.Errorf("%s: one core and %d cores wrote different bytes", filepath.Base(paths[0][i]), manyCores)
				}
			}
		})
	}
}

// manyCores is the larger machine: more than this one has, most likely.
const manyCores = 16

// onManyCores runs fn as on a machine of manyCores: the ffmpeg it runs is
// a wrapper first in PATH that adds -cpucount (which ffmpeg's own thread
// counts follow), with every CPU of this machine allowed.
func onManyCores(t *testing.T, fn func() error) error {
	real, err := exec.LookPath("ffmpeg")
	if err != nil {
		t.Fatal(err)
	}
	bin := t.TempDir()
	wrapper := fmt.Sprintf("#!/bin/sh\nexec %s -cpucount %d \"$@\"\n", real, manyCores)
	if err := os.WriteFile(filepath.Join(bin, "ffmpeg"), []byte(wrapper), 0o755); err != nil {
		t.Fatal(err)
	}
	path := os.Getenv("PATH")
	os.Setenv("PATH", bin+string(os.PathListSeparator)+path)
	defer os.Setenv("PATH", path)
	return onCores(runtime.NumCPU(), fn)
}

// onCores runs fn on a thread allowed only the first n CPUs; the
// processes it starts inherit that.
func onCores(n int, fn func() error) error {
	done := make(chan error)
	go func() {
		// The thread stays locked and ends with the goroutine, so the
		// narrowed affinity goes nowhere else.
		runtime.LockOSThread()
		var set unix.CPUSet
		for c := range n {
			set.Set(c)
		}
		if err := unix.SchedSetaffinity(0, &set); err != nil {
			done <- err
			return
		}
		done <- fn()
	}()
	return <-done
}
