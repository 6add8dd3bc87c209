package media

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// WatermarkOptions describe an overlay.
type WatermarkOptions struct {
	Text     string  // drawn with DejaVu Sans Bold
	Image    string  // path of a PNG; used when Text is empty
	Position string  // top-left, top-right, bottom-left, bottom-right, center
	Opacity  float64 // 0..1
	FPS      float64
	// FontFile overrides the font (default: Debian's fonts-dejavu-core).
	FontFile string
	// Live and First (a file's first segment) encode for latency (see
	// encoderThreads).
	// Last (one of a file's last segments, InTail) gets First's threads.
	Live, First, Last bool
	// Picture is applied first (upright, deinterlaced, ...): the mark
	// goes where the viewer sees that corner.
	Picture Picture
}

// DefaultFont ships with Debian's fonts-dejavu-core (scripts/setup.sh).
const DefaultFont = "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"

var positions = map[string][2]string{
	// x, y in terms of the frame (W,H) and the mark (w,h), with a margin of
	// 1/40 of the frame height.
	"top-left":     {"H/40", "H/40"},
	"top-right":    {"W-w-H/40", "H/40"},
	"bottom-left":  {"H/40", "H-h-H/40"},
	"bottom-right": {"W-w-H/40", "H-h-H/40"},
	"center":       {"(W-w)/2", "(H-h)/2"},
}

// ValidPosition checks a watermark position name.
func ValidPosition(p string) error {
	if _, ok := positions[p]; !ok {
		return fmt.Errorf("watermark position %q: want top-left, top-right, bottom-left, bottom-right or center", p)
	}
	return nil
}

// Watermark burns a text or image overlay into a segment, re-encoding the
// video at high quality (it is re-encoded again by the ladder) and copying
// the audio, keeping the segment's timestamps.
func Watermark(ctx context.Context, in, out string, o WatermarkOptions) error {
	if err := ValidPosition(o.Position); err != nil {
		return err
	}
	if o.Opacity <= 0 || o.Opacity > 1 {
		o.Opacity = 1
	}
	if o.FontFile == "" {
		o.FontFile = DefaultFont
	}
	pos := positions[o.Position]
	op := strconv.FormatFloat(o.Opacity, 'f', 3, 64)
	args := []string{"-copyts", "-i", in}
	var graph string
	switch {
	case o.Text != "":
		// The text goes through a file: no escaping rules to get wrong; and
		// expansion=none prints it as written (no %{localtime}, %{eif}).
		tf := filepath.Join(filepath.Dir(out), "watermark.txt")
		if err := os.WriteFile(tf, []byte(o.Text), 0o644); err != nil {
			return err
		}
		x := map[string]string{"W": "w", "H": "h", "w": "text_w", "h": "text_h"}
		graph = fmt.Sprintf("[0:v]drawtext=fontfile=%s:textfile=%s:expansion=none:fontsize=h/16:fontcolor=white@%s:borderw=2:bordercolor=black@%s:x=%s:y=%s[v]",
			o.FontFile, tf, op, op, subst(pos[0], x), subst(pos[1], x))
	case o.Image != "":
		args = append(args, "-i", o.Image)
		graph = fmt.Sprintf("[1:v]format=rgba,colorchannelmixer=aa=%s[wm];[wm][0:v]scale2ref=w=oh*mdar:h=ih/8[wm2][base];[base][wm2]overlay=x=%s:y=%s:format=auto[v]",
			op, subst(pos[0], map[string]string{"W": "main_w", "H": "main_h", "w": "overlay_w", "h": "overlay_h"}),
			subst(pos[1], map[string]string{"W": "main_w", "H": "main_h", "w": "overlay_w", "h": "overlay_h"}))
	default:
		return fmt.Errorf("watermark: neither text nor image")
	}
	pic, err := withLeadFill(ctx, in, o.FPS, o.Picture.Filter())
	if err != nil {
		return fmt.Errorf("watermark %s: %w", in, err)
	}
	if pic != "" {
		graph = "[0:v]" + pic + "[up];" + strings.ReplaceAll(graph, "[0:v]", "[up]")
	}
	gop := strconv.Itoa(int(max(1, o.FPS*2+0.5)))
	args = append(args, "-filter_complex", graph, "-map", "[v]", "-map", "0:a?",
		"-c:v", "libx264", "-preset", "veryfast", "-crf", "16", "-g", gop, "-keyint_min", gop, "-sc_threshold", "0")
	args = append(args, encoderThreads(o.Live || o.First || o.Last)...)
	args = append(args, "-enc_time_base", "-1", "-fps_mode", "passthrough", "-c:a", "copy",
		"-muxdelay", "0", "-muxpreload", "0", "-f", "mpegts", out)
	if err := ffmpeg(ctx, args...); err != nil {
		return fmt.Errorf("watermark %s: %w", in, err)
	}
	return nil
}

// subst rewrites single-letter variables of a position expression.
func subst(expr string, vars map[string]string) string {
	out := make([]byte, 0, len(expr)*2)
	for i := 0; i < len(expr); i++ {
		if v, ok := vars[string(expr[i])]; ok {
			out = append(out, v...)
			continue
		}
		out = append(out, expr[i])
	}
	return string(out)
}
