package tagging

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// OCR reads on-screen text with tesseract (Debian's tesseract-ocr and its
// English model) from two frames a second, at most 960 pixels wide.
type OCR struct {
	// MinConfidence drops words tesseract is less sure of (0-100; 60).
	MinConfidence float64
}

// Name implements Tagger.
func (OCR) Name() string { return "ocr" }

// Tag implements Tagger.
func (o OCR) Tag(ctx context.Context, in Input) ([]Tag, error) {
	if in.AudioOnly {
		return nil, nil
	}
	if o.MinConfidence == 0 {
		o.MinConfidence = 60
	}
	pattern := filepath.Join(in.WorkDir, "ocr-%04d.png")
	if _, err := ffmpegLog(ctx, "-i", in.Path, "-map", "0:v:0", "-vf",
		"setpts=PTS-STARTPTS,"+in.upright()+"fps=2:start_time=0,scale='min(960,iw)':-2,format=gray", pattern); err != nil {
		return nil, errorf("ocr", "frames: %v", err)
	}
	frames, _ := filepath.Glob(filepath.Join(in.WorkDir, "ocr-*.png"))
	sort.Strings(frames)
	const step = 0.5
	var tags []Tag
	var cur *Tag
	var confSum float64
	var confN int
	flush := func() {
		if cur != nil {
			cur.Confidence = round3(confSum / float64(confN) / 100)
			tags = append(tags, *cur)
			cur = nil
		}
	}
	for i, f := range frames {
		text, conf, err := tesseract(ctx, f, o.MinConfidence)
		if err != nil {
			return nil, errorf("ocr", "%v", err)
		}
		t := float64(i) * step
		switch {
		case text == "":
			flush()
		case cur != nil && cur.Label == text:
			cur.End = min(in.Duration, t+step)
			confSum += conf
			confN++
		default:
			flush()
			cur = &Tag{Kind: "text", Label: text, Start: t, End: min(in.Duration, t+step)}
			confSum, confN = conf, 1
		}
	}
	flush()
	return tags, nil
}

// tesseract returns the words of an image it is sure enough of, joined,
// and their mean confidence.
func tesseract(ctx context.Context, img string, minConf float64) (string, float64, error) {
	cmd := exec.CommandContext(ctx, "tesseract", img, "stdout", "--psm", "11", "-l", "eng", "tsv")
	// One OpenMP thread: tesseract's spinning worker threads cost five
	// times the CPU on a small machine (measured: 0.27 s vs 1.5 s a frame),
	// and segments already run in parallel.
	cmd.Env = append(os.Environ(), "OMP_THREAD_LIMIT=1")
	out, err := cmd.Output()
	if err != nil {
		return "", 0, fmt.Errorf("tesseract %s: %w", filepath.Base(img), err)
	}
	var words []string
	var sum float64
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		f := strings.Split(sc.Text(), "\t")
		if len(f) < 12 || f[0] != "5" {
			continue
		}
		conf, _ := strconv.ParseFloat(f[10], 64)
		w := strings.TrimSpace(f[11])
		if conf < minConf || w == "" {
			continue
		}
		words = append(words, w)
		sum += conf
	}
	if len(words) == 0 {
		return "", 0, nil
	}
	return strings.Join(words, " "), sum / float64(len(words)), nil
}
