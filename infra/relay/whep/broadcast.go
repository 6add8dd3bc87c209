package whep

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v4/pkg/media/oggreader"

	"github.com/segflow/segflow/infra/relay/rtc"
)

// mtu bounds an RTP packet's payload: under any path's MTU once SRTP,
// UDP and IP add theirs.
const mtu = 1200

// Broadcast is one live stream as its WebRTC viewers get it: the relay's
// stream feeds it the source's frames; each H.264 access unit is
// packetized once and sent to every viewer that has started (at a
// keyframe); the AAC audio becomes Opus once, shared by all, by one ffmpeg
// that runs while anyone watches.
type Broadcast struct {
	name  string
	audio *mpeg4audio.AudioSpecificConfig
	// Profile is the source's profile-level-id (hex, from its SPS), for
	// the viewers' H.264 tracks.
	Profile string
	log     *slog.Logger
	// OnSent is told what each write sent (RTP packets and their bytes,
	// every viewer's counted) and OnLost what viewers' receiver reports
	// newly count as lost; set before the first viewer comes, called
	// under the broadcast's lock. Nil: not counted.
	OnSent func(packets, bytes int)
	OnLost func(packets int)
	// AskKeyframe, when the source can be asked (a WHIP publisher), asks
	// it for a keyframe: for a viewer that joins or loses a picture, at
	// most once a second (askedAt). Set before the first viewer comes.
	AskKeyframe func()
	askedAt     atomic.Int64
	// OpusIn: the source's audio comes as Opus (WriteOpus, a WHIP
	// publisher's packets), which viewers get as it is; WriteAAC then
	// feeds them nothing. Set before the first viewer comes.
	OpusIn bool

	mu      sync.Mutex
	viewers map[*viewer]bool
	opus    *aacToOpus
	vp8     *vp8Encoder // while a viewer without H.264 watches
	// vp8Payloader numbers the VP8 frames (picture ID) across the
	// stream: a browser drops a frame whose ID repeats the last one's.
	vp8Payloader codecs.VP8Payloader
	ended        bool
}

// NewBroadcast is the broadcast of stream name, whose H.264 has sps and
// whose audio is AAC with audio's configuration (nil: none).
func NewBroadcast(name string, sps []byte, audio *mpeg4audio.AudioSpecificConfig, log *slog.Logger) *Broadcast {
	profile := "42e01f"
	if len(sps) >= 4 {
		profile = fmt.Sprintf("%02x%02x%02x", sps[1], sps[2], sps[3])
	}
	return &Broadcast{name: name, audio: audio, Profile: profile, log: log, viewers: map[*viewer]bool{}}
}

// Viewers is how many watch now.
func (b *Broadcast) Viewers() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.viewers)
}

// add makes v a viewer, once connected, and asks the source for the
// keyframe it starts at; false once the stream has ended.
func (b *Broadcast) add(v *viewer) bool {
	b.mu.Lock()
	if b.ended {
		b.mu.Unlock()
		return false
	}
	b.viewers[v] = true
	b.mu.Unlock()
	b.askKeyframe()
	return true
}

// askKeyframe asks the source for a keyframe, unless it was asked less
// than a second ago: a crowd joining at once costs one keyframe, not one
// each (every keyframe is a burst of bits for every viewer).
func (b *Broadcast) askKeyframe() {
	if b.AskKeyframe == nil {
		return
	}
	now, last := time.Now().UnixNano(), b.askedAt.Load()
	if now-last < int64(time.Second) || !b.askedAt.CompareAndSwap(last, now) {
		return
	}
	b.AskKeyframe()
}

// remove drops v; the last viewer out stops the audio transcoder, the
// last VP8 viewer the VP8 encoder.
func (b *Broadcast) remove(v *viewer) {
	b.mu.Lock()
	delete(b.viewers, v)
	var stop []interface{ Close() error }
	if len(b.viewers) == 0 && b.opus != nil {
		stop, b.opus = append(stop, b.opus), nil
	}
	if b.vp8 != nil && !b.hasVP8Viewer() {
		stop, b.vp8 = append(stop, b.vp8), nil
	}
	b.mu.Unlock()
	for _, t := range stop {
		t.Close()
	}
}

func (b *Broadcast) hasVP8Viewer() bool {
	for v := range b.viewers {
		if v.vp8 {
			return true
		}
	}
	return false
}

// WriteH264 sends one access unit at pts to every H.264 viewer, each
// starting at a keyframe, and to the VP8 encoder while VP8 viewers watch.
func (b *Broadcast) WriteH264(pts time.Duration, au [][]byte) {
	b.mu.Lock()
	if len(b.viewers) == 0 {
		b.mu.Unlock()
		return
	}
	key := h264.IsRandomAccess(au)
	annexb, err := h264.AnnexB(au).Marshal()
	if err != nil {
		b.mu.Unlock()
		return
	}
	payloads := (&codecs.H264Payloader{}).Payload(mtu, annexb)
	ts := uint32(int64(pts) * 90000 / int64(time.Second))
	var sent, bytes int
	for v := range b.viewers {
		if !v.vp8 {
			n, size := v.writeVideo(ts, key, payloads)
			sent, bytes = sent+n, bytes+size
		}
	}
	b.sent(sent, bytes)
	if b.vp8 == nil && b.hasVP8Viewer() {
		if !key {
			b.mu.Unlock()
			return // the encoder starts at a keyframe
		}
		t, err := startVP8Encoder(b.writeVP8, b.log.With("stream", b.name))
		if err != nil {
			b.log.Warn("whep: no VP8 for viewers", "stream", b.name, "err", err)
			b.mu.Unlock()
			return
		}
		b.vp8 = t
	}
	if b.vp8 != nil {
		b.vp8.write(annexb, key) // never waits for the encoder
	}
	b.mu.Unlock()
}

// writeVP8 sends one VP8 frame at ts (90 kHz) to every VP8 viewer.
func (b *Broadcast) writeVP8(ts uint32, frame []byte) {
	key := len(frame) > 0 && frame[0]&1 == 0
	b.mu.Lock()
	defer b.mu.Unlock()
	b.vp8Payloader.EnablePictureID = true
	payloads := b.vp8Payloader.Payload(mtu, frame)
	var sent, bytes int
	for v := range b.viewers {
		if v.vp8 {
			n, size := v.writeVideo(ts, key, payloads)
			sent, bytes = sent+n, bytes+size
		}
	}
	b.sent(sent, bytes)
}

// sent counts packets that went out (under the lock).
func (b *Broadcast) sent(packets, bytes int) {
	if packets > 0 && b.OnSent != nil {
		b.OnSent(packets, bytes)
	}
}

// WriteAAC gives AAC frames starting at pts to the Opus transcoder, which
// the first viewer starts.
func (b *Broadcast) WriteAAC(pts time.Duration, aus [][]byte) {
	b.mu.Lock()
	if len(b.viewers) == 0 || b.audio == nil || b.OpusIn {
		b.mu.Unlock()
		return
	}
	if b.opus == nil {
		t, err := startAACToOpus(pts, *b.audio, b.writeOpus)
		if err != nil {
			b.log.Warn("whep: no audio for viewers", "stream", b.name, "err", err)
			b.audio = nil
			b.mu.Unlock()
			return
		}
		b.opus = t
	}
	t := b.opus
	// Written unlocked: ffmpeg's output goes through writeOpus, which
	// locks; a full pipe must not wait on it.
	b.mu.Unlock()
	if err := t.WriteAAC(aus); err != nil {
		b.log.Warn("whep: audio transcoder", "stream", b.name, "err", err)
	}
}

// WriteOpus sends one of the source's Opus packets, at pts, to every
// viewer (OpusIn).
func (b *Broadcast) WriteOpus(pts time.Duration, packet []byte) {
	if b.OpusIn && b.audio != nil {
		b.writeOpus(pts, packet)
	}
}

func (b *Broadcast) writeOpus(pts time.Duration, packet []byte) {
	b.mu.Lock()
	defer b.mu.Unlock()
	ts := uint32(int64(pts) * rtc.OpusRate / int64(time.Second))
	sent := 0
	for v := range b.viewers {
		if v.writeAudio(ts, packet) {
			sent++
		}
	}
	b.sent(sent, sent*len(packet))
}

// End ends every viewer's session: the stream stopped.
func (b *Broadcast) End() {
	b.mu.Lock()
	b.ended = true
	vs := make([]*viewer, 0, len(b.viewers))
	for v := range b.viewers {
		vs = append(vs, v)
	}
	b.mu.Unlock()
	for _, v := range vs {
		v.close("stream ended")
	}
}

// aacToOpus is a broadcast's audio as WebRTC carries it: AAC frames in
// (as ADTS), Opus packets out with their times, through one ffmpeg.
type aacToOpus struct {
	*rtc.Pipe
	conf mpeg4audio.AudioSpecificConfig
}

func startAACToOpus(start time.Duration, conf mpeg4audio.AudioSpecificConfig, onPacket func(pts time.Duration, p []byte)) (*aacToOpus, error) {
	p, err := rtc.StartPipe([]string{"-f", "aac", "-i", "pipe:0",
		"-c:a", "libopus", "-b:a", "96k", "-ar", "48000", "-ac", "2", "-frame_duration", "20", "-application", "lowdelay",
		"-f", "ogg", "-page_duration", "20000", "-flush_packets", "1", "pipe:1"},
		func(out io.Reader) error { readOgg(bufio.NewReader(out), start, onPacket); return nil })
	if err != nil {
		return nil, fmt.Errorf("aac to opus: %w", err)
	}
	return &aacToOpus{Pipe: p, conf: conf}, nil
}

// readOgg calls fn with every Opus packet of an Ogg stream of one packet
// per page, at start plus its first sample's time (after the pre-skip).
func readOgg(r io.Reader, start time.Duration, fn func(pts time.Duration, p []byte)) {
	rd, head, err := oggreader.NewWith(r)
	if err != nil {
		return
	}
	for {
		page, hdr, err := rd.ParseNextPage()
		if err != nil {
			return
		}
		if bytes.HasPrefix(page, []byte("OpusTags")) {
			continue
		}
		n := rtc.OpusSamples(page)
		first := int64(hdr.GranulePosition) - int64(n) - int64(head.PreSkip)
		if first < 0 {
			continue // the encoder's priming, before the first frame
		}
		fn(start+time.Duration(first*int64(time.Second)/rtc.OpusRate), page)
	}
}

// WriteAAC gives the transcoder AAC frames.
func (t *aacToOpus) WriteAAC(aus [][]byte) error {
	pkts := make(mpeg4audio.ADTSPackets, len(aus))
	for i, au := range aus {
		pkts[i] = &mpeg4audio.ADTSPacket{Type: t.conf.Type, SampleRate: t.conf.SampleRate, ChannelConfig: t.conf.ChannelConfig, AU: au}
	}
	b, err := pkts.Marshal()
	if err != nil {
		return err
	}
	_, err = t.Write(b)
	return err
}
