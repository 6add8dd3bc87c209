package media

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// leadMax is the longest first segment a stream copy may give: a source
// whose first keyframe from leadCut on is later than this (x264's default
// keyint of 250 frames is 8-10 s) has its first segment re-encoded into
// leadCut pieces (splitLead), so that first playable does not wait for a
// whole long GOP to be transcoded in every rung.
const leadMax = 3 * time.Second

// leadable says whether a source's first segment may be re-encoded into
// pieces: H.264 in 8-bit 4:2:0, progressive, which x264 remakes with no
// change a rendition could show (a 10-bit, HDR or 4:2:2 source would need
// its own encoder settings, and interlaced fields would need field coding).
func leadable(v *VideoStream) bool {
	return v != nil && v.Codec == "h264" && !v.Interlaced && (v.PixFmt == "yuv420p" || v.PixFmt == "yuvj420p")
}

// splitLead re-encodes segment seg (a first segment longer than leadMax)
// into pieces leadCut long, written into dir and handed to onSegments as
// they are final, numbered from 0. The video is x264 at near-lossless
// quality with a keyframe forced at each cut; the split's AAC is copied,
// so the audio has no seam where the stream copy takes over; -copyts and
// passthrough timing keep every frame at its time on the asset timeline.
// The last piece ends where seg ends.
func splitLead(ctx context.Context, seg Segment, dir string, frame float64, onSegments func([]Segment) error) ([]Segment, error) {
	var cuts []string
	end := seg.Start + seg.Duration
	for t := seg.Start + leadCut.Seconds(); t < end-leadCut.Seconds()/2; t += leadCut.Seconds() {
		cuts = append(cuts, strconv.FormatFloat(t, 'f', 6, 64))
	}
	times := strings.Join(cuts, ",")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	args := []string{"-copyts", "-i", seg.Path, "-map", "0:v:0", "-map", "0:a?",
		"-c:v", "libx264", "-preset", "ultrafast", "-crf", "12", "-force_key_frames", times,
		"-enc_time_base", "-1", "-fps_mode", "passthrough", "-c:a", "copy",
		"-muxdelay", "0", "-muxpreload", "0",
		"-f", "segment", "-segment_format", "mpegts", "-segment_times", times,
		"-break_non_keyframes", "0", "-reset_timestamps", "0",
		filepath.Join(dir, "%05d.ts")}
	w := segmentWatch{dir: dir, ext: ".ts", stream: "v:0", frame: frame, onSegments: onSegments, end: end, more: !seg.Last}
	if err := w.run(ctx, args); err != nil {
		return nil, fmt.Errorf("lead of %s: %w", seg.Path, err)
	}
	if n := len(w.segs); n == 0 || math.Abs(w.segs[0].Start-seg.Start) > 1e-3 {
		return nil, fmt.Errorf("lead of %s: pieces %+v do not start where it does (%.6f)", seg.Path, w.segs, seg.Start)
	}
	return w.segs, nil
}
