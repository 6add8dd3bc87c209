package whip

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/mpegts"
	tscodecs "github.com/bluenviron/mediacommon/v2/pkg/formats/mpegts/codecs"

	"github.com/segflow/segflow/infra/relay/rtc"
)

// vp8Key says whether a VP8 frame is a keyframe (RFC 6386 9.1: the
// frame tag's first bit is 0), and its size when it is.
func vp8Key(frame []byte) (key bool, width, height int) {
	if len(frame) < 10 || frame[0]&1 != 0 {
		return false, 0, 0
	}
	if frame[3] != 0x9d || frame[4] != 0x01 || frame[5] != 0x2a {
		return false, 0, 0
	}
	return true, int(binary.LittleEndian.Uint16(frame[6:]) & 0x3fff), int(binary.LittleEndian.Uint16(frame[8:]) & 0x3fff)
}

// vp8ToH264 is a VP8 publisher's video made H.264 for the segmenter: one
// ffmpeg per publish decodes the frames (IVF in, timed in 90 kHz ticks)
// and encodes them with x264, keyframes where the publisher's are (which
// the relay asks for at each segment target), MPEG-TS out so every frame
// keeps its time even if the decoder drops one.
type vp8ToH264 struct {
	*rtc.Pipe
	start time.Duration // the first frame's time on the session's timeline
}

// startVP8ToH264 starts the transcoder at the first keyframe (its size is
// the IVF header's); onAU gets each H.264 access unit at its time.
func startVP8ToH264(start time.Duration, width, height int, onAU func(at time.Duration, au [][]byte)) (*vp8ToH264, error) {
	p, err := rtc.StartPipe([]string{"-f", "ivf", "-i", "pipe:0",
		"-fps_mode", "passthrough", "-c:v", "libx264", "-preset", "veryfast", "-tune", "zerolatency", "-pix_fmt", "yuv420p",
		"-force_key_frames", "source", "-g", "600", "-sc_threshold", "0",
		"-f", "mpegts", "-muxdelay", "0", "-muxpreload", "0", "-flush_packets", "1", "pipe:1"},
		func(out io.Reader) error {
			return readH264TS(out, func(ticks int64, au [][]byte) {
				onAU(start+time.Duration(ticks)*time.Second/90000, au)
			})
		})
	if err != nil {
		return nil, fmt.Errorf("vp8 to h264: %w", err)
	}
	hdr := make([]byte, 32)
	copy(hdr, "DKIF")
	binary.LittleEndian.PutUint16(hdr[6:], 32)
	copy(hdr[8:], "VP80")
	binary.LittleEndian.PutUint16(hdr[12:], uint16(width))
	binary.LittleEndian.PutUint16(hdr[14:], uint16(height))
	binary.LittleEndian.PutUint32(hdr[16:], 90000) // time base 1/90000
	binary.LittleEndian.PutUint32(hdr[20:], 1)
	if _, err := p.Write(hdr); err != nil {
		p.Close()
		return nil, fmt.Errorf("vp8 to h264: %w", err)
	}
	return &vp8ToH264{Pipe: p, start: start}, nil
}

// WriteFrame gives the transcoder a frame at time at (never before start).
func (t *vp8ToH264) WriteFrame(at time.Duration, frame []byte) error {
	h := make([]byte, 12, 12+len(frame))
	binary.LittleEndian.PutUint32(h, uint32(len(frame)))
	binary.LittleEndian.PutUint64(h[4:], uint64((at-t.start)*90000/time.Second))
	_, err := t.Write(append(h, frame...))
	return err
}

// readH264TS reads the H.264 track of an MPEG-TS stream, calling fn with
// each access unit and its time in 90 kHz ticks from the first one's.
func readH264TS(r io.Reader, fn func(ticks int64, au [][]byte)) error {
	rd := &mpegts.Reader{R: r}
	if err := rd.Initialize(); err != nil {
		return fmt.Errorf("transcoded video: %w", err)
	}
	var video *mpegts.Track
	for _, tr := range rd.Tracks() {
		if _, ok := tr.Codec.(*tscodecs.H264); ok {
			video = tr
		}
	}
	if video == nil {
		return errors.New("transcoded video: no H.264 track")
	}
	first := int64(-1)
	rd.OnDataH264(video, func(pts, _ int64, au [][]byte) error {
		if first < 0 {
			first = pts
		}
		fn(pts-first, au)
		return nil
	})
	for {
		if err := rd.Read(); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
	}
}
