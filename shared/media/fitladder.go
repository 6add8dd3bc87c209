package media

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// Ladders an upload can ask for.
const (
	// LadderFixed encodes every rung at its fixed bitrate, whatever the
	// picture shows (the default).
	LadderFixed = "fixed"
	// LadderContentAware fits each rung to the asset (FitLadder).
	LadderContentAware = "content-aware"
)

// FitTarget is the picture quality a content-aware rung aims at: mean
// SSIM 0.997 against the source at the rung's size (25.2 dB). The fixed
// ladder gives moderate-motion 1080p about that (0.9957-0.9969 on
// testsrc2); it gives a slide deck or a talking head 0.999+ and noisy high
// motion far less (0.57-0.95), spending the same bits on each.
const FitTarget = 0.997

// fitCRFs are the two trial qualities; a rung's CRF is read off the line
// through them (in SSIM decibels, which fall about linearly with CRF), so
// one encode of each is enough.
var fitCRFs = [2]int{20, 28}

// The CRF a rung may get: below 18 x264 spends bits no viewer sees;
// above 34 the picture breaks up even where SSIM forgives it.
const minCRF, maxCRF = 18, 34

// Trial windows: three of two seconds (a GOP each), spread over the file,
// so a title sequence or a quiet ending does not decide alone.
const (
	fitWindows      = 3
	fitWindowLength = 2.0
)

// FitOptions shape FitLadder.
type FitOptions struct {
	// Filter makes the picture the ladder is encoded from (the asset's
	// Picture.Filter: rotation, crop, tone map, deinterlace).
	Filter string
	// Dir is where the trial's files go (removed after).
	Dir string
	// FPS is the source frame rate (the GOP is two seconds of it).
	FPS float64
}

// FitLadder makes rungs content-aware for the file at src: it encodes a
// sample of the file (fitWindows windows) at each rung's size at two
// trial CRFs, measures each against the sample, and gives every H.264
// rung the CRF at which it reaches FitTarget (Rung.CRF), capped at the
// rung's fixed bitrate by x264's VBV against a scene the sample missed.
// Content that reaches the target for less than the fixed bitrate gets
// fewer bits; a rung whose target would cost more keeps the fixed
// bitrate (ABR, as the fixed ladder). Rungs of other codecs keep ABR, at
// their fixed bitrate scaled as the H.264 rung of the same size predicts.
// Deterministic for a given file: a split made again fits the same
// ladder.
func FitLadder(ctx context.Context, src string, duration float64, rungs []Rung, o FitOptions) ([]Rung, error) {
	if len(rungs) == 0 {
		return rungs, nil
	}
	if o.Dir != "" {
		if err := os.MkdirAll(o.Dir, 0o755); err != nil {
			return nil, err
		}
	}
	dir, err := os.MkdirTemp(o.Dir, "fit-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	sample := filepath.Join(dir, "sample.mkv")
	if err := cutSample(ctx, src, sample, duration, o.Filter); err != nil {
		return nil, fmt.Errorf("fit ladder %s: %w", src, err)
	}
	seconds, err := sampleSeconds(ctx, sample)
	if err != nil {
		return nil, fmt.Errorf("fit ladder %s: %w", src, err)
	}
	trials, err := runTrials(ctx, sample, dir, trialRungs(rungs), o.FPS, runtime.NumCPU())
	if err != nil {
		return nil, fmt.Errorf("fit ladder %s: %w", src, err)
	}
	fits := make(map[[2]int]fit)
	for i := 0; i < len(trials); i += 2 {
		a, b := trials[i], trials[i+1]
		fits[[2]int{a.out.Rung.Width, a.out.Rung.Height}] = fitRung(
			trialPoint{crf: fitCRFs[0], ssim: a.quality.SSIM, bitrate: float64(a.out.Bytes*8) / seconds},
			trialPoint{crf: fitCRFs[1], ssim: b.quality.SSIM, bitrate: float64(b.out.Bytes*8) / seconds})
	}
	fitted := make([]Rung, len(rungs))
	for i, r := range rungs {
		f := fits[[2]int{r.Width, r.Height}]
		switch {
		case f.bitrate >= float64(h264Bitrate(r)):
			// The target costs more than the fixed rate: the rung stays
			// fixed. Capped CRF at a binding cap spends more than ABR
			// (each segment's VBV starts with a full buffer) for no
			// better picture (noisy motion at 360p: +19% bytes, SSIM
			// 0.895 against 0.897).
		case r.Codec == H264 || r.Codec == "":
			r.CRF = f.crf
		default:
			// Another codec's rung follows H.264's prediction at the
			// same size: its share of the fixed bitrate.
			share := min(1, f.bitrate/float64(h264Bitrate(r)))
			r.Bitrate = max(int(float64(r.Bitrate)*share), r.Bitrate/20)
		}
		fitted[i] = r
	}
	return fitted, nil
}

// h264Bitrate is the fixed H.264 bitrate of r's size: r's own divided by
// its codec's efficiency.
func h264Bitrate(r Rung) int {
	return int(float64(r.Bitrate) / codecEfficiency[r.Codec])
}

// trialRungs are the H.264 rungs the trial encodes: one pair per size in
// the ladder (every codec's sizes are the same), at fitCRFs, capped at
// twice the fixed bitrate: enough to tell whether the target costs more
// than the fixed rate, and no more (uncapped, CRF 20 of noisy motion took
// 85 Mb/s at 1080p, and the trial 0.86 of the CPU of the asset's
// transcode).
func trialRungs(rungs []Rung) []Rung {
	var out []Rung
	seen := map[[2]int]bool{}
	for _, r := range rungs {
		size := [2]int{r.Width, r.Height}
		if seen[size] {
			continue
		}
		seen[size] = true
		base := Rung{Codec: H264, Width: r.Width, Height: r.Height, Bitrate: 2 * h264Bitrate(r), Profile: "high"}
		for _, crf := range fitCRFs {
			t := base
			t.Name, t.CRF = fmt.Sprintf("%dx%d-crf%d", r.Width, r.Height, crf), crf
			out = append(out, t)
		}
	}
	return out
}

// trial is one trial encode and its quality against the sample.
type trial struct {
	out     Output
	quality Quality
}

// runTrials encodes the sample at every trial rung and scores each, in as
// many ffmpeg processes as cores (at most one per size), each group
// scored as soon as it is encoded: each trial encoder runs on one thread
// (VBV over frame threads is not repeatable), and ffmpeg 5.1 runs every
// encoder of a process in its one main thread, so the trial in one
// process used 1.2 of 2 cores (60 s of 1080p: 37.1 s for 44.8 CPU-s). An
// encoder's output does not depend on its company, nor a score on the
// others, so the fit is the same on any number of cores. The trials come
// back in rungs' order.
func runTrials(ctx context.Context, sample, dir string, rungs []Rung, fps float64, cores int) ([]trial, error) {
	groups := trialGroups(rungs, cores)
	done := make([][]trial, len(groups))
	errs := make([]error, len(groups))
	var wg sync.WaitGroup
	for i, g := range groups {
		wg.Go(func() { done[i], errs[i] = runTrialGroup(ctx, sample, filepath.Join(dir, strconv.Itoa(i)), g, fps) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	byName := make(map[string]trial, len(rungs))
	for _, g := range done {
		for _, t := range g {
			byName[t.out.Rung.Name] = t
		}
	}
	ordered := make([]trial, len(rungs))
	for i, r := range rungs {
		t, ok := byName[r.Name]
		if !ok {
			return nil, fmt.Errorf("trial %s: no output", r.Name)
		}
		ordered[i] = t
	}
	return ordered, nil
}

// runTrialGroup encodes the sample at the group's rungs in one ffmpeg
// and scores them in another, in dir of its own.
func runTrialGroup(ctx context.Context, sample, dir string, rungs []Rung, fps float64) ([]trial, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	outs, err := Transcode(ctx, sample, dir, rungs, TranscodeOptions{FPS: fps})
	if err != nil {
		return nil, err
	}
	cmp := make([]Compared, len(outs))
	for i, out := range outs {
		cmp[i] = Compared{Path: out.Path, Width: out.Rung.Width, Height: out.Rung.Height}
	}
	q, err := Compare(ctx, sample, cmp, CompareOptions{StatsDir: dir, Step: 2})
	if err != nil {
		return nil, err
	}
	trials := make([]trial, len(outs))
	for i := range outs {
		trials[i] = trial{outs[i], q[i]}
	}
	return trials, nil
}

// trialGroups deals the trial's sizes (each with its two CRFs) into at
// most n groups of about equal work, the largest first, each to the
// lightest group. A size's work goes about with its height, not its
// pixels: one thread of x264 veryfast took 3.0, 2.1, 1.45 and 1.0 CPU-s
// for 2 s at 1080p, 720p, 480p and 360p.
func trialGroups(trial []Rung, n int) [][]Rung {
	var sizes [][]Rung
	for i := 0; i < len(trial); i += len(fitCRFs) {
		sizes = append(sizes, trial[i:i+len(fitCRFs)])
	}
	n = max(1, min(n, len(sizes)))
	slices.SortStableFunc(sizes, func(a, b []Rung) int { return b[0].Height - a[0].Height })
	groups := make([][]Rung, n)
	work := make([]int, n)
	for _, size := range sizes {
		g := 0
		for j := range work {
			if work[j] < work[g] {
				g = j
			}
		}
		groups[g] = append(groups[g], size...)
		work[g] += size[0].Height
	}
	return groups
}

// trialPoint is one trial encode of a size.
type trialPoint struct {
	crf     int
	ssim    float64
	bitrate float64 // bits per second
}

// fit is a size's result: the CRF to encode it at and the bitrate that
// CRF is expected to take.
type fit struct {
	crf     int
	bitrate float64
}

// fitRung reads the CRF that reaches FitTarget off the line through two
// trials (SSIM in decibels against CRF), rounded down (the better side of
// the target) and kept in [minCRF, maxCRF]; the bitrate it takes from the
// line through the trials' log bitrates (x264's bitrate roughly halves
// every six CRF).
func fitRung(a, b trialPoint) fit {
	qa, qb, qt := ssimDB(a.ssim), ssimDB(b.ssim), ssimDB(FitTarget)
	crf := float64(b.crf)
	if qa > qb {
		crf = float64(a.crf) + (qa-qt)*float64(b.crf-a.crf)/(qa-qb)
	}
	c := min(maxCRF, max(minCRF, int(math.Floor(crf))))
	bitrate := a.bitrate
	if a.bitrate > 0 && b.bitrate > 0 {
		slope := math.Log(b.bitrate/a.bitrate) / float64(b.crf-a.crf)
		bitrate = a.bitrate * math.Exp(slope*float64(c-a.crf))
	}
	return fit{crf: c, bitrate: bitrate}
}

// ssimDB is SSIM on a decibel scale, where equal steps are equal steps
// of what is lost (0.99 is 20 dB, 0.999 30 dB).
func ssimDB(s float64) float64 {
	if s >= 1 {
		return 100
	}
	return -10 * math.Log10(1-s)
}

// cutSample writes fitWindows windows of src, spread over its duration,
// as one near-lossless clip of the picture (filter applied): the trial's
// source and its reference (what the trials lose is measured against
// what they encoded, so near-lossless is enough). A file shorter than
// the windows gives its first fitWindows*fitWindowLength seconds.
func cutSample(ctx context.Context, src, out string, duration float64, filter string) error {
	var starts []float64
	if duration <= fitWindows*fitWindowLength*2 {
		starts = []float64{0}
	} else {
		for i := range fitWindows {
			starts = append(starts, (float64(i)+0.5)*duration/fitWindows-fitWindowLength/2)
		}
	}
	length := fitWindowLength
	if len(starts) == 1 {
		length = fitWindows * fitWindowLength
	}
	head := ""
	if filter != "" {
		head = filter + ","
	}
	args := []string{"-hide_banner", "-nostdin", "-v", "error", "-y"}
	var graph strings.Builder
	for i, s := range starts {
		args = append(args, "-ss", strconv.FormatFloat(s, 'f', 3, 64), "-t", strconv.FormatFloat(length, 'f', 3, 64), "-i", src)
		fmt.Fprintf(&graph, "[%d:v]%ssetpts=PTS-STARTPTS,format=yuv420p[w%d];", i, head, i)
	}
	for i := range starts {
		fmt.Fprintf(&graph, "[w%d]", i)
	}
	fmt.Fprintf(&graph, "concat=n=%d:v=1:a=0[v]", len(starts))
	args = append(args, "-filter_complex", graph.String(), "-map", "[v]",
		"-c:v", "libx264", "-preset", "ultrafast", "-crf", "10", "-threads", "2", out)
	_, err := run(ctx, "ffmpeg", args...)
	return err
}

// sampleSeconds is the sample's length, which the trials' bytes are
// divided by.
func sampleSeconds(ctx context.Context, path string) (float64, error) {
	info, err := Probe(ctx, path)
	if err != nil {
		return 0, err
	}
	if info.Duration <= 0 {
		return 0, fmt.Errorf("sample %s: no duration", path)
	}
	return info.Duration, nil
}
