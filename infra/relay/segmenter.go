package relay

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
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
	// Path is the file holding it; Size its length. Data holds it
	// instead (Path empty) when the disk refused it (DiskErr: full).
	Path    string
	Size    int64
	Data    []byte
	DiskErr error
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

	file    *segmentFile
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
	f := &segmentFile{}
	if f.f, f.diskErr = s.Create(); f.diskErr != nil {
		f.mem = new(bytes.Buffer)
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
	if err == nil {
		err = s.file.close()
	}
	if err != nil {
		s.file.remove()
		return fmt.Errorf("segment %d: %w", s.index, err)
	}
	wall, _ := s.wallclock(s.start)
	seg := Segment{Index: s.index, Start: s.start + ptsOffset, Duration: end - s.start,
		Wallclock: wall, Size: s.file.n, DiskErr: s.file.diskErr}
	if s.file.mem != nil {
		seg.Data = s.file.mem.Bytes()
	} else {
		seg.Path = s.file.f.Name()
	}
	s.OnSegment(seg)
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

// segmentFile is where a segment is written: a file in the spool's
// folder, until the disk refuses a write (full), and from then on memory,
// the bytes already written read back. So a full disk costs the relay
// memory for a while, never the stream (a failed write used to end the
// publish).
type segmentFile struct {
	f       *os.File      // nil once in memory
	mem     *bytes.Buffer // nil while on disk
	n       int64         // bytes written
	diskErr error         // why it is in memory
}

func (w *segmentFile) Write(p []byte) (int, error) {
	if w.mem != nil {
		w.mem.Write(p)
		w.n += int64(len(p))
		return len(p), nil
	}
	n, err := w.f.Write(p)
	w.n += int64(n)
	if err == nil {
		return n, nil
	}
	if serr := w.spill(err); serr != nil {
		return n, fmt.Errorf("%w (then reading it back: %v)", err, serr)
	}
	w.mem.Write(p[n:])
	w.n += int64(len(p) - n)
	return len(p), nil
}

// spill moves what is on disk into memory, for why.
func (w *segmentFile) spill(why error) error {
	data := make([]byte, w.n)
	if _, err := w.f.ReadAt(data, 0); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	w.remove()
	w.mem, w.diskErr = bytes.NewBuffer(data), why
	return nil
}

// close closes the file; a close the disk refuses (delayed allocation
// can fail here) spills it too.
func (w *segmentFile) close() error {
	if w.f == nil {
		return nil
	}
	if err := w.f.Close(); err != nil {
		f, oerr := os.Open(w.f.Name())
		if oerr != nil {
			return err
		}
		w.f = f
		return w.spill(err)
	}
	return nil
}

// remove deletes the file, if there is one.
func (w *segmentFile) remove() {
	if w.f != nil {
		w.f.Close()
		os.Remove(w.f.Name())
		w.f = nil
	}
}
