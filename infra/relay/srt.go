package relay

import (
	"errors"
	"fmt"
	"path"
	"strings"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mpegts"
	tscodecs "github.com/bluenviron/mediacommon/v2/pkg/formats/mpegts/codecs"
	srt "github.com/datarhei/gosrt"
)

func (r *Relay) listenSRT(addr string) error {
	cfg := srt.DefaultConfig()
	ln, err := srt.Listen("srt", addr, cfg)
	if err != nil {
		return fmt.Errorf("relay: srt listen %s: %w", addr, err)
	}
	r.srt = ln
	r.log.Info("relay: srt listening", "addr", addr)
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		for {
			req, err := ln.Accept2()
			if err != nil {
				if errors.Is(err, srt.ErrListenerClosed) {
					return
				}
				continue
			}
			if r.backingOff("srt", req.RemoteAddr()) > 0 {
				req.Reject(srt.REJX_UNAUTHORIZED)
				continue
			}
			name, ok := r.cfg.Keys.Stream(srtKey(req.StreamId()))
			if !ok {
				r.wrongKey("srt", req.RemoteAddr())
				req.Reject(srt.REJX_UNAUTHORIZED)
				continue
			}
			r.keys.succeeded(req.RemoteAddr())
			if !r.claim(name) {
				r.metrics.refused.WithLabelValues("srt", "busy").Inc()
				req.Reject(srt.REJX_CONFLICT)
				continue
			}
			conn, err := req.Accept()
			if err != nil {
				r.release(name)
				continue
			}
			r.wg.Add(1)
			go func() {
				defer r.wg.Done()
				defer r.release(name)
				defer conn.Close()
				if err := r.serveSRT(conn, name); err != nil {
					r.log.Info("relay: srt connection closed", "stream", name, "err", err.Error())
				}
			}()
		}
	}()
	return nil
}

// srtKey reads the stream key from an SRT stream id: the key itself,
// "publish:<key>", or the access-control form "#!::r=<key>,m=publish".
func srtKey(id string) string {
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

// serveSRT demuxes the publisher's MPEG-TS and feeds the segmenter.
func (r *Relay) serveSRT(conn srt.Conn, name string) error {
	r.mu.Lock()
	closing := r.closing
	r.mu.Unlock()
	if closing {
		return errors.New("relay closing")
	}
	stop := make(chan struct{})
	defer close(stop)
	go func() { // Close() of the relay ends the read below
		select {
		case <-stop:
		case <-r.closed():
			conn.Close()
		}
	}()
	conn.SetReadDeadline(time.Now().Add(handshakeTimeout))
	rd := &mpegts.Reader{R: conn}
	if err := rd.Initialize(); err != nil {
		r.metrics.refused.WithLabelValues("srt", "format").Inc()
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
		r.metrics.refused.WithLabelValues("srt", "codec").Inc()
		return fmt.Errorf("stream %s: no H.264 video track", name)
	}
	var aconf *mpeg4audio.AudioSpecificConfig
	if audio != nil {
		c := audio.Codec.(*tscodecs.MPEG4Audio).Config
		aconf = &c
	}
	var st *stream
	var base int64 = -1
	dur := func(ts int64) time.Duration { return time.Duration(ts-base) * time.Second / 90000 }
	rd.OnDataH264(video, func(pts, dts int64, au [][]byte) error {
		if st == nil {
			// The stream's parameters come with its first IDR.
			sps := findNALU(au, h264.NALUTypeSPS)
			if sps == nil || !h264.IsRandomAccess(au) {
				return nil
			}
			var err error
			if st, err = r.newStream(name, sps, aconf); err != nil {
				return err
			}
			base = dts
		}
		return st.seg.WriteH264(dur(pts), dur(dts), au)
	})
	if audio != nil {
		rd.OnDataMPEG4Audio(audio, func(pts int64, aus [][]byte) error {
			if st == nil {
				return nil
			}
			return st.seg.WriteAAC(dur(pts), aus)
		})
	}
	defer func() {
		if st != nil {
			st.end()
		}
	}()
	for {
		conn.SetReadDeadline(time.Now().Add(handshakeTimeout))
		if err := rd.Read(); err != nil {
			return fmt.Errorf("stream %s: %w", name, err)
		}
	}
}

func findNALU(au [][]byte, typ h264.NALUType) []byte {
	for _, n := range au {
		if len(n) > 0 && h264.NALUType(n[0]&0x1f) == typ {
			return n
		}
	}
	return nil
}
