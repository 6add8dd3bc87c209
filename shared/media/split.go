package media

import (
	"context"
	"errors"
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
	// Last marks the file's last segment.
	Last bool
}

// DefaultTarget is the segment duration a split aims at unless told.
const DefaultTarget = 6 * time.Second

// SplitOptions shape a split.
type SplitOptions struct {
	// Target is the wished segment duration; cuts fall on the first video
	// keyframe at or after each multiple (default 6s: the target duration
	// Apple's HLS authoring spec asks for, and a third fewer processes per
	// file than 4 s, each of which pays ffmpeg's start and its first touch
	// of ~400 MB of frame buffers). The first cut comes sooner (leadCut).
	Target time.Duration
	// Audio are the AAC renditions the audio is encoded to once for the
	// whole asset, so renditions cut from it have no seams; the segments
	// carry them as their audio streams, in this order (default: the
	// first track in stereo, DefaultAudio).
	Audio []AudioRendition
	// OnSegments, when set, gets the segments as soon as they are final,
	// in order, while the cut goes on: those that became final together
	// in one call (usually one; more when the cut outruns the watch, so a
	// caller that records each one can do it once per call). An error
	// from it stops the split.
	OnSegments func([]Segment) error
}

// SourceExt is the container of the source segments of video in codec
// (Info's VideoStream.Codec): MPEG-TS for the codecs it carries well,
// which is what the live relay writes too; Matroska for every other one
// (VP9, AV1, ProRes, DNxHD, MJPEG, ...), which holds whatever ffmpeg
// reads, still cut by stream copy.
func SourceExt(codec string) string {
	switch codec {
	case "h264", "hevc", "mpeg2video":
		return ".ts"
	}
	return ".mkv"
}

// Split cuts in into segments (in the container SourceExt picks) at video
// keyframes: video is copied as it is, audio (if any) is encoded once to
// AAC 48 kHz across the whole file (each of o.Audio) so that it is
// continuous over every seam, or copied where the track already is that
// AAC (AudioRendition.Copies). With OnSegments set, segments are handed over, in order, as
// soon as they are final, while the rest of the file is still being cut.
func Split(ctx context.Context, in, outDir string, info *Info, o SplitOptions) ([]Segment, error) {
	if o.Target <= 0 {
		o.Target = DefaultTarget
	}
	if o.Audio == nil && info.Audio != nil {
		o.Audio = DefaultAudio
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return nil, err
	}
	args := []string{"-i", in}
	if info.Video != nil {
		args = append(args, "-map", "0:v:0", "-c:v", "copy")
	}
	for k, a := range o.Audio {
		if a.Track >= len(info.Audios) {
			return nil, fmt.Errorf("split %s: audio rendition %s of track %d: the file has %d", in, a.Name, a.Track, len(info.Audios))
		}
		ks := strconv.Itoa(k)
		args = append(args, "-map", "0:a:"+strconv.Itoa(a.Track))
		if a.Copies(info.Audios[a.Track]) {
			args = append(args, "-c:a:"+ks, "copy")
			continue
		}
		args = append(args, "-c:a:"+ks, "aac", "-b:a:"+ks, strconv.Itoa(a.Bitrate),
			"-ac:a:"+ks, strconv.Itoa(a.Channels), "-ar:a:"+ks, "48000")
	}
	// Audio alone is cut where it falls: every AAC frame starts cleanly.
	ext, format, spanOf, offset := ".ts", "mpegts", "a:0", 0.0
	if info.Video != nil {
		ext, spanOf = SourceExt(info.Video.Codec), "v:0"
	}
	if ext == ".mkv" {
		format = "matroska"
		// The MPEG-TS muxer starts the timeline 1.4 s in; Matroska keeps
		// the source's (often 0), where the first DTS of a B-frame encode
		// of segment 0 would fall below zero and the TS muxer would shift
		// that rendition's timestamps. The same 1.4 s for both.
		args = append(args, "-output_ts_offset", "1.4")
		offset = 1.4 // the segment muxer's clock starts there too
	} else if info.Video != nil {
		// Annex B for H.264/HEVC in TS; a no-op for codecs that need none.
		switch info.Video.Codec {
		case "h264":
			args = append(args, "-bsf:v", "h264_mp4toannexb")
		case "hevc":
			args = append(args, "-bsf:v", "hevc_mp4toannexb")
		}
	}
	args = append(args, "-f", "segment", "-segment_format", format)
	if info.Duration > 0 && info.Duration <= maxListed.Seconds() {
		args = append(args, "-segment_times", cutTimes(offset, info.Duration, o.Target))
	} else { // a file that does not say how long it is, or too long a list: no short lead
		args = append(args, "-segment_time", strconv.FormatFloat(o.Target.Seconds(), 'f', 3, 64))
	}
	args = append(args,
		"-break_non_keyframes", "0", "-reset_timestamps", "0",
		filepath.Join(outDir, "%05d"+ext))

	frame := 0.0 // the last frame's duration ends the last segment
	if info.Video != nil && info.Video.FPS > 0 {
		frame = 1 / info.Video.FPS
	}
	w := segmentWatch{dir: outDir, ext: ext, stream: spanOf, frame: frame, onSegments: o.OnSegments}
	if ext == ".ts" && leadable(info.Video) {
		w.lead = func(ctx context.Context, s Segment) ([]Segment, error) {
			if s.Duration <= leadMax.Seconds() {
				return nil, nil
			}
			return splitLead(ctx, s, filepath.Join(outDir, "lead"), frame, o.OnSegments)
		}
	}
	if err := w.run(ctx, args); err != nil {
		return nil, fmt.Errorf("split %s: %w", in, err)
	}
	if len(w.segs) == 0 {
		return nil, fmt.Errorf("split %s: no segments written", in)
	}
	return w.segs, nil
}

// leadCut is where the first segment ends (at the first keyframe at or
// after it): a viewer can start an asset still being made once every
// rung's first segment exists, and on 2 cores, with the next segment's
// transcode beside it, a 6 s first segment took ~9 s to encode where a
// 2 s one takes a third of that. One process more per asset is its cost.
const leadCut = 2 * time.Second

// maxListed is the longest file whose cuts are listed: one argument may
// not pass 128 KiB (Linux's MAX_ARG_STRLEN), ~13,000 cuts of 6 s.
const maxListed = 12 * time.Hour

// cutTimes is the segment muxer's list of cut points for a file lasting
// duration seconds whose output timeline starts at offset: leadCut, then
// every target after it, to past the end.
func cutTimes(offset, duration float64, target time.Duration) string {
	cuts := []string{}
	for t := leadCut.Seconds(); len(cuts) == 0 || t < duration+target.Seconds(); t += target.Seconds() {
		cuts = append(cuts, strconv.FormatFloat(offset+t, 'f', 3, 64))
	}
	return strings.Join(cuts, ",")
}

// segmentWatch follows the segment files ffmpeg writes. The segment muxer
// opens file n+1 only after closing file n, so every file but the newest
// is complete; a segment's duration runs to the next one's start, so it is
// final once the next file is complete too (or the cut is over).
type segmentWatch struct {
	dir, ext   string
	stream     string // whose span times the segments: "v:0", or "a:0" for audio alone
	frame      float64
	onSegments func([]Segment) error
	// lead, when set, may replace the first segment with pieces of it,
	// which it hands to onSegments itself (none: keep the segment).
	lead func(context.Context, Segment) ([]Segment, error)
	// end, when set, is where the last segment ends (its span's end
	// otherwise); more says segments follow the last file's (none Last).
	end   float64
	more  bool
	spans []span // of the complete files
	files int    // how many files are segments
	segs  []Segment
}

// run runs the segment muxer's ffmpeg with args and follows its files
// until it is over.
func (w *segmentWatch) run(ctx context.Context, args []string) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	cut := make(chan error, 1)
	go func() { cut <- ffmpeg(ctx, args...) }()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		var err error
		over := false
		select {
		case err = <-cut:
			over = true
		case <-tick.C:
		}
		if err != nil {
			if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, ctx.Err()) {
				err = cause
			}
			return err
		}
		if err := w.advance(ctx, over); err != nil {
			if !over { // stop the cut and wait for ffmpeg to go
				cancel(err)
				<-cut
			}
			return err
		}
		if over {
			return nil
		}
	}
}

func (w *segmentWatch) advance(ctx context.Context, over bool) error {
	files, err := filepath.Glob(filepath.Join(w.dir, "*"+w.ext))
	if err != nil {
		return err
	}
	sort.Strings(files)
	complete := len(files) - 1
	if over {
		complete = len(files)
	}
	for len(w.spans) < complete {
		sp, err := fileSpan(ctx, files[len(w.spans)], w.stream, w.frame)
		if err != nil {
			return err
		}
		w.spans = append(w.spans, sp)
	}
	first := len(w.segs)
	for w.files+1 < len(w.spans) || (over && w.files < len(w.spans)) {
		i := w.files
		s := Segment{Index: len(w.segs), Path: files[i], Start: w.spans[i].start, Duration: round6(w.spans[i].end - w.spans[i].start)}
		if i+1 < len(w.spans) {
			s.Duration = round6(w.spans[i+1].start - s.Start)
		} else {
			if w.end > 0 {
				s.Duration = round6(w.end - s.Start)
			}
			s.Last = !w.more // the cut is over and no file follows
		}
		w.files++
		if i == 0 && w.lead != nil {
			pieces, err := w.lead(ctx, s)
			if err != nil {
				return err
			}
			if len(pieces) > 0 { // handed over already
				w.segs = append(w.segs, pieces...)
				first = len(w.segs)
				continue
			}
		}
		w.segs = append(w.segs, s)
	}
	if w.onSegments == nil || first == len(w.segs) {
		return nil
	}
	return w.onSegments(append([]Segment(nil), w.segs[first:]...))
}

// videoSpan returns the video span of one segment file.
func videoSpan(ctx context.Context, path string) (float64, float64, error) {
	s, err := fileSpan(ctx, path, "v:0", 0)
	if err != nil {
		return 0, 0, err
	}
	return s.start, s.end, nil
}

// fileSpan reads the span of a segment's stream ("v:0" or "a:0"): the
// video of MPEG-TS from its PES headers in place; anything else through
// ffprobe's packet list, with frame ending the last packet when the
// container gives it no duration (WebM blocks often have none).
func fileSpan(ctx context.Context, path, stream string, frame float64) (span, error) {
	if filepath.Ext(path) == ".ts" && stream == "v:0" {
		return tsVideoSpan(ctx, path, frame)
	}
	out, err := run(ctx, "ffprobe", "-v", "error", "-select_streams", stream,
		"-show_entries", "packet=pts_time,duration_time", "-of", "csv=p=0", path)
	if err != nil {
		return span{}, fmt.Errorf("%s: %w", path, err)
	}
	lo, hi, key := math.Inf(1), math.Inf(-1), math.NaN()
	for _, line := range strings.Split(string(out), "\n") {
		pts, dur, _ := strings.Cut(strings.TrimSpace(line), ",")
		t, err := strconv.ParseFloat(pts, 64)
		if err != nil {
			continue
		}
		d, err := strconv.ParseFloat(strings.TrimSuffix(dur, ","), 64)
		if err != nil || d <= 0 {
			d = frame
		}
		lo, hi = min(lo, t), max(hi, t+d)
		if math.IsNaN(key) {
			key = t
		}
	}
	if lo > hi {
		return span{}, fmt.Errorf("%s: no packets in stream %s", path, stream)
	}
	return span{round6(lo), round6(hi), round6(key)}, nil
}

func round6(f float64) float64 { return math.Round(f*1e6) / 1e6 }
