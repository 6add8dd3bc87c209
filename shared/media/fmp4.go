package media

import (
	"bufio"
	"fmt"
	"math"
	"os"

	"github.com/Eyevinn/mp4ff/mp4"
)

// splitFragmented turns ffmpeg's fragmented MP4 of one segment into an HLS
// init segment (ftyp+moov) and a media segment (moof+mdat...), and moves
// the fragments' decode times to start (seconds) so that the segments of an
// asset form one timeline, as the MPEG-TS renditions do.
func splitFragmented(frag, initPath, segPath string, start float64) error {
	f, err := os.Open(frag)
	if err != nil {
		return err
	}
	defer f.Close()
	parsed, err := mp4.DecodeFile(f)
	if err != nil {
		return fmt.Errorf("read fragmented mp4: %w", err)
	}
	if parsed.Init == nil || len(parsed.Segments) == 0 {
		return fmt.Errorf("read fragmented mp4: no init or no fragments")
	}
	timescale := uint64(90000)
	if tr := parsed.Init.Moov.Trak; tr != nil && tr.Mdia != nil && tr.Mdia.Mdhd != nil {
		timescale = uint64(tr.Mdia.Mdhd.Timescale)
	}
	// The first frame is presented at start: with B-frames (x265) it is
	// decoded frames earlier, so the shift is measured from its
	// presentation time, not from the first decode time.
	first, err := firstPresentation(parsed)
	if err != nil {
		return fmt.Errorf("read fragmented mp4: %w", err)
	}
	offset := int64(math.Round(start*float64(timescale))) - first
	for _, seg := range parsed.Segments {
		for _, fr := range seg.Fragments {
			for _, traf := range fr.Moof.Trafs {
				if traf.Tfdt == nil {
					continue
				}
				t := int64(traf.Tfdt.BaseMediaDecodeTime()) + offset
				if t < 0 {
					return fmt.Errorf("segment starts at %.3fs, before its frames' decode times allow", start)
				}
				traf.Tfdt.SetBaseMediaDecodeTime(uint64(t))
			}
		}
	}
	if err := writeBoxes(initPath, func(w *bufio.Writer) error { return parsed.Init.Encode(w) }); err != nil {
		return err
	}
	if err := writeBoxes(segPath, func(w *bufio.Writer) error {
		for _, seg := range parsed.Segments {
			if err := seg.Encode(w); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		return err
	}
	return os.Remove(frag)
}

// firstPresentation is the earliest presentation time (decode time plus
// composition offset, which may be negative) of the first fragment.
func firstPresentation(f *mp4.File) (int64, error) {
	var trex *mp4.TrexBox
	if mv := f.Init.Moov.Mvex; mv != nil {
		trex = mv.Trex
	}
	samples, err := f.Segments[0].Fragments[0].GetFullSamples(trex)
	if err != nil {
		return 0, err
	}
	if len(samples) == 0 {
		return 0, fmt.Errorf("first fragment has no samples")
	}
	first := int64(math.MaxInt64)
	for _, s := range samples {
		first = min(first, int64(s.DecodeTime)+int64(s.CompositionTimeOffset))
	}
	return first, nil
}

func writeBoxes(path string, encode func(w *bufio.Writer) error) error {
	out, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(out)
	if err := encode(w); err != nil {
		out.Close()
		return err
	}
	if err := w.Flush(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
