package media

import (
	"fmt"
	"os"
)

// Keyframe is where one keyframe sits in a rendition segment: the bytes
// an I-frame playlist points at (EXT-X-BYTERANGE) and when it is shown.
type Keyframe struct {
	Offset, Size int64
	// Time is seconds after the segment's first keyframe.
	Time float64
}

// tsKeyframes finds the keyframes of an MPEG-TS video rendition: each
// video PES whose first packet carries the random access indicator (what
// ffmpeg's muxer sets on a keyframe), from that packet up to the next
// video PES. A rendition segment carries video alone, so nothing else
// lies in between but PAT, PMT and PCR packets a player skips.
func tsKeyframes(path string) ([]Keyframe, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if len(b)%tsPacket != 0 {
		return nil, fmt.Errorf("%s: %d bytes after the last whole %d-byte packet", path, len(b)%tsPacket, tsPacket)
	}
	var out []Keyframe
	var first int64
	open := -1 // the keyframe whose extent is still growing
	for p := 0; p < len(b); p += tsPacket {
		pkt := b[p : p+tsPacket]
		if pkt[0] != 0x47 {
			return nil, fmt.Errorf("%s: no sync byte at offset %d", path, p)
		}
		pts, ok := videoPTS(pkt)
		if !ok {
			continue
		}
		if open >= 0 {
			out[open].Size = int64(p) - out[open].Offset
			open = -1
		}
		// The adaptation field's flags byte: 0x40 is random_access_indicator.
		if pkt[3]&0x20 == 0 || pkt[4] == 0 || pkt[5]&0x40 == 0 {
			continue
		}
		if len(out) == 0 {
			first = pts
		}
		out = append(out, Keyframe{Offset: int64(p), Time: round6(float64(pts-first) / 90000)})
		open = len(out) - 1
	}
	if open >= 0 {
		out[open].Size = int64(len(b)) - out[open].Offset
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no keyframe", path)
	}
	return out, nil
}
