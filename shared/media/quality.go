package media

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

var psnrAverage = regexp.MustCompile(`PSNR y:[0-9.inf]+ u:[0-9.inf]+ v:[0-9.inf]+ average:([0-9.inf]+)`)

// PSNR compares distorted against reference (scaled to the distorted size
// first, both from their own start) and returns the average PSNR in dB.
func PSNR(ctx context.Context, reference, distorted string, width, height int) (float64, error) {
	graph := fmt.Sprintf("[0:v]setpts=PTS-STARTPTS[d];[1:v]scale=%d:%d:flags=bicubic,setpts=PTS-STARTPTS[r];[d][r]psnr", width, height)
	// The summary is an info-level line on stderr.
	_, stderr, err := runOutput(ctx, "ffmpeg", "-hide_banner", "-nostdin", "-i", distorted, "-i", reference,
		"-filter_complex", graph, "-f", "null", "-")
	if err != nil {
		return 0, fmt.Errorf("psnr: %w", err)
	}
	m := psnrAverage.FindStringSubmatch(stderr)
	if m == nil {
		return 0, fmt.Errorf("psnr: no summary in ffmpeg output")
	}
	if m[1] == "inf" {
		return 100, nil
	}
	return strconv.ParseFloat(m[1], 64)
}

// Quality is how close a rendition's picture is to its source's, frame by
// frame, with the source scaled to the rendition's size first: what the
// encode lost, not what the smaller size did.
type Quality struct {
	// SSIM is the mean over frames of ffmpeg's ssim "All" (luma and
	// chroma weighted 4:1:1), 1 for identical pictures.
	SSIM float64 `json:"ssim"`
	// MinSSIM is the worst frame's: a flash or a scene cut the encoder
	// starved shows here before it moves the mean.
	MinSSIM float64 `json:"minSSIM"`
	// PSNR is in dB from the mean squared error over all frames (how
	// ffmpeg's own summary pools it), capped at 100 for identical ones.
	PSNR   float64 `json:"psnr"`
	Frames int     `json:"frames"`
}

// Compared is one rendition to compare with the source: a file ffmpeg
// decodes (a CMAF segment with its init segment in front) and the size it
// was made at.
type Compared struct {
	Path          string
	Width, Height int
}

// SpotSeconds and SpotStep are how the qa stage scores a segment unless
// told otherwise: its first 2 s (a whole GOP of every rung at segflow's
// keyframe interval, so I, P and B frames alike), every second frame.
// That costs 0.25 of the transcode's CPU (BenchmarkQAVsTranscode, 1080p
// ladder) where scoring all of every segment cost 0.76.
const (
	SpotSeconds = 2.0
	SpotStep    = 2
)

// CompareOptions shape Compare.
type CompareOptions struct {
	// Filter makes the source the picture the renditions were made from
	// (what transcode applied: Manifest.PictureOf).
	Filter string
	// Seconds, when set, scores only the first Seconds of each side, and
	// decodes no further: a spot check of one GOP (every rung's segment
	// starts with one) for a fraction of the cost.
	Seconds float64
	// Step, when above 1, scores every Step-th frame of what is decoded.
	Step int
	// StatsDir is where ffmpeg runs and writes its per-frame stats.
	StatsDir string
}

// Compare measures each rendition against source in one ffmpeg: the
// source is decoded once, made the viewer's picture by o.Filter, split,
// and scaled to each rendition's size the way transcode scales (bicubic),
// so frames pair one to one. Both sides count from their first frame.
func Compare(ctx context.Context, source string, renditions []Compared, o CompareOptions) ([]Quality, error) {
	if len(renditions) == 0 {
		return nil, nil
	}
	// ffmpeg runs in StatsDir: the inputs by absolute path.
	source, err := filepath.Abs(source)
	if err != nil {
		return nil, err
	}
	// The same frames of both sides: numbered from each one's first.
	pick := "setpts=PTS-STARTPTS"
	if o.Step > 1 {
		pick += fmt.Sprintf(",select=not(mod(n\\,%d))", o.Step)
	}
	var limit []string
	if o.Seconds > 0 {
		limit = []string{"-t", strconv.FormatFloat(o.Seconds, 'f', 3, 64)}
	}
	var graph strings.Builder
	head := "[0:v]"
	if o.Filter != "" {
		head += o.Filter + ","
	}
	fmt.Fprintf(&graph, "%s%s,split=%d", head, pick, len(renditions))
	for i := range renditions {
		fmt.Fprintf(&graph, "[s%d]", i)
	}
	args := append(append([]string{"-hide_banner", "-nostdin", "-v", "error", "-copyts"}, limit...), "-i", source)
	for _, r := range renditions {
		p, err := filepath.Abs(r.Path)
		if err != nil {
			return nil, err
		}
		args = append(append(args, limit...), "-i", p)
	}
	var maps []string
	for i, r := range renditions {
		ssim, psnr := statsName("ssim", i), statsName("psnr", i)
		fmt.Fprintf(&graph, ";[s%d]scale=%d:%d:flags=bicubic,setsar=1,format=yuv420p,split[ra%d][rb%d]", i, r.Width, r.Height, i, i)
		fmt.Fprintf(&graph, ";[%d:v]%s,setsar=1,format=yuv420p,split[da%d][db%d]", i+1, pick, i, i)
		fmt.Fprintf(&graph, ";[da%d][ra%d]ssim=stats_file=%s[q%d];[db%d][rb%d]psnr=stats_file=%s[p%d]", i, i, ssim, i, i, i, psnr, i)
		maps = append(maps, "-map", fmt.Sprintf("[q%d]", i), "-map", fmt.Sprintf("[p%d]", i))
	}
	args = append(append(append(args, "-filter_complex", graph.String()), maps...), "-f", "null", "-")
	// The stats files are named relative to StatsDir, where ffmpeg runs.
	if _, _, err := runIn(ctx, o.StatsDir, "ffmpeg", args...); err != nil {
		return nil, fmt.Errorf("compare %s: %w", source, err)
	}
	out := make([]Quality, len(renditions))
	for i := range renditions {
		q, err := readStats(filepath.Join(o.StatsDir, statsName("ssim", i)), filepath.Join(o.StatsDir, statsName("psnr", i)))
		if err != nil {
			return nil, fmt.Errorf("compare %s with %s: %w", source, renditions[i].Path, err)
		}
		out[i] = q
	}
	return out, nil
}

func statsName(kind string, i int) string { return fmt.Sprintf("%s-%d.log", kind, i) }

// readStats pools the per-frame lines of the ssim filter ("n:1 Y:.. U:..
// V:.. All:0.98 (17.2)") and the psnr filter ("n:1 mse_avg:0.52 ...").
func readStats(ssimLog, psnrLog string) (Quality, error) {
	q := Quality{MinSSIM: 1}
	var ssimSum float64
	err := eachStat(ssimLog, "All", func(v float64) {
		ssimSum += v
		q.MinSSIM = min(q.MinSSIM, v)
		q.Frames++
	})
	if err != nil {
		return q, err
	}
	var mseSum float64
	frames := 0
	if err := eachStat(psnrLog, "mse_avg", func(v float64) { mseSum += v; frames++ }); err != nil {
		return q, err
	}
	if q.Frames == 0 || frames != q.Frames {
		return q, fmt.Errorf("%d frames with SSIM, %d with PSNR: the pictures did not pair", q.Frames, frames)
	}
	q.SSIM = ssimSum / float64(q.Frames)
	q.PSNR = 100
	if mse := mseSum / float64(frames); mse > 0 {
		q.PSNR = min(100, 10*math.Log10(255*255/mse))
	}
	return q, nil
}

// eachStat calls f with the value of field on every line of a stats file.
func eachStat(path, field string, f func(float64)) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	for _, line := range strings.Split(string(b), "\n") {
		for _, kv := range strings.Fields(line) {
			k, v, ok := strings.Cut(kv, ":")
			if !ok || k != field {
				continue
			}
			x, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return fmt.Errorf("%s: %q: %w", path, line, err)
			}
			f(x)
		}
	}
	return nil
}
