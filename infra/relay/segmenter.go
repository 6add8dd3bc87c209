package relay

import (
	"bufio"
	"fmt"
	"os"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"

	"github.com/segflow/segflow/infra/relay/mpegts"
)

// Segment is a closed MPEG-TS segment of a live stream.
type Segment struct {
	Index    int
	Start    time.Duration // first video PTS on the stream's timeline
	Duration time.Duration
	// Wallclock is its first frame's time on the wall clock: the stream's
	// first frame arrival plus this segment's media time since, so that
	// consecutive segments' wall clocks differ by their durations, as
	// PROGRAM-DATE-TIME must, however the network bunched their frames.
	Wallclock time.Time
	// Path is the file holding it; Size its length.
	Path string
	Size int64
}

// ptsOffset moves the stream's timeline so that DTS, which runs before PTS
// with B-frames, never goes below zero.
const ptsOffset = time.Second

// segmenter cuts an H.264 (+AAC) stream into MPEG-TS segments at the first
// IDR frame once Target has passed, without decoding anything. Each
// segment starts with PAT/PMT and an IDR, and timestamps run on across
// segments, so the pieces play as one timeline.
type segmenter struct {
	Target    time.Duration
	Audio     *mpeg4audio.AudioSpecificConfig // nil: video only
	OnSegment func(Segment)
	// Create makes the file a new segment is written to: segments go
	// straight to disk, so a stream holds no segment in memory.
	Create func() (*os.File, error)
	// SPS and PPS go in front of IDR frames that lack them (RTMP sends
	// them once, out of band; withParams), so every segment decodes on
	// its own.
	SPS, PPS []byte

	file    *os.File
	buf     *bufio.Writer
	w       *mpegts.Writer
	index   int
	start   time.Duration
	started bool
	last    time.Duration // last video PTS
	// anchor is when the stream's first segment's first frame arrived;
	// anchorPTS that frame's PTS.
	anchor    time.Time
	anchorPTS time.Duration
}

func (s *segmenter) open(start time.Duration) error {
	f, err := s.Create()
	if err != nil {
		return fmt.Errorf("segment file: %w", err)
	}
	if s.buf == nil {
		s.buf = bufio.NewWriterSize(f, 64<<10)
		s.w = mpegts.NewWriter(s.buf, s.Audio)
	}
	s.file = f
	s.buf.Reset(f)
	if err := s.w.WriteTables(); err != nil {
		return fmt.Errorf("segment tables: %w", err)
	}
	if s.anchor.IsZero() {
		s.anchor, s.anchorPTS = time.Now(), start
	}
	s.start, s.started = start, true
	return nil
}

// close hands the current segment over; end is where it stops.
func (s *segmenter) close(end time.Duration) error {
	if !s.started {
		return nil
	}
	s.started = false
	err := s.buf.Flush()
	size, _ := s.file.Seek(0, 1)
	if cerr := s.file.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(s.file.Name())
		return fmt.Errorf("segment %d: %w", s.index, err)
	}
	wall, _ := s.wallclock(s.start)
	s.OnSegment(Segment{Index: s.index, Start: s.start + ptsOffset, Duration: end - s.start,
		Wallclock: wall, Path: s.file.Name(), Size: size})
	s.index++
	return nil
}

// wallclock is pts on the wall clock (as Segment.Wallclock); false
// before the first segment has started.
func (s *segmenter) wallclock(pts time.Duration) (time.Time, bool) {
	if s.anchor.IsZero() {
		return time.Time{}, false
	}
	return s.anchor.Add(pts - s.anchorPTS), true
}

func ticks(d time.Duration) int64 { return int64(d+ptsOffset) * 90000 / int64(time.Second) }

// WriteH264 takes one access unit; an IDR carries its parameter sets
// (withParams, which the stream applies once for this and the LL-HLS
// rendition).
func (s *segmenter) WriteH264(pts, dts time.Duration, au [][]byte) error {
	idr := h264.IsRandomAccess(au)
	if !s.started {
		if !idr {
			return nil // wait for the first IDR: a segment must start with one
		}
		if err := s.open(pts); err != nil {
			return err
		}
	} else if idr && pts-s.start >= s.Target {
		if err := s.close(pts); err != nil {
			return err
		}
		if err := s.open(pts); err != nil {
			return err
		}
	}
	s.last = pts
	return s.w.WriteH264(ticks(pts), ticks(dts), au)
}

// withParams prepends the parameter sets an IDR access unit lacks, and
// remembers in-band ones for later.
func (s *segmenter) withParams(au [][]byte) [][]byte {
	hasSPS, hasPPS := false, false
	for _, n := range au {
		if len(n) == 0 {
			continue
		}
		switch h264.NALUType(n[0] & 0x1f) {
		case h264.NALUTypeSPS:
			hasSPS, s.SPS = true, n
		case h264.NALUTypePPS:
			hasPPS, s.PPS = true, n
		}
	}
	var pre [][]byte
	if !hasSPS && s.SPS != nil {
		pre = append(pre, s.SPS)
	}
	if !hasPPS && s.PPS != nil {
		pre = append(pre, s.PPS)
	}
	if len(pre) == 0 {
		return au
	}
	return append(pre, au...)
}

// WriteAAC takes AAC access units starting at pts.
func (s *segmenter) WriteAAC(pts time.Duration, aus [][]byte) error {
	if !s.started {
		return nil
	}
	return s.w.WriteAAC(ticks(pts), aus) // a no-op for a stream without audio
}

// Flush closes the last segment when the publisher stops; frameDur is the
// video frame duration, to end it after its last frame.
func (s *segmenter) Flush(frameDur time.Duration) error {
	return s.close(s.last + frameDur)
}
