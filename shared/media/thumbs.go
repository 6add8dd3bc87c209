package media

import (
	"context"
	"fmt"
	"math"
	"os"
	"strconv"
)

// Thumbnail writes one JPEG of the frame at offset seconds into the
// segment file, scaled to width (height follows the display aspect).
// The frames before offset are decoded and dropped ahead of the picture's
// filters: a seek in MPEG-TS looks for a keyframe before the target by
// bisecting the file, and in a segment that is one GOP (a 2 s first
// segment of a file with 2 s keyframes) it lands past the only one and
// leaves nothing to decode.
func Thumbnail(ctx context.Context, in, out string, offset float64, width int, pic Picture) error {
	return still(ctx, in, out, width, "-i", in,
		"-vf", "trim=start="+strconv.FormatFloat(offset, 'f', 3, 64)+","+pic.head()+fmt.Sprintf("scale='min(%d,iw)':-2", width))
}

// CoverArt writes a file's attached picture (Info.CoverArt: an MP3's or
// M4A's album art) as a JPEG no wider than width. No seek: the picture
// comes once, before the first audio packet.
func CoverArt(ctx context.Context, in, out string, width int) error {
	return still(ctx, in, out, width, "-i", in, "-map", "0:v:0", "-fps_mode", "passthrough",
		"-vf", fmt.Sprintf("scale='min(%d,iw)':-2", width))
}

// still runs ffmpeg with input args to write one JPEG, and fails when it
// wrote none: ffmpeg exits 0 when a seek or a map leaves it no frame.
func still(ctx context.Context, in, out string, width int, args ...string) error {
	if err := ffmpeg(ctx, append(args, "-frames:v", "1", "-q:v", "3", "-update", "1", out)...); err != nil {
		return fmt.Errorf("still of %s: %w", in, err)
	}
	if st, err := os.Stat(out); err != nil || st.Size() == 0 {
		return fmt.Errorf("still of %s: no frame to take", in)
	}
	return nil
}

// TileStrip writes a horizontal strip of thumbnails taken every interval
// seconds of a segment of the given duration, each tileW x tileH, and
// returns how many tiles it holds.
func TileStrip(ctx context.Context, in, out string, duration, interval float64, tileW, tileH int, pic Picture) (int, error) {
	n := int(math.Ceil(duration/interval - 1e-6))
	if n < 1 {
		n = 1
	}
	vf := fmt.Sprintf("fps=1/%g:start_time=0:round=down,scale=%d:%d:force_original_aspect_ratio=decrease,pad=%d:%d:(ow-iw)/2:(oh-ih)/2,setsar=1,tile=%dx1",
		interval, tileW, tileH, tileW, tileH, n)
	// fps counts from the input's own start, which the segment keeps from
	// the whole asset; setpts puts the segment at zero first.
	if err := ffmpeg(ctx, "-i", in, "-vf", "setpts=PTS-STARTPTS,"+pic.head()+vf, "-frames:v", "1", "-q:v", "4", "-update", "1", out); err != nil {
		return 0, fmt.Errorf("tiles %s: %w", in, err)
	}
	return n, nil
}
