package media

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math"
	"os"

	"github.com/asticode/go-astits"
)

// span is the first and the end timestamp (last frame's pts plus its
// duration) of the video in a file, in seconds.
type span struct{ start, end float64 }

// tsVideoSpan reads the video span of an MPEG-TS file from its PES
// headers: the lowest PTS, and the highest PTS plus frame (one frame's
// duration, as ffprobe gives a packet). It is the same reading ffprobe
// makes, without a process per segment: split needs it for every segment
// while the cut is still going. Only the packet layer is demuxed (astits
// assembling every PES payload read ~55 MB/s; this reads ~1 GB/s), and a
// video PES is known by its stream id (0xE0-0xEF), as every TS muxer
// writes video.
func tsVideoSpan(ctx context.Context, path string, frame float64) (span, error) {
	f, err := os.Open(path)
	if err != nil {
		return span{}, err
	}
	defer f.Close()
	dmx := astits.NewDemuxer(ctx, bufio.NewReaderSize(f, 256<<10))
	lo, hi := int64(math.MaxInt64), int64(math.MinInt64)
	for {
		p, err := dmx.NextPacket()
		if errors.Is(err, astits.ErrNoMorePackets) {
			break
		}
		if err != nil {
			return span{}, fmt.Errorf("%s: %w", path, err)
		}
		if pts, ok := videoPTS(p); ok {
			lo, hi = min(lo, pts), max(hi, pts)
		}
	}
	if lo > hi {
		return span{}, fmt.Errorf("%s: no video packets", path)
	}
	return span{round6(float64(lo) / 90000), round6(float64(hi)/90000 + frame)}, nil
}

// videoPTS reads the PTS of a video PES that starts in p.
func videoPTS(p *astits.Packet) (int64, bool) {
	b := p.Payload
	if !p.Header.PayloadUnitStartIndicator || len(b) < 14 || b[0] != 0 || b[1] != 0 || b[2] != 1 ||
		b[3]&0xf0 != 0xe0 || b[7]&0x80 == 0 {
		return 0, false
	}
	t := b[9:14]
	return int64(t[0]>>1&0x07)<<30 | int64(t[1])<<22 | int64(t[2]>>1)<<15 | int64(t[3])<<7 | int64(t[4]>>1), true
}
