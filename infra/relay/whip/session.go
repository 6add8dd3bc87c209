package whip

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"
	"github.com/pion/webrtc/v4/pkg/media/samplebuilder"

	"github.com/segflow/segflow/infra/relay/publish"
	"github.com/segflow/segflow/infra/relay/rtc"
)

// session is one WHIP publish: its peer connection, the clocks that put
// its tracks on one timeline, and the stream it feeds once the first
// keyframe is in.
type session struct {
	s        *Server
	id, name string
	log      *slog.Logger
	pc       *webrtc.PeerConnection
	audio    bool // the answer took an Opus track
	// epoch is the session's time zero: each track's first packet is
	// placed on it by its arrival, the rest by their RTP timestamps.
	epoch   time.Time
	ctx     context.Context
	cancel  context.CancelFunc
	readers sync.WaitGroup

	// mu orders the stream's writes: video and audio arrive on two
	// goroutines, the segmenter takes one at a time.
	mu   sync.Mutex
	st   publish.Stream
	base time.Duration // the first keyframe's time: the stream's zero
	aac  *opusToAAC
	vp8  *vp8ToH264 // a VP8 publisher's (set by the video reader)
	// ending: run is tearing the session down; no new track is read.
	ending bool
	// opusNext is the RTP timestamp the next Opus packet should have
	// (the audio reader's alone).
	opusNext uint32

	videoSSRC  atomic.Uint32 // the video track read (the first)
	audioTaken atomic.Bool   // an audio track is read (the first)
	needKey    atomic.Bool   // frames are dropped until a keyframe
	// segKey is when the keyframe that began the segment being cut
	// arrived (unix ns), segKeyAt its time: keyframes in between (a
	// browser sends one when it changes resolution) start no segment.
	segKey   atomic.Int64
	segKeyAt time.Duration // the video reader's alone
	lastPLI  atomic.Int64  // when one was last asked for

	closeOnce sync.Once
	why       string
}

func newSession(s *Server, id, name string) (*session, error) {
	pc, err := s.rtc.API.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return nil, fmt.Errorf("whip %s: %w", name, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ss := &session{s: s, id: id, name: name, pc: pc, epoch: time.Now(), ctx: ctx, cancel: cancel,
		log: s.host.Logger().With("stream", name, "whip_session", id[:8])}
	ss.needKey.Store(true)
	pc.OnTrack(ss.onTrack)
	pc.OnConnectionStateChange(func(state webrtc.PeerConnectionState) {
		switch state {
		case webrtc.PeerConnectionStateFailed, webrtc.PeerConnectionStateClosed:
			// Failed is ICETimeout of silence: a publisher gone without
			// its DELETE.
			ss.close("connection " + state.String())
		}
	})
	return ss, nil
}

// negotiate answers offer, with every candidate gathered.
func (ss *session) negotiate(ctx context.Context, offer string) (string, error) {
	answer, audio, err := ss.s.rtc.Answer(ctx, ss.pc, offer, "recvonly", nil)
	if err != nil {
		return "", err
	}
	ss.audio = audio
	return answer, nil
}

// onTrack reads the session's first video and first audio track; any
// other (a second camera, simulcast layers) is ignored: one publish is
// one picture.
func (ss *session) onTrack(track *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
	// Under mu, with ending: run waits for the readers only once none
	// can be added.
	ss.mu.Lock()
	if ss.ending {
		ss.mu.Unlock()
		return
	}
	ss.readers.Add(1)
	ss.mu.Unlock()
	defer ss.readers.Done()
	mime := track.Codec().MimeType
	video := strings.EqualFold(mime, webrtc.MimeTypeH264) || strings.EqualFold(mime, webrtc.MimeTypeVP8)
	switch {
	case video && ss.videoSSRC.CompareAndSwap(0, uint32(track.SSRC())):
		ss.pli("start")
		var dp rtp.Depacketizer = &codecs.H264Packet{}
		on := ss.onVideo
		if strings.EqualFold(mime, webrtc.MimeTypeVP8) {
			dp, on = &codecs.VP8Packet{}, ss.onVP8
		}
		ss.read(track, samplebuilder.New(512, dp, 90000, samplebuilder.WithMaxTimeDelay(500*time.Millisecond)), 90000, on)
	case strings.EqualFold(mime, webrtc.MimeTypeOpus) && ss.audioTaken.CompareAndSwap(false, true):
		ss.read(track, samplebuilder.New(64, &codecs.OpusPacket{}, opusRate, samplebuilder.WithMaxTimeDelay(200*time.Millisecond)),
			opusRate, ss.onOpus)
	default:
		ss.log.Warn("whip: track ignored", "codec", mime, "ssrc", track.SSRC())
	}
}

// read puts a track's packets in order, whole frames out (the sample
// builder is the jitter buffer: it waits for late packets up to its delay,
// then drops what is missing and says so), each on the session's
// timeline.
func (ss *session) read(track *webrtc.TrackRemote, sb *samplebuilder.SampleBuilder, rate int64, fn func(at time.Duration, s *media.Sample)) {
	var clk rtpClock
	for {
		p, _, err := track.ReadRTP()
		if err != nil {
			return
		}
		if !clk.set {
			clk = rtpClock{set: true, rate: rate, anchor: time.Since(ss.epoch), last: p.Timestamp}
		}
		sb.Push(p)
		for s := sb.Pop(); s != nil; s = sb.Pop() {
			fn(clk.at(s.PacketTimestamp), s)
		}
	}
}

// rtpClock places a track's RTP timestamps on the session's timeline: its
// first packet at its arrival, the rest that far on by their timestamps
// (unwrapped). Both tracks anchor by arrival, so they agree within the
// network's jitter, as RTMP's interleaving does.
type rtpClock struct {
	set    bool
	rate   int64
	anchor time.Duration
	last   uint32
	ext    int64
}

func (c *rtpClock) at(ts uint32) time.Duration {
	c.ext += int64(int32(ts - c.last))
	c.last = ts
	return c.anchor + time.Duration(c.ext*int64(time.Second)/c.rate)
}

// keyframe keeps a video track's frames decodable: after a loss it drops
// every frame until the keyframe it asks for. It says whether to keep
// this frame, at time at.
func (ss *session) keyframe(at time.Duration, s *media.Sample, key bool) bool {
	if s.PrevDroppedPackets > 0 {
		// A frame is gone: what follows refers to it.
		ss.needKey.Store(true)
		ss.pli("loss")
	}
	if key {
		// The segmenter cuts at this one if a target's worth of video
		// came since the last cut.
		if ss.segKey.Load() == 0 || at-ss.segKeyAt >= ss.s.cfg.SegmentTarget {
			ss.segKey.Store(time.Now().UnixNano())
			ss.segKeyAt = at
		}
		ss.needKey.Store(false)
		return true
	}
	return !ss.needKey.Load()
}

// onVideo takes one H.264 frame as it came.
func (ss *session) onVideo(at time.Duration, s *media.Sample) {
	var au h264.AnnexB
	if err := au.Unmarshal(s.Data); err != nil || len(au) == 0 {
		return
	}
	if ss.keyframe(at, s, h264.IsRandomAccess(au)) {
		ss.writeH264(at, au)
	}
}

// onVP8 takes one VP8 frame into its transcoder, started by the first
// keyframe.
func (ss *session) onVP8(at time.Duration, s *media.Sample) {
	key, w, h := vp8Key(s.Data)
	if !ss.keyframe(at, s, key) {
		return
	}
	if ss.vp8 == nil {
		if !key {
			return
		}
		t, err := startVP8ToH264(at, w, h, ss.writeH264)
		if err != nil {
			ss.close("vp8: " + err.Error())
			return
		}
		ss.mu.Lock()
		ss.vp8 = t
		ss.mu.Unlock()
		ss.log.Info("whip: VP8 publisher, transcoding to H.264", "width", w, "height", h)
	}
	if err := ss.vp8.WriteFrame(at, s.Data); err != nil {
		ss.close("vp8: " + err.Error())
	}
}

// writeH264 writes an access unit to the stream, which starts at the
// first keyframe.
func (ss *session) writeH264(at time.Duration, au [][]byte) {
	key := h264.IsRandomAccess(au)
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.st == nil {
		sps, pps := publish.FindNALU(au, h264.NALUTypeSPS), publish.FindNALU(au, h264.NALUTypePPS)
		if !key || sps == nil {
			return
		}
		var ac *mpeg4audio.AudioSpecificConfig
		if ss.audio {
			ac = &aacConfig
		}
		st, err := ss.s.host.Start(ss.name, sps, ac)
		if err != nil {
			ss.log.Error("whip: publish refused", "err", err)
			ss.close("start: " + err.Error())
			return
		}
		st.SetParams(sps, pps)
		if k, ok := st.(publish.KeyframeAsking); ok {
			k.AskKeyframesWith(ss.keyframeForViewers)
		}
		if o, ok := st.(publish.OpusPassing); ok && ss.audio {
			o.PassOpus()
		}
		ss.st, ss.base = st, at
		ss.log.Info("whip: publishing", "audio", ss.audio)
	}
	if err := ss.st.WriteH264(at-ss.base, at-ss.base, au); err != nil {
		ss.log.Error("whip: video refused", "err", err)
		ss.close("video: " + err.Error())
	}
}

// onOpus takes one Opus packet, conceals what is missing before it, and
// gives it to the AAC transcoder, started by the first.
func (ss *session) onOpus(at time.Duration, s *media.Sample) {
	n := rtc.OpusSamples(s.Data)
	if n == 0 {
		return
	}
	ss.mu.Lock()
	aac := ss.aac
	ss.mu.Unlock()
	if aac == nil {
		t, err := startOpusToAAC(at, ss.onAAC)
		if err != nil {
			ss.log.Error("whip: audio dropped", "err", err)
			return
		}
		ss.mu.Lock()
		ss.aac = t
		ss.mu.Unlock()
		aac = t
	} else if gap := int(int32(s.PacketTimestamp - ss.opusNext)); gap > 0 {
		// Lost packets, or silence the publisher did not send (DTX):
		// concealment frames keep the AAC count on the RTP clock. Beyond
		// a minute it is no gap but a stall; the timeline goes on.
		for gap = min(gap, 60*opusRate); gap >= 120; {
			p := lostOpus(gap)
			k := rtc.OpusSamples(p)
			if aac.WritePacket(p, k) != nil {
				return
			}
			gap -= k
		}
	}
	ss.opusNext = s.PacketTimestamp + uint32(n)
	if err := aac.WritePacket(s.Data, n); err != nil {
		ss.log.Warn("whip: audio transcoder", "err", err)
	}
	// WebRTC viewers get the packet itself, on the video's timeline.
	ss.mu.Lock()
	if o, ok := ss.st.(publish.OpusPassing); ok && at >= ss.base {
		o.WriteOpus(at-ss.base, s.Data)
	}
	ss.mu.Unlock()
}

// onAAC writes an AAC frame from the transcoder at its time.
func (ss *session) onAAC(at time.Duration, frame []byte) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.st == nil || at < ss.base {
		return // before the first keyframe, where the stream begins
	}
	if err := ss.st.WriteAAC(at-ss.base, [][]byte{frame}); err != nil {
		ss.log.Warn("whip: audio refused", "err", err)
	}
}

// pli asks the publisher for a keyframe, for the segmenter or after a
// loss.
func (ss *session) pli(why string) {
	ss.lastPLI.Store(time.Now().UnixNano())
	ss.writePLI(why)
}

// keyframeForViewers asks the publisher for a keyframe for WebRTC viewers
// that joined or lost a picture (the relay's broadcast bounds how
// often). It is not the segmenter's ask (lastPLI), so segments keep
// their length.
func (ss *session) keyframeForViewers() { ss.writePLI("viewers") }

func (ss *session) writePLI(why string) {
	ssrc := ss.videoSSRC.Load()
	if ssrc == 0 {
		return
	}
	if err := ss.pc.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: ssrc}}); err != nil {
		ss.log.Debug("whip: keyframe request", "why", why, "err", err)
	}
}

// keyframeDue says whether to ask for a keyframe now. Browsers send one
// only when asked (or when they change resolution), so the relay asks one
// segment target after the keyframe its segment began with: it is
// captured after the ask, so the segment is never shorter than the
// target, and longer only by the publisher's reaction time (~75 ms from
// Chromium on a LAN).
func (ss *session) keyframeDue(now time.Time) bool {
	sinceAsk := now.Sub(time.Unix(0, ss.lastPLI.Load()))
	if ss.needKey.Load() {
		return sinceAsk >= 500*time.Millisecond
	}
	return now.Sub(time.Unix(0, ss.segKey.Load())) >= ss.s.cfg.SegmentTarget && sinceAsk >= ss.s.cfg.SegmentTarget/2
}

// startTimeout bounds the wait for a publish's first keyframe.
const startTimeout = 15 * time.Second

// run asks for keyframes until the session closes, then ends it: the
// publish's last segment and asset, the stream's claim.
func (ss *session) run() {
	defer ss.s.wg.Done()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	start := time.Now()
loop:
	for {
		select {
		case <-ss.ctx.Done():
			break loop
		case now := <-tick.C:
			if ss.keyframeDue(now) {
				ss.pli("segment")
			}
			ss.mu.Lock()
			started := ss.st != nil
			ss.mu.Unlock()
			if !started && now.Sub(start) > startTimeout {
				ss.close(fmt.Sprintf("no H.264 keyframe in %s", startTimeout))
			}
		}
	}
	ss.pc.Close()
	ss.mu.Lock()
	ss.ending = true // no reader is added after this (onTrack)
	ss.mu.Unlock()
	ss.readers.Wait()
	ss.mu.Lock()
	aac, vp8 := ss.aac, ss.vp8
	ss.mu.Unlock()
	if vp8 != nil {
		if err := vp8.Close(); err != nil {
			ss.log.Warn("whip: video transcoder", "err", err)
		}
	}
	if aac != nil {
		if err := aac.Close(); err != nil {
			ss.log.Warn("whip: audio transcoder", "err", err)
		}
	}
	ss.mu.Lock()
	if ss.st != nil {
		ss.st.End()
	}
	ss.mu.Unlock()
	ss.s.host.Release(ss.name)
	ss.log.Info("whip: session ended", "why", ss.why)
}

// close ends the session (run does the work, its URL is gone at once);
// the first reason stays.
func (ss *session) close(why string) {
	ss.closeOnce.Do(func() {
		ss.why = why
		ss.cancel() // before the delete: open adds no cancelled session
		ss.s.mu.Lock()
		delete(ss.s.sessions, ss.id)
		ss.s.mu.Unlock()
	})
}
