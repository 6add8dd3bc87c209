// Package mpegts writes H.264 and AAC as MPEG-TS, the relay's segments.
package mpegts

import (
	"fmt"
	"io"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
)

// Writer writes H.264 and AAC as MPEG-TS with no allocation per frame:
// each packet is built in one fixed array, filled straight from the PES's
// pieces (headers in a reused buffer, the frame's own NAL units). It does what the relay needs and nothing more (one video
// and at most one AAC track, PCR on video, PAT/PMT at the start), at a
// fraction of a general muxer's cost: muxing is most of what the relay's
// CPU does besides reading the socket.
type Writer struct {
	w     io.Writer
	audio *mpeg4audio.AudioSpecificConfig // nil: video only

	pkt      [tsPacketSize]byte
	hdr      []byte   // reused PES header (and ADTS headers)
	parts    [][]byte // reused list of the PES's pieces, written in order
	cc       [4]uint8
	pcrEvery int
}

var (
	startCode = []byte{0, 0, 0, 1}
	// audNAL is an access unit delimiter (any slice type), start code included.
	audNAL = []byte{0, 0, 0, 1, byte(h264.NALUTypeAccessUnitDelimiter), 0xf0}
)

const (
	tsPacketSize = 188
	pidPMT       = 0x1000
	pidVideo     = 0x100
	pidAudio     = 0x101
	// pcrLead puts the PCR a little before the DTS (as mediacommon does).
	pcrLead = 90000 / 10
)

// continuity counter slots
const (
	ccPAT = iota
	ccPMT
	ccVideo
	ccAudio
)

// NewWriter writes to w: H.264 video and, when audio is not nil, AAC.
func NewWriter(w io.Writer, audio *mpeg4audio.AudioSpecificConfig) *Writer {
	return &Writer{w: w, audio: audio}
}

// WriteTables writes the PAT and the PMT; a segment starts with them.
func (t *Writer) WriteTables() error {
	// PAT: program 1 -> PMT PID.
	pat := []byte{0x00, 0xb0, 0x0d, 0x00, 0x01, 0xc1, 0x00, 0x00, 0x00, 0x01, 0xe0 | pidPMT>>8, pidPMT & 0xff}
	if err := t.writeSection(0, &t.cc[ccPAT], pat); err != nil {
		return err
	}
	// PMT: PCR on video; H.264 (0x1b) and AAC in ADTS (0x0f).
	streams := []byte{0x1b, 0xe0 | pidVideo>>8, pidVideo & 0xff, 0xf0, 0x00}
	if t.audio != nil {
		streams = append(streams, 0x0f, 0xe0|pidAudio>>8, pidAudio&0xff, 0xf0, 0x00)
	}
	sectionLen := 9 + len(streams) + 4
	pmt := append([]byte{0x02, 0xb0 | byte(sectionLen>>8), byte(sectionLen), 0x00, 0x01, 0xc1, 0x00, 0x00,
		0xe0 | pidVideo>>8, pidVideo & 0xff, 0xf0, 0x00}, streams...)
	return t.writeSection(pidPMT, &t.cc[ccPMT], pmt)
}

// writeSection writes one PSI section (with its CRC) in one packet.
func (t *Writer) writeSection(pid uint16, cc *uint8, section []byte) error {
	p := &t.pkt
	p[0], p[1], p[2], p[3] = 0x47, 0x40|byte(pid>>8), byte(pid), 0x10|*cc
	*cc = (*cc + 1) & 0x0f
	p[4] = 0 // pointer field
	n := 5 + copy(p[5:], section)
	crc := crc32MPEG(section)
	p[n], p[n+1], p[n+2], p[n+3] = byte(crc>>24), byte(crc>>16), byte(crc>>8), byte(crc)
	for i := n + 4; i < tsPacketSize; i++ {
		p[i] = 0xff
	}
	_, err := t.w.Write(p[:])
	return err
}

// WriteH264 writes one access unit (NAL units without start codes) with
// its timestamps in 90 kHz ticks.
func (t *Writer) WriteH264(pts, dts int64, au [][]byte) error {
	if len(au) == 0 {
		return nil
	}
	// The PES is written from its pieces (header, start codes, the NAL
	// units where they are) without copying the frame into one buffer.
	t.hdr = appendPESHeader(t.hdr[:0], 0xe0, pts, dts, 0)
	parts := append(t.parts[:0], t.hdr)
	// An AUD first: players such as Safari and video.js want it.
	if len(au[0]) == 0 || h264.NALUType(au[0][0]&0x1f) != h264.NALUTypeAccessUnitDelimiter {
		parts = append(parts, audNAL)
	}
	for _, n := range au {
		parts = append(parts, startCode, n)
	}
	t.parts = parts
	// A PCR on every keyframe and at least every third frame.
	random := h264.IsRandomAccess(au)
	pcr := int64(-1)
	if random || t.pcrEvery == 0 {
		pcr, t.pcrEvery = dts-pcrLead, 3
	}
	t.pcrEvery--
	return t.packetize(pidVideo, &t.cc[ccVideo], parts, random, pcr)
}

// WriteAAC writes AAC access units, the first at pts, as ADTS frames in
// one PES.
func (t *Writer) WriteAAC(pts int64, aus [][]byte) error {
	if t.audio == nil || len(aus) == 0 {
		return nil
	}
	size := 0
	for _, au := range aus {
		size += 7 + len(au)
	}
	// Headers first in one buffer, then the pieces point into it: the
	// buffer does not move once every header is in.
	hdr := appendPESHeader(t.hdr[:0], 0xc0, pts, pts, size)
	pesEnd := len(hdr)
	for _, au := range aus {
		var err error
		if hdr, err = appendADTS(hdr, t.audio, len(au)); err != nil {
			return err
		}
	}
	t.hdr = hdr
	parts := append(t.parts[:0], hdr[:pesEnd])
	for i, au := range aus {
		at := pesEnd + 7*i
		parts = append(parts, hdr[at:at+7], au)
	}
	t.parts = parts
	return t.packetize(pidAudio, &t.cc[ccAudio], parts, false, -1)
}

// appendPESHeader appends a PES header with PTS (and DTS when it differs);
// size is the payload length, 0 for "unbounded" (video).
func appendPESHeader(b []byte, streamID byte, pts, dts int64, size int) []byte {
	hdrLen := 5
	flags := byte(0x80)
	if dts != pts {
		hdrLen, flags = 10, 0xc0
	}
	pesLen := 0
	if size > 0 && size+3+hdrLen <= 0xffff {
		pesLen = size + 3 + hdrLen
	}
	b = append(b, 0, 0, 1, streamID, byte(pesLen>>8), byte(pesLen), 0x80, flags, byte(hdrLen))
	b = appendTimestamp(b, flags>>6, pts)
	if dts != pts {
		b = appendTimestamp(b, 0x1, dts)
	}
	return b
}

func appendTimestamp(b []byte, prefix byte, ts int64) []byte {
	ts &= 0x1ffffffff
	return append(b,
		prefix<<4|byte(ts>>29)&0x0e|1,
		byte(ts>>22),
		byte(ts>>14)|1,
		byte(ts>>7),
		byte(ts<<1)|1)
}

var adtsRates = []int{96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350}

func appendADTS(b []byte, c *mpeg4audio.AudioSpecificConfig, n int) ([]byte, error) {
	rate := -1
	for i, r := range adtsRates {
		if r == c.SampleRate {
			rate = i
		}
	}
	// ADTS carries the channel configuration as such (7 is 7.1); 0, a
	// layout in a program config element, it cannot say.
	ch := int(c.ChannelConfig)
	if rate < 0 || ch < 1 || ch > 7 || c.Type < 1 || c.Type > 4 {
		return b, fmt.Errorf("aac %d Hz, channel configuration %d, object type %d: not expressible in ADTS", c.SampleRate, c.ChannelConfig, c.Type)
	}
	frame := 7 + n
	if frame > 0x1fff {
		return b, fmt.Errorf("aac frame of %d bytes is too large for ADTS", n)
	}
	profile := byte(c.Type - 1)
	return append(b,
		0xff, 0xf1,
		profile<<6|byte(rate)<<2|byte(ch>>2),
		byte(ch&3)<<6|byte(frame>>11),
		byte(frame>>3),
		byte(frame&7)<<5|0x1f,
		0xfc), nil
}

// packetize splits one PES into packets; the first starts the unit and
// carries the random-access flag and PCR (pcr < 0: none), the last is
// padded with adaptation-field stuffing.
func (t *Writer) packetize(pid uint16, cc *uint8, parts [][]byte, random bool, pcr int64) error {
	left := 0
	for _, b := range parts {
		left += len(b)
	}
	first := true
	for left > 0 {
		p := &t.pkt
		p[0], p[1], p[2] = 0x47, byte(pid>>8), byte(pid)
		if first {
			p[1] |= 0x40
		}
		// Adaptation field: flags (and PCR) on the first packet, stuffing
		// on the last.
		af := -1 // adaptation field length (the byte's value); -1: no field
		var afFlags byte
		if first && (random || pcr >= 0) {
			af = 1
			if random {
				afFlags |= 0x40
			}
			if pcr >= 0 {
				afFlags |= 0x10
				af += 6
			}
		}
		room := tsPacketSize - 4
		if af >= 0 {
			room -= 1 + af
		}
		if left < room {
			// stuff: grow (or create) the adaptation field to fill the packet
			if af < 0 {
				af = 0
				room--
				if left < room {
					af = 1
					room--
				}
			}
			stuff := room - left
			af += stuff
			room -= stuff
		}
		if af >= 0 {
			p[3] = 0x30 | *cc
			p[4] = byte(af)
			i := 5
			if af > 0 {
				p[5] = afFlags
				i = 6
				if afFlags&0x10 != 0 {
					base := pcr & 0x1ffffffff
					p[6], p[7], p[8], p[9] = byte(base>>25), byte(base>>17), byte(base>>9), byte(base>>1)
					p[10], p[11] = byte(base<<7)|0x7e, 0
					i = 12
				}
				for ; i < 5+af; i++ {
					p[i] = 0xff
				}
			}
			parts = fill(p[5+af:5+af+room], parts)
		} else {
			p[3] = 0x10 | *cc
			parts = fill(p[4:4+room], parts)
		}
		*cc = (*cc + 1) & 0x0f
		left -= room
		first = false
		if _, err := t.w.Write(p[:]); err != nil {
			return err
		}
	}
	return nil
}

// fill copies the next len(dst) bytes of parts into dst and returns the
// parts still (partly) unwritten.
func fill(dst []byte, parts [][]byte) [][]byte {
	for len(dst) > 0 {
		n := copy(dst, parts[0])
		dst = dst[n:]
		if n == len(parts[0]) {
			parts = parts[1:]
		} else {
			parts[0] = parts[0][n:]
		}
	}
	return parts
}

var crcTable = func() (t [256]uint32) {
	for i := range t {
		c := uint32(i) << 24
		for j := 0; j < 8; j++ {
			if c&0x80000000 != 0 {
				c = c<<1 ^ 0x04c11db7
			} else {
				c <<= 1
			}
		}
		t[i] = c
	}
	return t
}()

// crc32MPEG is the CRC of PSI sections (MPEG-2, not reflected).
func crc32MPEG(b []byte) uint32 {
	c := uint32(0xffffffff)
	for _, x := range b {
		c = c<<8 ^ crcTable[byte(c>>24)^x]
	}
	return c
}
