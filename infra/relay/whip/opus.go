package whip

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"

	"github.com/segflow/segflow/infra/relay/rtc"
)

// opusRate is Opus's clock in RTP and in Ogg granule positions.
const opusRate = rtc.OpusRate

// aacConfig is what the Opus-to-AAC transcoder makes: AAC-LC, 48 kHz,
// stereo (WebRTC's Opus is always decoded to two channels at 48 kHz).
var aacConfig = mpeg4audio.AudioSpecificConfig{Type: mpeg4audio.ObjectTypeAACLC, SampleRate: opusRate, ChannelConfig: 2}

// aacFrame is the samples one AAC-LC frame holds.
const aacFrame = 1024

// lostOpus is an Opus packet standing for n samples that never came: its
// TOC byte alone, a zero-length frame, which a decoder conceals (RFC 6716
// 3.2.1). Its configuration is a 20 ms CELT frame when n allows, 10 ms
// otherwise.
func lostOpus(n int) []byte {
	switch {
	case n >= 960:
		return []byte{31 << 3}
	case n >= 480:
		return []byte{30 << 3}
	default:
		return []byte{28 << 3} // 2.5 ms
	}
}

// oggWriter writes an Ogg Opus stream (RFC 7845), one packet per page,
// granule positions counting the samples written: what ffmpeg reads from
// a pipe without probing further than its headers.
type oggWriter struct {
	w       io.Writer
	serial  uint32
	seq     uint32
	granule uint64
}

func newOggWriter(w io.Writer, channels int) (*oggWriter, error) {
	o := &oggWriter{w: w, serial: 0x5e9f10}
	head := make([]byte, 19)
	copy(head, "OpusHead")
	head[8] = 1 // version
	head[9] = byte(channels)
	// Pre-skip 0: the AAC frames' times are counted from the first
	// packet's, so the decoder must not drop its start.
	binary.LittleEndian.PutUint32(head[12:], opusRate)
	if err := o.page(head, 2); err != nil { // beginning of stream
		return nil, err
	}
	tags := append([]byte("OpusTags"), 7, 0, 0, 0)
	tags = append(tags, "segflow"...)
	tags = append(tags, 0, 0, 0, 0)
	if err := o.page(tags, 0); err != nil {
		return nil, err
	}
	return o, nil
}

// Write adds one Opus packet holding samples samples.
func (o *oggWriter) Write(packet []byte, samples int) error {
	o.granule += uint64(samples)
	return o.page(packet, 0)
}

func (o *oggWriter) page(packet []byte, flags byte) error {
	// Lacing: 255-byte runs and a final shorter one (0 when the packet is
	// a multiple of 255).
	segs := len(packet)/255 + 1
	if segs > 255 {
		return fmt.Errorf("ogg: %d-byte packet too long for one page", len(packet))
	}
	h := make([]byte, 27+segs, 27+segs+len(packet))
	copy(h, "OggS")
	h[5] = flags
	binary.LittleEndian.PutUint64(h[6:], o.granule)
	binary.LittleEndian.PutUint32(h[14:], o.serial)
	binary.LittleEndian.PutUint32(h[18:], o.seq)
	h[26] = byte(segs)
	for i := range segs - 1 {
		h[27+i] = 255
	}
	h[27+segs-1] = byte(len(packet) % 255)
	h = append(h, packet...)
	binary.LittleEndian.PutUint32(h[22:], oggChecksum(h))
	o.seq++
	_, err := o.w.Write(h)
	return err
}

// oggChecksum is Ogg's CRC-32: polynomial 0x04c11db7, not reflected, no
// final xor, which hash/crc32 (reflected) cannot compute directly.
func oggChecksum(b []byte) uint32 {
	var crc uint32
	for _, c := range b {
		crc = crc<<8 ^ oggTable[byte(crc>>24)^c]
	}
	return crc
}

var oggTable = func() (t [256]uint32) {
	for i := range t {
		r := uint32(i) << 24
		for range 8 {
			if r&0x80000000 != 0 {
				r = r<<1 ^ 0x04c11db7
			} else {
				r <<= 1
			}
		}
		t[i] = r
	}
	return t
}()

// opusToAAC is one publish's audio transcoder: Opus packets in, in order
// with the samples they stand for, AAC-LC frames out to onFrame with their
// time; it costs ~1% of a core.
type opusToAAC struct {
	*rtc.Pipe
	ogg *oggWriter
}

// startOpusToAAC starts the transcoder. start is the first packet's time;
// onFrame gets each AAC frame and its time (the encoder's priming frame
// falls before start).
func startOpusToAAC(start time.Duration, onFrame func(pts time.Duration, frame []byte)) (*opusToAAC, error) {
	p, err := rtc.StartPipe([]string{"-f", "ogg", "-i", "pipe:0",
		"-c:a", "aac", "-b:a", "128k", "-ar", "48000", "-ac", "2", "-f", "adts", "-flush_packets", "1", "pipe:1"},
		func(out io.Reader) error {
			return readADTS(bufio.NewReader(out), func(n int, frame []byte) {
				// Frame n holds samples (n-1)*1024 to n*1024 of the decoded
				// audio: ffmpeg's AAC encoder primes with one frame.
				onFrame(start+time.Duration(n-1)*aacFrame*time.Second/opusRate, frame)
			})
		})
	if err != nil {
		return nil, fmt.Errorf("opus to aac: %w", err)
	}
	t := &opusToAAC{Pipe: p}
	if t.ogg, err = newOggWriter(p, 2); err != nil {
		t.Close()
		return nil, fmt.Errorf("opus to aac: %w", err)
	}
	return t, nil
}

// WritePacket gives the transcoder one Opus packet of samples samples.
func (t *opusToAAC) WritePacket(packet []byte, samples int) error {
	return t.ogg.Write(packet, samples)
}

// readADTS calls fn with every ADTS frame's raw AAC payload, numbered from
// 0, until r ends.
func readADTS(r *bufio.Reader, fn func(n int, frame []byte)) error {
	hdr := make([]byte, 7)
	for n := 0; ; n++ {
		if _, err := io.ReadFull(r, hdr); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		if hdr[0] != 0xff || hdr[1]&0xf0 != 0xf0 {
			return errors.New("adts: lost sync")
		}
		size := int(hdr[3]&3)<<11 | int(hdr[4])<<3 | int(hdr[5])>>5
		hlen := 7
		if hdr[1]&1 == 0 { // CRC present
			hlen = 9
		}
		if size < hlen {
			return fmt.Errorf("adts: frame of %d bytes", size)
		}
		frame := make([]byte, size-7)
		if _, err := io.ReadFull(r, frame); err != nil {
			return err
		}
		fn(n, frame[hlen-7:])
	}
}
