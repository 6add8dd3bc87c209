package media

import (
	"context"
	"crypto/md5"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
)

// fitRung reads the CRF for FitTarget (0.997, 25.23 dB) off the line
// through two trials in SSIM decibels, rounded down into [18, 34], and the
// bitrate off the line through their log bitrates.
func TestFitRung(t *testing.T) {
	tests := []struct {
		name       string
		a, b       trialPoint
		crf        int
		bitrate    float64
		bitrateTol float64
	}{
		// 30 dB at CRF 20, 20 dB at 28: 25.23 dB at 23.8.
		{"between", trialPoint{20, 0.999, 4e6}, trialPoint{28, 0.99, 1e6}, 23, 4e6 * math.Pow(0.25, 3.0/8), 1},
		// Past the target at both: as far as the line goes, then 34.
		{"easy", trialPoint{20, 0.9999, 2e5}, trialPoint{28, 0.9995, 1e5}, 34, 2e5 * math.Pow(0.5, 14.0/8), 1},
		// Short of it at both: the best the range allows.
		{"hopeless", trialPoint{20, 0.90, 9e7}, trialPoint{28, 0.80, 3e7}, 18, 9e7 * math.Pow(3, 2.0/8), 1},
		// No change between the trials (a still): the higher CRF.
		{"flat", trialPoint{20, 0.9991, 1e5}, trialPoint{28, 0.9991, 1e5}, 28, 1e5, 1},
	}
	for _, tc := range tests {
		f := fitRung(tc.a, tc.b)
		if f.crf != tc.crf || math.Abs(f.bitrate-tc.bitrate) > tc.bitrateTol {
			t.Errorf("%s: CRF %d at %.0f b/s; want %d at %.0f", tc.name, f.crf, f.bitrate, tc.crf, tc.bitrate)
		}
	}
}

// trialGroups keeps a size's two CRFs together, uses at most one group
// per size, and balances the groups by height (1080+360 against 720+480).
func TestTrialGroups(t *testing.T) {
	rungs := []Rung{{Width: 1920, Height: 1080}, {Width: 1280, Height: 720}, {Width: 854, Height: 480}, {Width: 640, Height: 360}}
	trial := trialRungs(rungs)
	for _, c := range []struct {
		cores int
		want  [][]int // heights per group
	}{
		{1, [][]int{{1080, 720, 480, 360}}},
		{2, [][]int{{1080, 360}, {720, 480}}},
		{3, [][]int{{1080}, {720}, {480, 360}}},
		{16, [][]int{{1080}, {720}, {480}, {360}}},
	} {
		groups := trialGroups(trial, c.cores)
		var got [][]int
		seen := map[string]int{}
		for _, g := range groups {
			var heights []int
			for i, r := range g {
				seen[r.Name]++
				if i%2 == 1 {
					if g[i-1].Height != r.Height || g[i-1].CRF != fitCRFs[0] || r.CRF != fitCRFs[1] {
						t.Errorf("%d cores: %s beside %s: a size's two trials split", c.cores, g[i-1].Name, r.Name)
					}
					heights = append(heights, r.Height)
				}
			}
			got = append(got, heights)
		}
		if fmt.Sprint(got) != fmt.Sprint(c.want) {
			t.Errorf("%d cores: groups by height %v, want %v", c.cores, got, c.want)
		}
		for _, r := range trial {
			if seen[r.Name] != 1 {
				t.Errorf("%d cores: %s in %d groups", c.cores, r.Name, seen[r.Name])
			}
		}
	}
}

// The trials are the same bytes and scores in one ffmpeg or one per size:
// the fit does not depend on the cores it ran on.
func TestTrialsIgnoreCores(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	sample := filepath.Join(dir, "sample.mkv")
	if out, err := exec.Command("ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2=s=640x360:r=30:d=2",
		"-c:v", "libx264", "-preset", "ultrafast", "-crf", "10", sample).CombinedOutput(); err != nil {
		t.Fatalf("sample: %v\n%s", err, out)
	}
	rungs := trialRungs([]Rung{{Width: 640, Height: 360, Bitrate: 700_000}, {Width: 426, Height: 240, Bitrate: 400_000}})
	var got [2][]string
	for i, cores := range []int{1, 2} {
		trials, err := runTrials(ctx, sample, filepath.Join(dir, strconv.Itoa(cores)), rungs, 30, cores)
		if err != nil {
			t.Fatal(err)
		}
		for k, tr := range trials {
			if tr.out.Rung.Name != rungs[k].Name {
				t.Fatalf("%d cores: trial %d is %s, want %s", cores, k, tr.out.Rung.Name, rungs[k].Name)
			}
			b, err := os.ReadFile(tr.out.Path)
			if err != nil {
				t.Fatal(err)
			}
			if tr.quality.Frames == 0 || tr.quality.SSIM <= 0 {
				t.Errorf("%d cores: %s scored %+v", cores, tr.out.Rung.Name, tr.quality)
			}
			got[i] = append(got[i], fmt.Sprintf("%s %x SSIM %v", tr.out.Rung.Name, md5.Sum(b), tr.quality.SSIM))
		}
	}
	if !slices.Equal(got[0], got[1]) {
		t.Errorf("one process %v, one per size %v", got[0], got[1])
	}
}
