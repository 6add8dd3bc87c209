package relay_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"net/url"
	"os"
	"time"

	"github.com/bluenviron/gortmplib"
	"github.com/bluenviron/gortmplib/pkg/codecs"
	"github.com/bluenviron/gortmplib/pkg/message"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
)

// flvTag is one audio or video tag of an FLV file: its body is an RTMP
// message's payload as it is.
type flvTag struct {
	video bool
	ts    time.Duration
	body  []byte
}

// flvFile is a pre-encoded H.264/AAC FLV, read once and replayed by many
// publishers: each costs a write per tag, no encode and no demux, so
// hundreds fit beside the server they load.
type flvFile struct {
	sps, pps []byte
	aac      *mpeg4audio.AudioSpecificConfig
	tags     []flvTag // frames only, in file order
	duration time.Duration
}

func readFLV(path string) (*flvFile, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if len(b) < 13 || string(b[:3]) != "FLV" {
		return nil, fmt.Errorf("%s: not FLV", path)
	}
	f := &flvFile{}
	for p := int(binary.BigEndian.Uint32(b[5:9])) + 4; p+11 <= len(b); {
		typ, size := b[p], int(b[p+1])<<16|int(b[p+2])<<8|int(b[p+3])
		ts := time.Duration(uint32(b[p+7])<<24|uint32(b[p+4])<<16|uint32(b[p+5])<<8|uint32(b[p+6])) * time.Millisecond
		if p+11+size > len(b) {
			break
		}
		body := b[p+11 : p+11+size]
		p += 11 + size + 4
		switch {
		case typ == 9 && len(body) > 5 && body[1] == 0: // AVC sequence header: avcC
			if err := f.parseAvcC(body[5:]); err != nil {
				return nil, err
			}
		case typ == 9 && len(body) > 5 && body[1] == 1:
			f.tags = append(f.tags, flvTag{video: true, ts: ts, body: body})
		case typ == 8 && len(body) > 2 && body[1] == 0: // AAC sequence header
			f.aac = &mpeg4audio.AudioSpecificConfig{}
			if err := f.aac.Unmarshal(body[2:]); err != nil {
				return nil, err
			}
		case typ == 8 && len(body) > 2:
			f.tags = append(f.tags, flvTag{ts: ts, body: body})
		}
		f.duration = max(f.duration, ts)
	}
	if f.sps == nil || f.aac == nil || len(f.tags) == 0 {
		return nil, fmt.Errorf("%s: no H.264 and AAC", path)
	}
	// A frame's length, so the next loop does not repeat the last time.
	f.duration += 33 * time.Millisecond
	return f, nil
}

func (f *flvFile) parseAvcC(c []byte) error {
	if len(c) < 8 {
		return fmt.Errorf("avcC too short")
	}
	n := int(binary.BigEndian.Uint16(c[6:8]))
	if len(c) < 8+n+3 {
		return fmt.Errorf("avcC too short")
	}
	f.sps = c[8 : 8+n]
	c = c[8+n:]
	m := int(binary.BigEndian.Uint16(c[1:3]))
	if len(c) < 3+m {
		return fmt.Errorf("avcC too short")
	}
	f.pps = c[3 : 3+m]
	return nil
}

// publish sends the file to rtmpURL in real time, looping, until d has
// passed. gortmplib takes the stream key from the URL's fragment
// (rtmp://host/live#key: application live, stream key), the whole path
// being the application.
func (f *flvFile) publish(ctx context.Context, rtmpURL string, d time.Duration) error {
	u, err := url.Parse(rtmpURL)
	if err != nil {
		return err
	}
	c := &gortmplib.Client{URL: u, Publish: true}
	if err := c.Initialize(ctx); err != nil {
		return err
	}
	defer c.Close()
	video := &gortmplib.Track{Codec: &codecs.H264{SPS: f.sps, PPS: f.pps}}
	audio := &gortmplib.Track{Codec: &codecs.MPEG4Audio{Config: f.aac}}
	w := &gortmplib.Writer{Conn: c, Tracks: []*gortmplib.Track{video, audio}}
	if err := w.Initialize(); err != nil {
		return err
	}
	start := time.Now()
	for loop := time.Duration(0); loop < d; loop += f.duration {
		for _, t := range f.tags {
			at := loop + t.ts
			if at >= d {
				return nil
			}
			if wait := time.Until(start.Add(at)); wait > 0 {
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-time.After(wait):
				}
			}
			var msg message.Message
			if t.video {
				cts := time.Duration(int32(uint32(t.body[2])<<24|uint32(t.body[3])<<16|uint32(t.body[4])<<8)>>8) * time.Millisecond
				msg = &message.Video{ChunkStreamID: message.VideoChunkStreamID, MessageStreamID: 0x1000000,
					Codec: message.CodecH264, IsKeyFrame: t.body[0]>>4 == 1, Type: message.VideoTypeAU,
					AU: t.body[5:], DTS: at, PTSDelta: cts}
			} else {
				msg = &message.Audio{ChunkStreamID: message.AudioChunkStreamID, MessageStreamID: 0x1000000,
					Codec: message.CodecMPEG4Audio, Rate: message.AudioRate44100, Depth: message.AudioDepth16,
					IsStereo: true, AACType: message.AudioAACTypeAU, AU: t.body[2:], DTS: at}
			}
			if err := c.Write(msg); err != nil {
				return err
			}
		}
	}
	return nil
}
