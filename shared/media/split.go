package media

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Segment is one piece of a split file.
type Segment struct {
	Index int
	Path  string
	// Start is the segment's first video timestamp in seconds, on the
	// timeline all of the asset's segments share.
	Start float64
	// Duration runs to the next segment's start (the file's end for the
	// last one).
	Duration float64
}

// SplitOptions shape a split.
type SplitOptions struct {
	// Target is the wished segment duration; cuts fall on the first video
	// keyframe at or after each multiple (default 4s).
	Target time.Duration
	// AudioBitrate is the AAC bitrate the audio is encoded to once for the
	// whole asset, so renditions cut from it have no seams (default 128k).
	AudioBitrate int
}

// Split cuts in into MPEG-TS segments at video keyframes: video is copied
// as it is, audio (if any) is encoded once to AAC stereo 48 kHz across the
// whole file so that it is continuous over every seam.
func Split(ctx context.Context, in, outDir string, info *Info, o SplitOptions) ([]Segment, error) {
	if o.Target <= 0 {
		o.Target = 4 * time.Second
	}
	if o.AudioBitrate <= 0 {
		o.AudioBitrate = 128000
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return nil, err
	}
	args := []string{"-i", in, "-map", "0:v:0", "-c:v", "copy"}
	if info.Audio != nil {
		args = append(args, "-map", "0:a:0", "-c:a", "aac", "-b:a", strconv.Itoa(o.AudioBitrate), "-ac", "2", "-ar", "48000")
	}
	// Annex B for H.264/HEVC in TS; a no-op for codecs that need none.
	switch info.Video.Codec {
	case "h264":
		args = append(args, "-bsf:v", "h264_mp4toannexb")
	case "hevc":
		args = append(args, "-bsf:v", "hevc_mp4toannexb")
	}
	args = append(args, "-f", "segment", "-segment_format", "mpegts",
		"-segment_time", strconv.FormatFloat(o.Target.Seconds(), 'f', 3, 64),
		"-break_non_keyframes", "0", "-reset_timestamps", "0",
		filepath.Join(outDir, "%05d.ts"))
	if err := ffmpeg(ctx, args...); err != nil {
		return nil, fmt.Errorf("split %s: %w", in, err)
	}
	files, err := filepath.Glob(filepath.Join(outDir, "*.ts"))
	if err != nil {
		return nil, err
	}
	sort.Strings(files)
	if len(files) == 0 {
		return nil, fmt.Errorf("split %s: no segments written", in)
	}
	spans, err := videoSpans(ctx, files)
	if err != nil {
		return nil, fmt.Errorf("split %s: %w", in, err)
	}
	segs := make([]Segment, len(files))
	for i, f := range files {
		segs[i] = Segment{Index: i, Path: f, Start: spans[i].start, Duration: round6(spans[i].end - spans[i].start)}
	}
	for i := 0; i+1 < len(segs); i++ {
		segs[i].Duration = round6(segs[i+1].Start - segs[i].Start)
	}
	return segs, nil
}

// span is the first and the end timestamp (last frame's pts plus its
// duration) of the video in a file.
type span struct{ start, end float64 }

// videoSpan returns the video span of one file.
func videoSpan(ctx context.Context, path string) (float64, float64, error) {
	s, err := videoSpans(ctx, []string{path})
	if err != nil {
		return 0, 0, err
	}
	return s[0].start, s[0].end, nil
}

// videoSpans reads the video spans of MPEG-TS files with one ffprobe over
// all of them: the concat protocol joins them into one stream and a
// packet's byte position tells which file it came from. One process per
// file cost ~0.15 s each, mostly ffprobe starting, while every transcode
// waited for the split.
func videoSpans(ctx context.Context, files []string) ([]span, error) {
	ends := make([]int64, len(files)) // each file's end offset in the joined stream
	var total int64
	for i, f := range files {
		st, err := os.Stat(f)
		if err != nil {
			return nil, err
		}
		total += st.Size()
		ends[i] = total
	}
	input := files[0]
	if len(files) > 1 {
		input = "concat:" + strings.Join(files, "|")
	}
	out, err := run(ctx, "ffprobe", "-v", "error", "-select_streams", "v:0",
		"-show_entries", "packet=pts_time,duration_time,pos", "-of", "csv=p=0", input)
	if err != nil {
		return nil, err
	}
	spans := make([]span, len(files))
	lastDur := make([]float64, len(files))
	for i := range spans {
		spans[i] = span{math.Inf(1), math.Inf(-1)}
	}
	for _, line := range splitLines(out) {
		// pts_time,duration_time,pos in ffprobe's field order; a missing
		// value reads "N/A".
		f := strings.Split(line, ",")
		if len(f) < 3 {
			continue
		}
		pts, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			continue
		}
		dur, _ := strconv.ParseFloat(f[1], 64)
		pos, err := strconv.ParseInt(f[2], 10, 64)
		if err != nil {
			continue
		}
		i := sort.Search(len(ends), func(i int) bool { return ends[i] > pos })
		if i == len(ends) {
			continue
		}
		s := &spans[i]
		s.start = math.Min(s.start, pts)
		if pts > s.end {
			s.end, lastDur[i] = pts, dur
		}
	}
	for i := range spans {
		if math.IsInf(spans[i].start, 1) {
			return nil, fmt.Errorf("%s: no video packets", files[i])
		}
		spans[i] = span{round6(spans[i].start), round6(spans[i].end + lastDur[i])}
	}
	return spans, nil
}

func splitLines(b []byte) []string {
	var out []string
	start := 0
	for i, c := range b {
		if c == '\n' {
			if i > start {
				out = append(out, string(b[start:i]))
			}
			start = i + 1
		}
	}
	if start < len(b) {
		out = append(out, string(b[start:]))
	}
	return out
}

func round6(f float64) float64 { return math.Round(f*1e6) / 1e6 }
