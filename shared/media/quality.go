package media

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
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
