package relay

import (
	"errors"
	"fmt"
	"net"
	"path"
	"time"

	"github.com/bluenviron/gortmplib"
	"github.com/bluenviron/gortmplib/pkg/message"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
)

// handshakeTimeout bounds the RTMP handshake and the wait for media, so
// a peer that sends garbage or stops half-way ties up nothing.
const handshakeTimeout = 10 * time.Second

func (r *Relay) listenRTMP(addr string) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("relay: rtmp listen %s: %w", addr, err)
	}
	r.rtmp = l
	r.log.Info("relay: rtmp listening", "addr", l.Addr().String())
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			if !r.track(c, true) {
				c.Close()
				return
			}
			r.wg.Add(1)
			go func() {
				defer r.wg.Done()
				defer r.track(c, false)
				defer c.Close()
				if err := r.serveRTMP(c); err != nil {
					r.log.Info("relay: rtmp connection closed", "remote", c.RemoteAddr().String(), "err", err.Error())
				}
			}()
		}
	}()
	return nil
}

// serveRTMP takes one publisher: rtmp://host/live/<stream key>.
func (r *Relay) serveRTMP(c net.Conn) error {
	if wait := r.backingOff("rtmp", c.RemoteAddr()); wait > 0 {
		return fmt.Errorf("refused for %s more after wrong stream keys", wait.Round(time.Second))
	}
	c.SetDeadline(time.Now().Add(handshakeTimeout))
	rw := newPacedConn(c)
	sc := &gortmplib.ServerConn{RW: rw}
	name, err := r.acceptRTMP(sc, c.RemoteAddr())
	if err != nil {
		return err
	}
	defer r.release(name)
	if err := sc.AcceptAction(); err != nil {
		return fmt.Errorf("stream %s: %w", name, err)
	}
	rw.pace()
	// The media messages are read as they come, not through gortmplib's
	// Reader: that one holds the first 2 s of every stream in memory to
	// find its tracks, which delays the first segment by as much and, with
	// many publishers starting at once, doubles the relay's memory. RTMP
	// publishers send the sequence headers before the first frames, so the
	// stream starts at its first video frame with the tracks announced by
	// then.
	p := &rtmpPublish{r: r, name: name, audioAt: -1}
	defer p.end()
	// A publisher that goes quiet for handshakeTimeout is dropped. The
	// deadline moves at most once a second: re-arming it on every message
	// (dozens a second per stream) is needless timer work.
	armed := time.Time{}
	for {
		if now := time.Now(); now.Sub(armed) > time.Second {
			c.SetDeadline(now.Add(handshakeTimeout))
			armed = now
		}
		msg, err := sc.Read()
		if err != nil {
			return fmt.Errorf("stream %s: %w", name, err)
		}
		if err := p.handle(msg); err != nil {
			return fmt.Errorf("stream %s: %w", name, err)
		}
	}
}

// acceptRTMP runs the handshake and takes the stream key; the stream it
// names is then claimed (release it).
func (r *Relay) acceptRTMP(sc *gortmplib.ServerConn, remote net.Addr) (string, error) {
	if err := sc.Initialize(); err != nil {
		r.metrics.refused.WithLabelValues("rtmp", "handshake").Inc()
		return "", fmt.Errorf("handshake: %w", err)
	}
	if err := sc.AcceptConn(); err != nil {
		r.metrics.refused.WithLabelValues("rtmp", "handshake").Inc()
		return "", fmt.Errorf("connect: %w", err)
	}
	if !sc.Publish {
		r.metrics.refused.WithLabelValues("rtmp", "play").Inc()
		_ = sc.RejectAction()
		return "", errors.New("playing is not offered: players read HLS from the bucket")
	}
	name, ok := r.cfg.Keys.Stream(path.Base(sc.URL.Path))
	if !ok {
		r.wrongKey("rtmp", remote)
		_ = sc.RejectAction()
		return "", errors.New("wrong stream key")
	}
	r.keys.succeeded(remote)
	if !r.claim(name) {
		r.metrics.refused.WithLabelValues("rtmp", "busy").Inc()
		_ = sc.RejectAction()
		return "", fmt.Errorf("stream %s is already publishing", name)
	}
	return name, nil
}

// rtmpPublish is one RTMP publisher's state: the sequence headers seen so
// far, and the stream once its first video frame came.
type rtmpPublish struct {
	r        *Relay
	name     string
	st       *stream
	sps, pps []byte
	aac      *mpeg4audio.AudioSpecificConfig
	audioAt  time.Duration // first audio frame while no video came; -1 before
}

func (p *rtmpPublish) end() {
	if p.st != nil {
		p.st.end()
	}
}

func (p *rtmpPublish) handle(msg message.Message) error {
	switch m := msg.(type) {
	case *message.Video:
		return p.video(m)
	case *message.Audio:
		return p.audio(m)
	}
	return nil
}

func (p *rtmpPublish) video(m *message.Video) error {
	if m.Codec != message.CodecH264 {
		p.r.metrics.refused.WithLabelValues("rtmp", "codec").Inc()
		return fmt.Errorf("video codec %d: only H.264 is taken", m.Codec)
	}
	switch m.Type {
	case message.VideoTypeConfig:
		if m.AVCConfig == nil || len(m.AVCConfig.SequenceParameterSets) == 0 || len(m.AVCConfig.PictureParameterSets) == 0 {
			return errors.New("H.264 sequence header without SPS and PPS")
		}
		p.sps, p.pps = m.AVCConfig.SequenceParameterSets[0].NALUnit, m.AVCConfig.PictureParameterSets[0].NALUnit
		if p.st != nil {
			p.st.seg.SPS, p.st.seg.PPS = p.sps, p.pps
		}
	case message.VideoTypeAU:
		if p.sps == nil {
			p.r.metrics.refused.WithLabelValues("rtmp", "codec").Inc()
			return errors.New("video before its H.264 sequence header")
		}
		if p.st == nil {
			st, err := p.r.newStream(p.name, p.sps, p.aac)
			if err != nil {
				return err
			}
			p.st = st
			p.st.seg.SPS, p.st.seg.PPS = p.sps, p.pps
		}
		var au h264.AVCC
		if err := au.Unmarshal(m.AU); err != nil {
			if errors.Is(err, h264.ErrAVCCNoNALUs) {
				return nil
			}
			return err
		}
		return p.st.seg.WriteH264(m.DTS+m.PTSDelta, m.DTS, au)
	}
	return nil
}

func (p *rtmpPublish) audio(m *message.Audio) error {
	if m.Codec != message.CodecMPEG4Audio {
		return nil // other audio is not carried (the segments stay video-only)
	}
	switch m.AACType {
	case message.AudioAACTypeConfig:
		if p.st == nil {
			p.aac = m.AACConfig
		}
	case message.AudioAACTypeAU:
		if p.st != nil {
			return p.st.seg.WriteAAC(m.DTS, [][]byte{m.AU})
		}
		// Audio alone makes no segments: refuse it rather than hold the
		// stream key with nothing coming out.
		if p.audioAt < 0 {
			p.audioAt = m.DTS
		} else if m.DTS-p.audioAt > handshakeTimeout/2 {
			p.r.metrics.refused.WithLabelValues("rtmp", "codec").Inc()
			return errors.New("no H.264 video track")
		}
	}
	return nil
}
