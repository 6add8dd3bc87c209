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
	if err := sc.Initialize(); err != nil {
		r.metrics.refused.WithLabelValues("rtmp", "handshake").Inc()
		return fmt.Errorf("handshake: %w", err)
	}
	if err := sc.AcceptConn(); err != nil {
		r.metrics.refused.WithLabelValues("rtmp", "handshake").Inc()
		return fmt.Errorf("connect: %w", err)
	}
	if !sc.Publish {
		r.metrics.refused.WithLabelValues("rtmp", "play").Inc()
		_ = sc.RejectAction()
		return errors.New("playing is not offered: players read HLS from the bucket")
	}
	name, ok := r.cfg.Keys.Stream(path.Base(sc.URL.Path))
	if !ok {
		r.wrongKey("rtmp", c.RemoteAddr())
		_ = sc.RejectAction()
		return errors.New("wrong stream key")
	}
	r.keys.succeeded(c.RemoteAddr())
	if !r.claim(name) {
		r.metrics.refused.WithLabelValues("rtmp", "busy").Inc()
		_ = sc.RejectAction()
		return fmt.Errorf("stream %s is already publishing", name)
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
	var (
		st       *stream
		sps, pps []byte
		aac      *mpeg4audio.AudioSpecificConfig
		werr     error
		audioAt  = time.Duration(-1) // first audio frame, while no video came
	)
	defer func() {
		if st != nil {
			st.end()
		}
	}()
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
		switch m := msg.(type) {
		case *message.Video:
			if m.Codec != message.CodecH264 {
				r.metrics.refused.WithLabelValues("rtmp", "codec").Inc()
				return fmt.Errorf("stream %s: video codec %d: only H.264 is taken", name, m.Codec)
			}
			switch m.Type {
			case message.VideoTypeConfig:
				if m.AVCConfig == nil || len(m.AVCConfig.SequenceParameterSets) == 0 || len(m.AVCConfig.PictureParameterSets) == 0 {
					return fmt.Errorf("stream %s: H.264 sequence header without SPS and PPS", name)
				}
				sps, pps = m.AVCConfig.SequenceParameterSets[0].NALUnit, m.AVCConfig.PictureParameterSets[0].NALUnit
				if st != nil {
					st.seg.SPS, st.seg.PPS = sps, pps
				}
			case message.VideoTypeAU:
				if sps == nil {
					r.metrics.refused.WithLabelValues("rtmp", "codec").Inc()
					return fmt.Errorf("stream %s: video before its H.264 sequence header", name)
				}
				if st == nil {
					if st, err = r.newStream(name, sps, aac); err != nil {
						return err
					}
					st.seg.SPS, st.seg.PPS = sps, pps
				}
				var au h264.AVCC
				if err := au.Unmarshal(m.AU); err != nil {
					if errors.Is(err, h264.ErrAVCCNoNALUs) {
						continue
					}
					return fmt.Errorf("stream %s: %w", name, err)
				}
				werr = st.seg.WriteH264(m.DTS+m.PTSDelta, m.DTS, au)
			}
		case *message.Audio:
			if m.Codec != message.CodecMPEG4Audio {
				continue // other audio is not carried (the segments stay video-only)
			}
			switch m.AACType {
			case message.AudioAACTypeConfig:
				if st == nil {
					aac = m.AACConfig
				}
			case message.AudioAACTypeAU:
				if st != nil {
					werr = st.seg.WriteAAC(m.DTS, [][]byte{m.AU})
					break
				}
				// Audio alone makes no segments: refuse it rather than
				// hold the stream key with nothing coming out.
				if audioAt < 0 {
					audioAt = m.DTS
				} else if m.DTS-audioAt > handshakeTimeout/2 {
					r.metrics.refused.WithLabelValues("rtmp", "codec").Inc()
					return fmt.Errorf("stream %s: no H.264 video track", name)
				}
			}
		}
		if werr != nil {
			return fmt.Errorf("stream %s: %w", name, werr)
		}
	}
}
