package relay

import (
	"errors"
	"fmt"
	"net"
	"path"
	"time"

	"github.com/bluenviron/gortmplib"
	"github.com/bluenviron/gortmplib/pkg/codecs"
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
	c.SetDeadline(time.Now().Add(handshakeTimeout))
	sc := &gortmplib.ServerConn{RW: c}
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
		r.metrics.refused.WithLabelValues("rtmp", "key").Inc()
		r.log.Warn("relay: wrong stream key refused", "protocol", "rtmp", "remote", c.RemoteAddr().String())
		_ = sc.RejectAction()
		return errors.New("wrong stream key")
	}
	if !r.claim(name) {
		r.metrics.refused.WithLabelValues("rtmp", "busy").Inc()
		_ = sc.RejectAction()
		return fmt.Errorf("stream %s is already publishing", name)
	}
	defer r.release(name)

	rd := &gortmplib.Reader{Conn: sc}
	if err := rd.Initialize(); err != nil {
		return fmt.Errorf("stream %s: tracks: %w", name, err)
	}
	var video, audio *gortmplib.Track
	for _, t := range rd.Tracks() {
		switch t.Codec.(type) {
		case *codecs.H264:
			video = t
		case *codecs.MPEG4Audio:
			audio = t
		}
	}
	if video == nil {
		r.metrics.refused.WithLabelValues("rtmp", "codec").Inc()
		return fmt.Errorf("stream %s: no H.264 video track", name)
	}
	h := video.Codec.(*codecs.H264)
	var st *stream
	var err error
	if audio != nil {
		st, err = r.newStream(name, h.SPS, audio.Codec.(*codecs.MPEG4Audio).Config)
	} else {
		st, err = r.newStream(name, h.SPS, nil)
	}
	if err != nil {
		return err
	}
	defer st.end()
	st.seg.SPS, st.seg.PPS = h.SPS, h.PPS
	var werr error
	rd.OnDataH264(video, func(pts, dts time.Duration, au [][]byte) {
		if werr == nil {
			werr = st.seg.WriteH264(pts, dts, au)
		}
	})
	if audio != nil {
		rd.OnDataMPEG4Audio(audio, func(pts time.Duration, au []byte) {
			if werr == nil {
				werr = st.seg.WriteAAC(pts, [][]byte{au})
			}
		})
	}
	// A publisher that goes quiet for handshakeTimeout is dropped. The
	// deadline moves at most once a second: re-arming it on every message
	// (dozens a second per stream) is needless timer work.
	armed := time.Time{}
	for {
		if now := time.Now(); now.Sub(armed) > time.Second {
			c.SetDeadline(now.Add(handshakeTimeout))
			armed = now
		}
		if err := rd.Read(); err != nil {
			return fmt.Errorf("stream %s: %w", name, err)
		}
		if werr != nil {
			return fmt.Errorf("stream %s: %w", name, werr)
		}
	}
}
