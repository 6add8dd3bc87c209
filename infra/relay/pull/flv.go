package pull

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/abema/go-mp4"
	"github.com/bluenviron/gortmplib/pkg/message"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"

	"github.com/segflow/segflow/infra/relay/publish"
	"github.com/segflow/segflow/infra/relay/rtmp"
)

// maxTag bounds one FLV tag: a 4K keyframe is a few MB; a larger size
// is a broken or hostile stream.
const maxTag = 16 << 20

// getFLV reads an HTTP-FLV stream (an endless FLV file over HTTP) into
// host's stream name. FLV tags carry the bodies RTMP's media messages do,
// so each becomes the same message and takes the RTMP feed.
func getFLV(ctx context.Context, u *url.URL, host publish.Host, name string, received func(int)) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return err
	}
	// No data for HandshakeTimeout ends the connection, as a silent
	// publisher's does.
	idle := time.AfterFunc(publish.HandshakeTimeout, cancel)
	defer idle.Stop()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		host.Refused("pull")
		return fmt.Errorf("get %s: %w", u.Redacted(), err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		host.Refused("pull")
		return fmt.Errorf("get %s: %s", u.Redacted(), resp.Status)
	}
	r := bufio.NewReader(readCounter{resp.Body, func(n int) {
		if n > 0 {
			idle.Reset(publish.HandshakeTimeout)
		}
		received(n)
	}})
	head := make([]byte, 9)
	if _, err := io.ReadFull(r, head); err != nil || string(head[:3]) != "FLV" {
		host.Refused("format")
		return fmt.Errorf("%s: not FLV", u.Redacted())
	}
	if _, err := r.Discard(int(binary.BigEndian.Uint32(head[5:])) - 9); err != nil {
		return err
	}
	feed := rtmp.NewFeed(host, name)
	defer feed.End()
	tag := make([]byte, 15) // the previous tag's size, then a tag header
	for {
		if _, err := io.ReadFull(r, tag); err != nil {
			return err
		}
		size := int(tag[5])<<16 | int(tag[6])<<8 | int(tag[7])
		if size > maxTag {
			host.Refused("format")
			return fmt.Errorf("FLV tag of %d bytes", size)
		}
		dts := time.Duration(int32(uint32(tag[11])<<24|uint32(tag[8])<<16|uint32(tag[9])<<8|uint32(tag[10]))) * time.Millisecond
		body := make([]byte, size)
		if _, err := io.ReadFull(r, body); err != nil {
			return err
		}
		msg, err := flvMessage(tag[4], dts, body)
		if err != nil {
			host.Refused("format")
			return err
		}
		if msg == nil {
			continue
		}
		if err := feed.Handle(msg); err != nil {
			return err
		}
	}
}

// flvMessage is the RTMP message an FLV tag's body makes (as gortmplib
// reads a message's body); nil for tags other than H.264 and AAC.
func flvMessage(typ byte, dts time.Duration, body []byte) (message.Message, error) {
	switch typ {
	case 9: // video
		if len(body) < 5 {
			return nil, errors.New("FLV video tag too short")
		}
		v := &message.Video{DTS: dts, Codec: body[0] & 0x0f, IsKeyFrame: body[0]>>4 == 1, Type: message.VideoType(body[1]),
			PTSDelta: time.Duration(int32(uint32(body[2])<<24|uint32(body[3])<<16|uint32(body[4])<<8)>>8) * time.Millisecond}
		if v.Codec != message.CodecH264 {
			return v, nil // the feed refuses it with its reason
		}
		switch v.Type {
		case message.VideoTypeConfig:
			v.AVCConfig = &mp4.AVCDecoderConfiguration{}
			v.AVCConfig.SetType(mp4.BoxTypeAvcC())
			if _, err := mp4.Unmarshal(bytes.NewReader(body[5:]), uint64(len(body)-5), v.AVCConfig, mp4.Context{}); err != nil {
				return nil, fmt.Errorf("FLV H.264 sequence header: %w", err)
			}
		case message.VideoTypeAU:
			v.AU = body[5:]
		default:
			return nil, nil
		}
		return v, nil
	case 8: // audio
		if len(body) < 2 || body[0]>>4 != message.CodecMPEG4Audio {
			return nil, nil
		}
		a := &message.Audio{DTS: dts, Codec: message.CodecMPEG4Audio, AACType: message.AudioAACType(body[1])}
		switch a.AACType {
		case message.AudioAACTypeConfig:
			a.AACConfig = &mpeg4audio.AudioSpecificConfig{}
			if err := a.AACConfig.Unmarshal(body[2:]); err != nil {
				return nil, fmt.Errorf("FLV AAC config: %w", err)
			}
		case message.AudioAACTypeAU:
			a.AU = body[2:]
		}
		return a, nil
	}
	return nil, nil // script data (onMetaData) and the rest
}
