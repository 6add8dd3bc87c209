package media

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"math"
	"os"

	"github.com/Eyevinn/mp4ff/mp4"
)

// fragmented is what splitFragmented learnt of a segment: when its first
// frame is shown (what a DASH SegmentTimeline lists) in its track's
// timescale, and where its keyframes are.
type fragmented struct {
	start     int64
	timescale uint32
	keyframes []Keyframe
}

// splitFragmented turns ffmpeg's fragmented MP4 of one segment into an HLS
// init segment (ftyp+moov) and a media segment (moof+mdat...), and moves
// the fragments' decode times to start (seconds) so that the segments of an
// asset form one timeline, as the MPEG-TS renditions do. A protect that is
// not nil encrypts both (cbcs) before they are written, so the keyframe
// ranges found are those of the encrypted segment.
func splitFragmented(frag, initPath, segPath string, start float64, protect *Protection) (fragmented, error) {
	var info fragmented
	f, err := os.Open(frag)
	if err != nil {
		return info, err
	}
	defer f.Close()
	parsed, err := mp4.DecodeFile(f)
	if err != nil {
		return info, fmt.Errorf("read fragmented mp4: %w", err)
	}
	if parsed.Init == nil || len(parsed.Segments) == 0 || len(parsed.Segments[0].Fragments) == 0 {
		return info, fmt.Errorf("read fragmented mp4: no init or no fragments")
	}
	timescale := uint64(90000)
	if tr := parsed.Init.Moov.Trak; tr != nil && tr.Mdia != nil && tr.Mdia.Mdhd != nil {
		timescale = uint64(tr.Mdia.Mdhd.Timescale)
	}
	info.timescale = uint32(timescale)
	// The first frame is presented at start: with B-frames (x265) it is
	// decoded frames earlier, so the shift is measured from its
	// presentation time, not from the first decode time.
	first, err := firstPresentation(parsed)
	if err != nil {
		return info, fmt.Errorf("read fragmented mp4: %w", err)
	}
	offset := int64(math.Round(start*float64(timescale))) - first
	info.start = first + offset
	for _, seg := range parsed.Segments {
		for _, fr := range seg.Fragments {
			for _, traf := range fr.Moof.Trafs {
				if traf.Tfdt == nil {
					continue
				}
				t := int64(traf.Tfdt.BaseMediaDecodeTime()) + offset
				if t < 0 {
					return info, fmt.Errorf("segment starts at %.3fs, before its frames' decode times allow", start)
				}
				traf.Tfdt.SetBaseMediaDecodeTime(uint64(t))
			}
		}
	}
	if protect != nil {
		if err := protect.apply(parsed); err != nil {
			return info, err
		}
	}
	if err := writeBoxes(initPath, func(w *bufio.Writer) error { return parsed.Init.Encode(w) }); err != nil {
		return info, err
	}
	var trex *mp4.TrexBox
	if mv := parsed.Init.Moov.Mvex; mv != nil {
		trex = mv.Trex
	}
	if err := writeBoxes(segPath, func(w *bufio.Writer) error {
		info.keyframes, err = encodeSegments(w, parsed.Segments, trex, info.start, timescale)
		return err
	}); err != nil {
		return info, err
	}
	return info, os.Remove(frag)
}

// encodeSegments writes the media segments and says where each fragment
// that starts with a sync sample has it: from its moof to the end of that
// first sample's data, the bytes an I-frame playlist names (the moof lists
// the fragment's later samples too; a player reads the first). ffmpeg cuts
// a fragment at every keyframe (frag_keyframe), so this finds them all.
// firstShown is the segment's first presentation time, on the fragments'
// (shifted) timeline.
func encodeSegments(w io.Writer, segs []*mp4.MediaSegment, trex *mp4.TrexBox, firstShown int64, timescale uint64) ([]Keyframe, error) {
	var pos int64
	var keyframes []Keyframe
	var buf bytes.Buffer
	for _, seg := range segs {
		if seg.Styp != nil {
			buf.Reset()
			if err := seg.Styp.Encode(&buf); err != nil {
				return nil, err
			}
			n, err := w.Write(buf.Bytes())
			pos += int64(n)
			if err != nil {
				return nil, err
			}
		}
		for _, fr := range seg.Fragments {
			samples, err := fr.GetFullSamples(trex)
			if err != nil {
				return nil, err
			}
			buf.Reset()
			if err := fr.Encode(&buf); err != nil {
				return nil, err
			}
			if len(samples) > 0 && samples[0].IsSync() && fr.Moof != nil && fr.Mdat != nil {
				shown := int64(samples[0].DecodeTime) + int64(samples[0].CompositionTimeOffset)
				keyframes = append(keyframes, Keyframe{
					Offset: pos + int64(fr.Moof.StartPos) - int64(fr.StartPos),
					Size:   int64(fr.Moof.Size()+fr.Mdat.HeaderSize()) + int64(samples[0].Size),
					Time:   round6(float64(shown-firstShown) / float64(timescale)),
				})
			}
			n, err := w.Write(buf.Bytes())
			pos += int64(n)
			if err != nil {
				return nil, err
			}
		}
	}
	return keyframes, nil
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
