package whiptest

import (
	"bufio"
	"encoding/binary"
	"os"
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media/samplebuilder"
)

// videoRecorder writes a received video track to a file as a browser
// plays it: packets put back in order (NACK resends come late) into
// frames by pion's sample builder; after a frame that could not be
// completed, nothing until the next keyframe, which it asks for (PLI).
// So the file decodes whatever the link lost, as the picture on a screen
// would recover.
type videoRecorder struct {
	pc      *webrtc.PeerConnection
	ssrc    uint32
	vp8     bool
	builder *samplebuilder.SampleBuilder
	f       *os.File
	w       *bufio.Writer
	frames  *atomic.Int64 // the viewer's: read while recording
	waitKey bool
}

func newVideoRecorder(pc *webrtc.PeerConnection, t *webrtc.TrackRemote, path string, vp8 bool, frames *atomic.Int64) (*videoRecorder, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	var depacketizer rtp.Depacketizer = &codecs.H264Packet{}
	if vp8 {
		depacketizer = &codecs.VP8Packet{}
	}
	r := &videoRecorder{pc: pc, ssrc: uint32(t.SSRC()), vp8: vp8, frames: frames, f: f, w: bufio.NewWriter(f), waitKey: true,
		builder: samplebuilder.New(512, depacketizer, 90000, samplebuilder.WithMaxTimeDelay(time.Second))}
	if vp8 { // IVF file header; the frame count is left 0, as streams do
		hdr := make([]byte, 32)
		copy(hdr, "DKIF")
		binary.LittleEndian.PutUint16(hdr[6:], 32)
		copy(hdr[8:], "VP80")
		binary.LittleEndian.PutUint16(hdr[12:], 640)
		binary.LittleEndian.PutUint16(hdr[14:], 360)
		binary.LittleEndian.PutUint32(hdr[16:], 90000)
		binary.LittleEndian.PutUint32(hdr[20:], 1)
		r.w.Write(hdr)
	}
	return r, nil
}

// WriteRTP takes one packet as it came.
func (r *videoRecorder) WriteRTP(p *rtp.Packet) error {
	r.builder.Push(p)
	for s := r.builder.Pop(); s != nil; s = r.builder.Pop() {
		if s.PrevDroppedPackets > 0 && !r.waitKey {
			r.waitKey = true
			_ = r.pc.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: r.ssrc}})
		}
		if r.waitKey && !r.keyframe(s.Data) {
			continue
		}
		r.waitKey = false
		if err := r.write(s.Data, s.PacketTimestamp); err != nil {
			return err
		}
	}
	return nil
}

func (r *videoRecorder) write(frame []byte, ts uint32) error {
	if r.vp8 {
		var hdr [12]byte
		binary.LittleEndian.PutUint32(hdr[:4], uint32(len(frame)))
		binary.LittleEndian.PutUint64(hdr[4:], uint64(ts))
		if _, err := r.w.Write(hdr[:]); err != nil {
			return err
		}
	}
	r.frames.Add(1)
	_, err := r.w.Write(frame) // H.264: Annex-B already
	return err
}

// keyframe says whether a frame starts a picture from nothing: a VP8 key
// frame (bit 0 of its first byte clear), an H.264 access unit with its
// parameter sets (SPS, PPS) and an IDR slice; an IDR whose parameter
// sets were lost decodes no better than a P frame.
func (r *videoRecorder) keyframe(frame []byte) bool {
	if r.vp8 {
		return len(frame) > 0 && frame[0]&1 == 0
	}
	var seen [32]bool
	for i := 0; i+3 < len(frame); i++ {
		if frame[i] == 0 && frame[i+1] == 0 && frame[i+2] == 1 {
			seen[frame[i+3]&0x1f] = true
		}
	}
	return seen[5] && seen[7] && seen[8]
}

func (r *videoRecorder) Close() error {
	err := r.w.Flush()
	if cerr := r.f.Close(); err == nil {
		err = cerr
	}
	return err
}
