package media

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"os"
)

// SidecarVTT turns a sidecar subtitle file (format "srt" or "vtt") into
// the WebVTT an HLS subtitles rendition carries, its cues timed from the
// asset's first frame: X-TIMESTAMP-MAP ties cue time zero to origin, the
// first frame's timestamp (seconds) in the renditions' MPEG-TS. The
// format is named, never guessed: a text file is read as subtitles or
// refused, whatever it holds.
func SidecarVTT(ctx context.Context, in, format, out string, origin float64) error {
	demuxer := map[string]string{"srt": "srt", "vtt": "webvtt"}[format]
	if demuxer == "" {
		return fmt.Errorf("subtitles %s: format %q: want srt or vtt", in, format)
	}
	if err := ffmpeg(ctx, "-f", demuxer, "-i", in, "-map", "0:s:0", "-c:s", "webvtt", "-f", "webvtt", out); err != nil {
		return fmt.Errorf("subtitles %s: %w: %v", in, ErrNotMedia, err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		return err
	}
	if !bytes.Contains(b, []byte("-->")) {
		return fmt.Errorf("subtitles %s: %w: no cues", in, ErrNotMedia)
	}
	header := fmt.Sprintf("WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:%d,LOCAL:00:00:00.000\n", int64(math.Round(origin*90000)))
	b = append([]byte(header), bytes.TrimPrefix(b, []byte("WEBVTT\n"))...)
	return os.WriteFile(out, b, 0o644)
}
