package media

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/Eyevinn/mp4ff/aac"
	"github.com/Eyevinn/mp4ff/av1"
	"github.com/Eyevinn/mp4ff/avc"
	"github.com/Eyevinn/mp4ff/hevc"
	"github.com/Eyevinn/mp4ff/mp4"
)

// videoCodecs is the RFC 6381 string of an encoded rendition, read from
// its own parameter sets, as players compare it with what they decode:
// the encoder picks the level (and HEVC's constraint flags) from the
// picture, the bitrate and the frame rate, so a string made from the
// ladder's settings says what was asked, not what was made. MPEG-TS
// renditions are H.264 (the SPS in the first video PES); fMP4 ones carry
// their decoder configuration in the init segment (avcC, hvcC, av1C,
// vpcC).
func videoCodecs(o Output) (string, error) {
	if o.InitPath == "" {
		return tsH264Codecs(o.Path)
	}
	init, err := os.ReadFile(o.InitPath)
	if err != nil {
		return "", err
	}
	switch o.Rung.Codec {
	case H264, "":
		rec, ok := boxPayload(init, "avcC")
		if !ok {
			return "", fmt.Errorf("%s: no avcC", o.InitPath)
		}
		conf, err := avc.DecodeAVCDecConfRec(rec)
		if err != nil {
			return "", fmt.Errorf("%s: avcC: %w", o.InitPath, err)
		}
		if len(conf.SPSnalus) == 0 {
			return "", fmt.Errorf("%s: avcC without an SPS", o.InitPath)
		}
		sps, err := avc.ParseSPSNALUnit(conf.SPSnalus[0], false)
		if err != nil {
			return "", fmt.Errorf("%s: SPS: %w", o.InitPath, err)
		}
		return strings.ToLower(avc.CodecString("avc1", sps)), nil
	case H265:
		rec, ok := boxPayload(init, "hvcC")
		if !ok {
			return "", fmt.Errorf("%s: no hvcC", o.InitPath)
		}
		conf, err := hevc.DecodeHEVCDecConfRec(rec)
		if err != nil {
			return "", fmt.Errorf("%s: hvcC: %w", o.InitPath, err)
		}
		spss := conf.GetNalusForType(hevc.NALU_SPS)
		if len(spss) == 0 {
			return "", fmt.Errorf("%s: hvcC without an SPS", o.InitPath)
		}
		sps, err := hevc.ParseSPSNALUnit(spss[0])
		if err != nil {
			return "", fmt.Errorf("%s: HEVC SPS: %w", o.InitPath, err)
		}
		return hevc.CodecString("hvc1", sps), nil // transcode tags HEVC hvc1 (Apple plays no hev1)
	case AV1:
		rec, ok := boxPayload(init, "av1C")
		if !ok {
			return "", fmt.Errorf("%s: no av1C", o.InitPath)
		}
		c, err := av1.DecodeAV1CodecConfRec(rec)
		if err != nil {
			return "", fmt.Errorf("%s: av1C: %w", o.InitPath, err)
		}
		tier, depth := "M", 8
		if c.SeqTier0 != 0 {
			tier = "H"
		}
		if c.HighBitdepth != 0 {
			depth = 10
			if c.TwelveBit != 0 {
				depth = 12
			}
		}
		return fmt.Sprintf("av01.%d.%02d%s.%02d", c.SeqProfile, c.SeqLevelIdx0, tier, depth), nil
	case VP9:
		// vpcC (VP Codec ISO Media File Format Binding): version and
		// flags, then profile, level, bit depth in the high 4 bits.
		rec, ok := boxPayload(init, "vpcC")
		if !ok || len(rec) < 7 {
			return "", fmt.Errorf("%s: no vpcC", o.InitPath)
		}
		return fmt.Sprintf("vp09.%02d.%02d.%02d", rec[4], rec[5], rec[6]>>4), nil
	}
	return "", fmt.Errorf("%s: no codec string for %s", o.InitPath, o.Rung.Codec)
}

// audioCodecs is an fMP4 AAC rendition's mp4a.40.<audio object type>,
// from the AudioSpecificConfig in its init segment's esds; an init
// without one is an error (MSE will not append it).
func audioCodecs(o Output) (string, error) {
	f, err := os.Open(o.InitPath)
	if err != nil {
		return "", err
	}
	defer f.Close()
	parsed, err := mp4.DecodeFile(f)
	if err != nil {
		return "", fmt.Errorf("%s: %w", o.InitPath, err)
	}
	if parsed.Init == nil || parsed.Init.Moov.Trak == nil {
		return "", fmt.Errorf("%s: no track", o.InitPath)
	}
	// The sample entry is mp4a, or enca once cbcs protected it.
	var entry *mp4.AudioSampleEntryBox
	for _, c := range parsed.Init.Moov.Trak.Mdia.Minf.Stbl.Stsd.Children {
		if a, ok := c.(*mp4.AudioSampleEntryBox); ok {
			entry = a
			break
		}
	}
	if entry == nil || entry.Esds == nil || entry.Esds.DecConfigDescriptor == nil ||
		entry.Esds.DecConfigDescriptor.DecSpecificInfo == nil {
		return "", fmt.Errorf("%s: no AudioSpecificConfig", o.InitPath)
	}
	asc, err := aac.DecodeAudioSpecificConfig(bytes.NewReader(entry.Esds.DecConfigDescriptor.DecSpecificInfo.DecConfig))
	if err != nil {
		return "", fmt.Errorf("%s: AudioSpecificConfig: %w", o.InitPath, err)
	}
	return fmt.Sprintf("mp4a.40.%d", asc.ObjectType), nil
}

// boxPayload finds the first box of type typ in an MP4 (an init segment:
// a few hundred bytes) by its four-character code, and returns its body.
func boxPayload(b []byte, typ string) ([]byte, bool) {
	for from := 0; ; {
		i := bytes.Index(b[from:], []byte(typ))
		if i < 0 {
			return nil, false
		}
		at := from + i
		if at >= 4 {
			size := int(binary.BigEndian.Uint32(b[at-4:]))
			if size >= 8 && at-4+size <= len(b) {
				return b[at+4 : at-4+size], true
			}
		}
		from = at + 1
	}
}

// tsH264Codecs reads avc1.PPCCLL off the first SPS of an MPEG-TS file:
// the payload of the first video PES (stream id 0xE0-0xEF), which an
// encoder opens with its parameter sets.
func tsH264Codecs(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	buf := make([]byte, 512*tsPacket) // the first PES is an IDR: it may be large
	n, err := io.ReadFull(f, buf)
	if err != nil && err != io.ErrUnexpectedEOF {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	var pes []byte
	pid := -1
	for p := 0; p+tsPacket <= n; p += tsPacket {
		pkt := buf[p : p+tsPacket]
		if pkt[0] != 0x47 {
			return "", fmt.Errorf("%s: no sync byte at offset %d", path, p)
		}
		start, this := pkt[1]&0x40 != 0, int(pkt[1]&0x1f)<<8|int(pkt[2])
		body := pkt[4:]
		if pkt[3]&0x20 != 0 { // adaptation field first
			if int(pkt[4])+1 > len(body) {
				continue
			}
			body = body[1+int(pkt[4]):]
		}
		if pkt[3]&0x10 == 0 {
			continue // no payload
		}
		switch {
		case pid < 0 && start && len(body) >= 9 && body[0] == 0 && body[1] == 0 && body[2] == 1 && body[3]&0xf0 == 0xe0:
			pid, pes = this, append(pes, body[9+int(body[8]):]...)
		case this == pid && start:
			p = n // the next PES: the first is whole
		case this == pid:
			pes = append(pes, body...)
		}
	}
	for _, nalu := range avc.ExtractNalusFromByteStream(pes) {
		if len(nalu) > 0 && avc.GetNaluType(nalu[0]) == avc.NALU_SPS {
			sps, err := avc.ParseSPSNALUnit(nalu, false)
			if err != nil {
				return "", fmt.Errorf("%s: SPS: %w", path, err)
			}
			return strings.ToLower(avc.CodecString("avc1", sps)), nil
		}
	}
	return "", fmt.Errorf("%s: no SPS in the first video PES", path)
}
