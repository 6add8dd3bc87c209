package whep

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// viewer is one WHEP session: a peer connection with its own video and
// audio tracks (each viewer starts at its own keyframe, so each has its
// own sequence numbers), fed by the broadcast.
type viewer struct {
	s        *Server
	id       string
	b        *Broadcast
	log      *slog.Logger
	pc       *webrtc.PeerConnection
	video    *webrtc.TrackLocalStaticRTP
	audio    *webrtc.TrackLocalStaticRTP
	hasAudio bool
	vp8      bool // the viewer takes VP8, not H.264 (Broadcast.writeVP8)

	// Under the broadcast's lock: whether video started (at a keyframe),
	// and each track's next sequence number.
	started    bool
	audioOn    bool // since video first started, so both begin together
	vseq, aseq uint16

	closeOnce sync.Once
	done      chan struct{}
}

func newViewer(s *Server, id string, b *Broadcast) (*viewer, error) {
	pc, err := s.rtc.API.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return nil, err
	}
	v := &viewer{s: s, id: id, b: b, pc: pc, done: make(chan struct{}),
		log: s.log.With("stream", b.name, "whep_session", id[:8])}
	pc.OnConnectionStateChange(func(state webrtc.PeerConnectionState) {
		switch state {
		case webrtc.PeerConnectionStateConnected:
			// Frames go to a viewer once it is connected: pion's writes
			// wait for the connection, and one viewer that never comes
			// must not hold up the others.
			if !b.add(v) {
				v.close("stream ended")
			}
		case webrtc.PeerConnectionStateFailed, webrtc.PeerConnectionStateClosed:
			// Failed is the ICE timeout: a viewer gone without DELETE.
			v.close("connection " + state.String())
		}
	})
	return v, nil
}

// negotiate answers the viewer's offer with the stream's tracks.
func (v *viewer) negotiate(ctx context.Context, offer string) (string, error) {
	// A browser that offers no H.264 gets VP8, encoded once per stream.
	v.vp8 = !strings.Contains(offer, " H264/90000") && strings.Contains(offer, " VP8/90000")
	answer, _, err := v.s.rtc.Answer(ctx, v.pc, offer, "sendonly", func() error {
		video := webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000,
			SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=" + v.b.Profile}
		if v.vp8 {
			video = webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}
		}
		var err error
		v.video, err = webrtc.NewTrackLocalStaticRTP(video, "video", "segflow-"+v.b.name)
		if err != nil {
			return err
		}
		sender, err := v.pc.AddTrack(v.video)
		if err != nil {
			return fmt.Errorf("video track: %w", err)
		}
		go v.readRTCP(sender)
		if v.b.audio == nil {
			return nil
		}
		v.audio, err = webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2},
			"audio", "segflow-"+v.b.name)
		if err != nil {
			return err
		}
		if sender, err = v.pc.AddTrack(v.audio); err != nil {
			return fmt.Errorf("audio track: %w", err)
		}
		v.hasAudio = true
		go v.readRTCP(sender)
		return nil
	})
	return answer, err
}

// readRTCP reads what the viewer reports (the interceptors answer NACKs
// from it); a PLI, a picture the viewer lost, makes it wait for the next
// keyframe rather than show a broken one.
func (v *viewer) readRTCP(s *webrtc.RTPSender) {
	for {
		pkts, _, err := s.ReadRTCP()
		if err != nil {
			return
		}
		for _, p := range pkts {
			switch p.(type) {
			case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
				v.b.mu.Lock()
				v.started = false
				v.b.mu.Unlock()
			}
		}
	}
}

// writeVideo sends one access unit's packets (under the broadcast's lock).
func (v *viewer) writeVideo(ts uint32, key bool, payloads [][]byte) {
	if !v.started {
		if !key {
			return
		}
		v.started, v.audioOn = true, true
	}
	for i, p := range payloads {
		pkt := &rtp.Packet{Header: rtp.Header{Version: 2, Marker: i == len(payloads)-1, SequenceNumber: v.vseq, Timestamp: ts}, Payload: p}
		v.vseq++
		v.video.WriteRTP(pkt) // a closed connection's error ends it through its state
	}
}

// writeAudio sends one Opus packet (under the broadcast's lock), once
// video has started so both begin together.
func (v *viewer) writeAudio(ts uint32, packet []byte) {
	if !v.hasAudio || !v.audioOn {
		return
	}
	v.audio.WriteRTP(&rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: v.aseq, Timestamp: ts}, Payload: packet})
	v.aseq++
}

// close ends the session; the first reason is logged.
func (v *viewer) close(why string) {
	v.closeOnce.Do(func() {
		v.s.mu.Lock()
		delete(v.s.viewers, v.id)
		v.s.mu.Unlock()
		v.b.remove(v)
		v.pc.Close()
		close(v.done)
		v.s.metricViewers(v.b.name, -1)
		v.log.Info("whep: viewer left", "why", why)
	})
}
