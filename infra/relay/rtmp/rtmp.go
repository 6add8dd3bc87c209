// Package rtmp is the relay's RTMP server: publishers only
// (rtmp://host/live/<stream key>), H.264 and AAC, read message by message.
package rtmp

import (
	"errors"
	"fmt"
	"net"
	"path"
	"sync"
	"time"

	"github.com/bluenviron/gortmplib"
	"github.com/bluenviron/gortmplib/pkg/message"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"

	"github.com/segflow/segflow/infra/relay/publish"
)

// Server accepts RTMP publishers for a host.
type Server struct {
	host publish.Host
	ln   net.Listener

	conns publish.Conns[net.Conn]
	wg    sync.WaitGroup
}

// Open listens on addr; Close stops it and ends every publish.
func Open(addr string, host publish.Host) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("rtmp listen %s: %w", addr, err)
	}
	s := &Server{host: host, ln: ln}
	host.Logger().Info("relay: rtmp listening", "addr", ln.Addr().String())
	s.wg.Go(s.accept)
	return s, nil
}

// Addr is the address it listens on.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Close stops accepting, closes every connection and waits for their
// publishes to end.
func (s *Server) Close() {
	s.conns.CloseAll()
	s.ln.Close()
	s.wg.Wait()
}

func (s *Server) accept() {
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		if !s.conns.Add(c) {
			c.Close()
			return
		}
		s.wg.Go(func() {
			defer s.conns.Remove(c)
			defer c.Close()
			if err := s.serve(c); err != nil {
				s.host.Logger().Info("relay: rtmp connection closed", "remote", c.RemoteAddr().String(), "err", err.Error())
			}
		})
	}
}

// serve takes one publisher.
func (s *Server) serve(c net.Conn) error {
	if wait := s.host.Admit(c.RemoteAddr()); wait > 0 {
		return fmt.Errorf("refused for %s more after wrong stream keys", wait.Round(time.Second))
	}
	c.SetDeadline(time.Now().Add(publish.HandshakeTimeout))
	rw := newPacedConn(c)
	sc := &gortmplib.ServerConn{RW: rw}
	name, err := s.handshake(sc, c.RemoteAddr())
	if err != nil {
		return err
	}
	defer s.host.Release(name)
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
	p := NewFeed(s.host, name)
	defer p.End()
	// A publisher that goes quiet for HandshakeTimeout is dropped. The
	// deadline moves at most once a second: re-arming it on every message
	// (dozens a second per stream) is needless timer work.
	armed := time.Time{}
	for {
		if now := time.Now(); now.Sub(armed) > time.Second {
			c.SetDeadline(now.Add(publish.HandshakeTimeout))
			armed = now
		}
		msg, err := sc.Read()
		if err != nil {
			return fmt.Errorf("stream %s: %w", name, err)
		}
		if err := p.Handle(msg); err != nil {
			return fmt.Errorf("stream %s: %w", name, err)
		}
	}
}

// handshake runs the handshake and takes the stream key; the stream it
// names is then claimed (release it).
func (s *Server) handshake(sc *gortmplib.ServerConn, remote net.Addr) (string, error) {
	if err := sc.Initialize(); err != nil {
		s.host.Refused("handshake")
		return "", fmt.Errorf("handshake: %w", err)
	}
	if err := sc.AcceptConn(); err != nil {
		s.host.Refused("handshake")
		return "", fmt.Errorf("connect: %w", err)
	}
	if !sc.Publish {
		s.host.Refused("play")
		_ = sc.RejectAction()
		return "", errors.New("playing is not offered: players read HLS from the bucket")
	}
	name, err := s.host.Claim(path.Base(sc.URL.Path), remote)
	if err != nil {
		_ = sc.RejectAction()
		return "", err
	}
	return name, nil
}

// Feed turns one publish's RTMP (or FLV) media messages into a stream:
// the sequence headers seen so far, and the stream once its first video
// frame came. The server feeds it a publisher's messages; a pull feeds it
// what it plays from another server.
type Feed struct {
	host     publish.Host
	name     string
	st       publish.Stream
	sps, pps []byte
	aac      *mpeg4audio.AudioSpecificConfig
	audioAt  time.Duration // first audio frame while no video came; -1 before
}

// NewFeed starts name's feed; End it.
func NewFeed(host publish.Host, name string) *Feed {
	return &Feed{host: host, name: name, audioAt: -1}
}

// End ends the stream, if one started.
func (p *Feed) End() {
	if p.st != nil {
		p.st.End()
	}
}

// Handle takes one message; those that are not media are skipped.
func (p *Feed) Handle(msg message.Message) error {
	switch m := msg.(type) {
	case *message.Video:
		return p.video(m)
	case *message.Audio:
		return p.audio(m)
	}
	return nil
}

func (p *Feed) video(m *message.Video) error {
	if m.Codec != message.CodecH264 {
		p.host.Refused("codec")
		return fmt.Errorf("video codec %d: only H.264 is taken", m.Codec)
	}
	switch m.Type {
	case message.VideoTypeConfig:
		if m.AVCConfig == nil || len(m.AVCConfig.SequenceParameterSets) == 0 || len(m.AVCConfig.PictureParameterSets) == 0 {
			return errors.New("H.264 sequence header without SPS and PPS")
		}
		p.sps, p.pps = m.AVCConfig.SequenceParameterSets[0].NALUnit, m.AVCConfig.PictureParameterSets[0].NALUnit
		if p.st != nil {
			p.st.SetParams(p.sps, p.pps)
		}
	case message.VideoTypeAU:
		if p.sps == nil {
			p.host.Refused("codec")
			return errors.New("video before its H.264 sequence header")
		}
		if p.st == nil {
			st, err := p.host.Start(p.name, p.sps, p.aac)
			if err != nil {
				return err
			}
			p.st = st
			p.st.SetParams(p.sps, p.pps)
		}
		var au h264.AVCC
		if err := au.Unmarshal(m.AU); err != nil {
			if errors.Is(err, h264.ErrAVCCNoNALUs) {
				return nil
			}
			return err
		}
		return p.st.WriteH264(m.DTS+m.PTSDelta, m.DTS, au)
	}
	return nil
}

func (p *Feed) audio(m *message.Audio) error {
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
			return p.st.WriteAAC(m.DTS, [][]byte{m.AU})
		}
		// Audio alone makes no segments: refuse it rather than hold the
		// stream key with nothing coming out.
		if p.audioAt < 0 {
			p.audioAt = m.DTS
		} else if m.DTS-p.audioAt > publish.HandshakeTimeout/2 {
			p.host.Refused("codec")
			return errors.New("no H.264 video track")
		}
	}
	return nil
}
