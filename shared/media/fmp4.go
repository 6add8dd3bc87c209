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
	offset := uint64(math.Round(start * float64(timescale)))
	for _, seg := range parsed.Segments {
		for _, fr := range seg.Fragments {
			for _, traf := range fr.Moof.Trafs {
				if traf.Tfdt != nil {
					traf.Tfdt.SetBaseMediaDecodeTime(traf.Tfdt.BaseMediaDecodeTime() + offset)
				}
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
