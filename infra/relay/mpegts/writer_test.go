package mpegts

import (
	"bytes"
	"testing"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
)

func TestTSWriterTablesAndHeaders(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf, &mpeg4audio.AudioSpecificConfig{Type: 2, SampleRate: 48000, ChannelConfig: 2})
	if err := w.WriteTables(); err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	if len(b) != 2*tsPacketSize || b[0] != 0x47 || b[tsPacketSize] != 0x47 {
		t.Fatalf("tables: %d bytes", len(b))
	}
	// The PAT is byte for byte ffmpeg's (program 1 -> PMT 0x1000), CRC included.
	if want := []byte{0x00, 0xb0, 0x0d, 0x00, 0x01, 0xc1, 0x00, 0x00, 0x00, 0x01, 0xf0, 0x00, 0x2a, 0xb1, 0x04, 0xb2}; !bytes.Equal(b[5:21], want) {
		t.Fatalf("PAT % x, want % x", b[5:21], want)
	}

	tests := []struct {
		name     string
		pts, dts int64
		want     []byte
	}{
		{"pts only", 90000, 90000, []byte{0x80, 0x80, 5, 0x21, 0x00, 0x05, 0xbf, 0x21}},
		{"pts and dts", 93003, 90000, []byte{0x80, 0xc0, 10, 0x31, 0x00, 0x05, 0xd6, 0x97, 0x11, 0x00, 0x05, 0xbf, 0x21}},
		{"33-bit wrap keeps the low bits", 1<<33 + 90000, 1<<33 + 90000, []byte{0x80, 0x80, 5, 0x21, 0x00, 0x05, 0xbf, 0x21}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := appendPESHeader(nil, 0xe0, tc.pts, tc.dts, 0)
			if !bytes.Equal(h[6:], tc.want) {
				t.Fatalf("header % x, want % x", h[6:], tc.want)
			}
		})
	}

	// ADTS: 7 bytes with the frame length; configurations it cannot say
	// are refused, not written wrong.
	a, err := appendADTS(nil, w.audio, 100)
	if err != nil || len(a) != 7 || a[0] != 0xff || a[1] != 0xf1 || int(a[3]&3)<<11|int(a[4])<<3|int(a[5]>>5) != 107 {
		t.Fatalf("adts % x %v", a, err)
	}
	for _, c := range []mpeg4audio.AudioSpecificConfig{{Type: 2, SampleRate: 47999, ChannelConfig: 2}, {Type: 2, SampleRate: 48000, ChannelConfig: 0}, {Type: 29, SampleRate: 48000, ChannelConfig: 2}} {
		if _, err := appendADTS(nil, &c, 10); err == nil {
			t.Errorf("%+v accepted", c)
		}
	}

	// A packetized PES fills whole packets and keeps the continuity counter.
	buf.Reset()
	au := [][]byte{{0x65, 1, 2, 3}, bytes.Repeat([]byte{9}, 1000)}
	if err := w.WriteH264(93003, 90000, au); err != nil {
		t.Fatal(err)
	}
	out := buf.Bytes()
	if len(out)%tsPacketSize != 0 {
		t.Fatalf("%d bytes is not whole packets", len(out))
	}
	for i := 0; i < len(out)/tsPacketSize; i++ {
		p := out[i*tsPacketSize:]
		if p[0] != 0x47 || int(p[3]&0x0f) != i || (p[1]&0x40 != 0) != (i == 0) {
			t.Fatalf("packet %d header % x", i, p[:4])
		}
	}
	if out[5]&0x50 != 0x50 { // first packet: random access and PCR
		t.Fatalf("adaptation flags %02x", out[5])
	}
}
