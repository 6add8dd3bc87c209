package media

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
)

// span is the first and the end timestamp (last frame's pts plus its
// duration) of the video in a file, in seconds, and the timestamp of its
// first packet in decode order (the keyframe a segment starts with).
type span struct{ start, end, key float64 }

// tsPacket is the MPEG-TS packet size; ffmpeg's muxer writes nothing else.
const tsPacket = 188

// tsVideoSpan reads the video span of an MPEG-TS file from its PES
// headers: the lowest PTS, and the highest PTS plus frame (one frame's
// duration, as ffprobe gives a packet). It is the same reading ffprobe
// makes, without a process per segment: split needs it for every segment
// while the cut is still going. Only packet headers are looked at, in
// place in a large buffer (a TS demuxer library that made a value of each
// packet read ~1 GB/s; this reads at the speed of the page cache), and a
// video PES is known by its stream id (0xE0-0xEF), as every TS muxer
// writes video.
func tsVideoSpan(ctx context.Context, path string, frame float64) (span, error) {
	f, err := os.Open(path)
	if err != nil {
		return span{}, err
	}
	defer f.Close()
	buf := make([]byte, 2048*tsPacket)
	lo, hi, key := int64(math.MaxInt64), int64(math.MinInt64), int64(-1)
	for off := int64(0); ; {
		if err := ctx.Err(); err != nil {
			return span{}, err
		}
		n, err := io.ReadFull(f, buf)
		if n%tsPacket != 0 {
			return span{}, fmt.Errorf("%s: %d bytes after the last whole %d-byte packet", path, n%tsPacket, tsPacket)
		}
		for p := 0; p < n; p += tsPacket {
			if buf[p] != 0x47 {
				return span{}, fmt.Errorf("%s: no sync byte at offset %d", path, off+int64(p))
			}
			if pts, ok := videoPTS(buf[p : p+tsPacket]); ok {
				lo, hi = min(lo, pts), max(hi, pts)
				if key < 0 {
					key = pts
				}
			}
		}
		off += int64(n)
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			break
		}
		if err != nil {
			return span{}, fmt.Errorf("%s: %w", path, err)
		}
	}
	if lo > hi {
		return span{}, fmt.Errorf("%s: no video packets", path)
	}
	return span{round6(float64(lo) / 90000), round6(float64(hi)/90000 + frame), round6(float64(key) / 90000)}, nil
}

// videoPTS reads the PTS of a video PES that starts in the TS packet pkt:
// one without a transport error, with the payload-unit-start flag and a
// payload, whose PES header says video and carries a PTS.
func videoPTS(pkt []byte) (int64, bool) {
	if pkt[1]&0x80 != 0 || pkt[1]&0x40 == 0 || pkt[3]&0x10 == 0 {
		return 0, false
	}
	b := pkt[4:]
	if pkt[3]&0x20 != 0 { // an adaptation field comes first
		if int(b[0])+1 > len(b) {
			return 0, false
		}
		b = b[1+int(b[0]):]
	}
	if len(b) < 14 || b[0] != 0 || b[1] != 0 || b[2] != 1 || b[3]&0xf0 != 0xe0 || b[7]&0x80 == 0 {
		return 0, false
	}
	t := b[9:14]
	return int64(t[0]>>1&0x07)<<30 | int64(t[1])<<22 | int64(t[2]>>1)<<15 | int64(t[3])<<7 | int64(t[4]>>1), true
}
