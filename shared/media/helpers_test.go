package media_test

import (
	"context"
	"fmt"
	"math"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/segflow/segflow/shared/media"
	"github.com/segflow/segflow/shared/media/mediatest"
)

func runFF(args ...string) error {
	out, err := exec.Command("ffmpeg", append([]string{"-hide_banner", "-nostdin", "-v", "error", "-y"}, args...)...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ffmpeg: %v: %s", err, out)
	}
	return nil
}

func ftoa(f float64) string { return strconv.FormatFloat(f, 'f', 3, 64) }

// splitClip makes clip in dir and splits it at target: the source file,
// its probe and its segments.
func splitClip(t *testing.T, dir string, clip mediatest.Clip, target time.Duration) (string, *media.Info, []media.Segment) {
	t.Helper()
	ctx := context.Background()
	src := filepath.Join(dir, "src.mp4")
	mediatest.Make(t, src, clip)
	info, err := media.Probe(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	segs, err := media.Split(ctx, src, filepath.Join(dir, "source"), info, media.SplitOptions{Target: target})
	if err != nil {
		t.Fatal(err)
	}
	return src, info, segs
}

// keyframes reports any timestamp step other than one frame and returns
// the keyframe times from the first packet, "0.000,2.000,...".
func keyframes(t *testing.T, what string, ps []mediatest.Packet, fps float64) string {
	t.Helper()
	var keys []string
	for i, p := range ps {
		if i > 0 {
			if d := p.PTS - ps[i-1].PTS; math.Abs(d-1.0/fps) > 0.0015 {
				t.Errorf("%s: timestamp jump of %.4fs at %.3f", what, d, p.PTS)
			}
		}
		if p.Key {
			keys = append(keys, ftoa(p.PTS-ps[0].PTS))
		}
	}
	return strings.Join(keys, ",")
}

// transcodeAll transcodes every segment with o into dir/out/<index>/ and
// returns each output's files by rendition name, in segment order.
func transcodeAll(t *testing.T, dir string, segs []media.Segment, rungs []media.Rung, o media.TranscodeOptions) map[string][]string {
	t.Helper()
	files := map[string][]string{}
	for _, s := range segs {
		outs, err := media.Transcode(context.Background(), s.Path, filepath.Join(dir, "out", strconv.Itoa(s.Index)), rungs, o)
		if err != nil {
			t.Fatal(err)
		}
		for _, out := range outs {
			files[out.Rung.Name] = append(files[out.Rung.Name], out.Path)
		}
	}
	return files
}
