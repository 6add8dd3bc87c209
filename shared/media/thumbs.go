package media

import (
	"context"
	"fmt"
	"math"
	"strconv"
)

// Thumbnail writes one JPEG of the frame at offset seconds into the file,
// scaled to width (height follows the display aspect).
func Thumbnail(ctx context.Context, in, out string, offset float64, width, rotation int) error {
	err := ffmpeg(ctx, "-ss", strconv.FormatFloat(offset, 'f', 3, 64), "-i", in, "-frames:v", "1",
		"-vf", upright(rotation)+fmt.Sprintf("scale=%d:-2", width), "-q:v", "3", "-update", "1", out)
	if err != nil {
		return fmt.Errorf("thumbnail %s: %w", in, err)
	}
	return nil
}

// TileStrip writes a horizontal strip of thumbnails taken every interval
// seconds of a segment of the given duration, each tileW x tileH, and
// returns how many tiles it holds.
func TileStrip(ctx context.Context, in, out string, duration, interval float64, tileW, tileH, rotation int) (int, error) {
	n := int(math.Ceil(duration/interval - 1e-6))
	if n < 1 {
		n = 1
	}
	vf := fmt.Sprintf("fps=1/%g:start_time=0:round=down,scale=%d:%d:force_original_aspect_ratio=decrease,pad=%d:%d:(ow-iw)/2:(oh-ih)/2,setsar=1,tile=%dx1",
		interval, tileW, tileH, tileW, tileH, n)
	// fps counts from the input's own start, which the segment keeps from
	// the whole asset; setpts puts the segment at zero first.
	if err := ffmpeg(ctx, "-i", in, "-vf", "setpts=PTS-STARTPTS,"+upright(rotation)+vf, "-frames:v", "1", "-q:v", "4", "-update", "1", out); err != nil {
		return 0, fmt.Errorf("tiles %s: %w", in, err)
	}
	return n, nil
}

// upright is RotateFilter as the head of a filter chain ("" or "f,").
func upright(rotation int) string {
	if f := RotateFilter(rotation); f != "" {
		return f + ","
	}
	return ""
}
