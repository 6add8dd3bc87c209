// Package srt is the relay's SRT server: publishers whose stream id holds
// the stream key, sending MPEG-TS with H.264 and AAC.
package srt

import (
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mpegts"
	tscodecs "github.com/bluenviron/mediacommon/v2/pkg/formats/mpegts/codecs"
	gosrt "github.com/datarhei/gosrt"

	"github.com/segflow/segflow/infra/relay/publish"
)

// Server accepts SRT publishers for a host.
type Server struct {
	host publish.Host
	ln   gosrt.Listener

	conns publish.Conns[gosrt.Conn]
	wg    sync.WaitGroup
}

// Open listens on addr (UDP); Close stops it and ends every publish.
func Open(addr string, host publish.Host) (*Server, error) {
	ln, err := gosrt.Listen("srt", addr, gosrt.DefaultConfig())
	if err != nil {
		return nil, fmt.Errorf("srt listen %s: %w", addr, err)
	}
	s := &Server{host: host, ln: ln}
	host.Logger().Info("relay: srt listening", "addr", addr)
	s.wg.Go(s.accept)
	return s, nil
}

// Close stops accepting, closes every connection and waits for their
// publishes to end.
func (s *Server) Close() {
	s.conns.CloseAll()
	s.ln.Close()
	s.wg.Wait()
}

func (s *Server) accept() {
	for {
		req, err := s.ln.Accept2()
		if err != nil {
			if errors.Is(err, gosrt.ErrListenerClosed) {
				return
			}
			continue
		}
		if s.host.Admit(req.RemoteAddr()) > 0 {
			req.Reject(gosrt.REJX_UNAUTHORIZED)
			continue
		}
		name, err := s.host.Claim(streamKey(req.StreamId()), req.RemoteAddr())
		if err != nil {
			if errors.Is(err, publish.ErrWrongKey) {
				req.Reject(gosrt.REJX_UNAUTHORIZED)
			} else {
				req.Reject(gosrt.REJX_CONFLICT)
			}
			continue
		}
		conn, err := req.Accept()
		if err != nil {
			s.host.Release(name)
			continue
		}
		if !s.conns.Add(conn) {
			conn.Close()
			s.host.Release(name)
			continue
		}
		s.wg.Go(func() {
			defer s.host.Release(name)
			defer s.conns.Remove(conn)
			defer conn.Close()
			if err := s.serve(conn, name); err != nil {
				s.host.Logger().Info("relay: srt connection closed", "stream", name, "err", err.Error())
			}
		})
	}
}

// streamKey reads the stream key from an SRT stream id: the key itself,
// "publish:<key>", or the access-control form "#!::r=<key>,m=publish".
func streamKey(id string) string {
	if rest, ok := strings.CutPrefix(id, "#!::"); ok {
		for _, kv := range strings.Split(rest, ",") {
			if k, v, ok := strings.Cut(kv, "="); ok && k == "r" {
				return path.Base(v)
			}
		}
		return ""
	}
	id = strings.TrimPrefix(id, "publish:")
	return path.Base(id)
}

// serve demuxes the publisher's MPEG-TS into the host's stream.
func (s *Server) serve(conn gosrt.Conn, name string) error {
	return Demux(conn, conn.SetReadDeadline, s.host, name)
}

// Demux reads an MPEG-TS stream (H.264, and AAC if there is some) into
// host's stream name, starting it at the first IDR and ending it when r
// ends or fails. setDeadline bounds every wait for data by
// publish.HandshakeTimeout. An SRT publisher sends this; an SRT source a
// pull calls does too.
func Demux(r io.Reader, setDeadline func(time.Time) error, host publish.Host, name string) error {
	setDeadline(time.Now().Add(publish.HandshakeTimeout))
	rd := &mpegts.Reader{R: r}
	if err := rd.Initialize(); err != nil {
		host.Refused("format")
		return fmt.Errorf("stream %s: not MPEG-TS: %w", name, err)
	}
	rd.OnDecodeError(func(error) {})
	var video, audio *mpegts.Track
	for _, t := range rd.Tracks() {
		switch t.Codec.(type) {
		case *tscodecs.H264:
			video = t
		case *tscodecs.MPEG4Audio:
			audio = t
		}
	}
	if video == nil {
		host.Refused("codec")
		return fmt.Errorf("stream %s: no H.264 video track", name)
	}
	var aconf *mpeg4audio.AudioSpecificConfig
	if audio != nil {
		c := audio.Codec.(*tscodecs.MPEG4Audio).Config
		aconf = &c
	}
	var st publish.Stream
	var base int64 = -1
	dur := func(ts int64) time.Duration { return time.Duration(ts-base) * time.Second / 90000 }
	rd.OnDataH264(video, func(pts, dts int64, au [][]byte) error {
		if st == nil {
			// The stream's parameters come with its first IDR.
			sps := publish.FindNALU(au, h264.NALUTypeSPS)
			if sps == nil || !h264.IsRandomAccess(au) {
				return nil
			}
			var err error
			if st, err = host.Start(name, sps, aconf); err != nil {
				return err
			}
			base = dts
		}
		return st.WriteH264(dur(pts), dur(dts), au)
	})
	if audio != nil {
		rd.OnDataMPEG4Audio(audio, func(pts int64, aus [][]byte) error {
			if st == nil {
				return nil
			}
			return st.WriteAAC(dur(pts), aus)
		})
	}
	defer func() {
		if st != nil {
			st.End()
		}
	}()
	for {
		setDeadline(time.Now().Add(publish.HandshakeTimeout))
		if err := rd.Read(); err != nil {
			return fmt.Errorf("stream %s: %w", name, err)
		}
	}
}
