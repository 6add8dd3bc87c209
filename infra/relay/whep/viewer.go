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
// from it): a PLI, a picture the viewer lost, makes it wait for the next
// keyframe rather than show a broken one (asked of a source that can
// make one); a receiver report's growing
// cumulative loss of this sender's track is counted (OnLost).
func (v *viewer) readRTCP(s *webrtc.RTPSender) {
	var ssrc webrtc.SSRC
	if enc := s.GetParameters().Encodings; len(enc) > 0 {
		ssrc = enc[0].SSRC
	}
	var reported uint32
	for {
		pkts, _, err := s.ReadRTCP()
		if err != nil {
			return
		}
		for _, p := range pkts {
			switch p := p.(type) {
			case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
				v.b.mu.Lock()
				v.started = false
				v.b.mu.Unlock()
				v.b.askKeyframe()
			case *rtcp.ReceiverReport:
				for _, r := range p.Reports {
					if webrtc.SSRC(r.SSRC) != ssrc {
						continue
					}
					// Retransmissions that arrive late take packets off
					// the count; only growth is new loss.
					if r.TotalLost > reported && v.b.OnLost != nil {
						v.b.mu.Lock()
						v.b.OnLost(int(r.TotalLost - reported))
						v.b.mu.Unlock()
					}
					reported = r.TotalLost
				}
			}
		}
	}
}

// writeVideo sends one access unit's packets (under the broadcast's
// lock): how many, and their payload bytes.
func (v *viewer) writeVideo(ts uint32, key bool, payloads [][]byte) (packets, bytes int) {
	if !v.started {
		if !key {
			return 0, 0
		}
		v.started, v.audioOn = true, true
	}
	for i, p := range payloads {
		pkt := &rtp.Packet{Header: rtp.Header{Version: 2, Marker: i == len(payloads)-1, SequenceNumber: v.vseq, Timestamp: ts}, Payload: p}
		v.vseq++
		v.video.WriteRTP(pkt) // a closed connection's error ends it through its state
		bytes += len(p)
	}
	return len(payloads), bytes
}

// writeAudio sends one Opus packet (under the broadcast's lock), once
// video has started so both begin together; false if it did not.
func (v *viewer) writeAudio(ts uint32, packet []byte) bool {
	if !v.hasAudio || !v.audioOn {
		return false
	}
	v.audio.WriteRTP(&rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: v.aseq, Timestamp: ts}, Payload: packet})
	v.aseq++
	return true
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
