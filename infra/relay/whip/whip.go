// Package whip is the relay's WebRTC ingest (WHIP, RFC 9725): a publisher
// POSTs an SDP offer with its stream key as bearer token and sends H.264
// and Opus over one UDP port; the relay answers, takes the video as it is
// and the audio as AAC (opus.go), and asks the publisher for a keyframe at
// each segment boundary, so what reaches the segmenter is what an RTMP
// publisher's would be.
package whip

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/segflow/segflow/infra/relay/publish"
	"github.com/segflow/segflow/infra/relay/rtc"
)

// Config configures a Server.
type Config struct {
	// SegmentTarget is the relay's segment duration: a keyframe is asked
	// for this long after the one a segment began with, so segments cut
	// near it.
	SegmentTarget time.Duration
}

// Server is the WHIP endpoint of a relay.
type Server struct {
	cfg  Config
	host publish.Host
	rtc  *rtc.Transport

	mu       sync.Mutex
	sessions map[string]*session
	closing  bool
	wg       sync.WaitGroup
}

// Open serves WHIP publishers over t; Close ends every session.
func Open(t *rtc.Transport, cfg Config, host publish.Host) *Server {
	if cfg.SegmentTarget <= 0 {
		cfg.SegmentTarget = 2 * time.Second
	}
	return &Server{cfg: cfg, host: host, rtc: t, sessions: map[string]*session{}}
}

// Close refuses new sessions and ends every one (their publishes end as a
// disconnect would end them).
func (s *Server) Close() {
	s.mu.Lock()
	s.closing = true
	open := make([]*session, 0, len(s.sessions))
	for _, ss := range s.sessions {
		open = append(open, ss)
	}
	s.mu.Unlock()
	for _, ss := range open {
		ss.close("relay closing")
	}
	s.wg.Wait()
}

// Handler serves the endpoint at /whip (POST an offer) and its sessions at
// /whip/<id> (DELETE ends one); mount it at the root of a mux.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	rtc.Route(mux, "/whip", s.post, s.delete)
	return mux
}

func (s *Server) post(w http.ResponseWriter, r *http.Request) {
	if !rtc.IsSDP(w, r) {
		return
	}
	remote := remoteAddr(r)
	if wait := s.host.Admit(remote); wait > 0 {
		w.Header().Set("Retry-After", fmt.Sprint(int(wait.Seconds())+1))
		http.Error(w, "too many wrong stream keys: wait", http.StatusTooManyRequests)
		return
	}
	key, ok := rtc.Bearer(r)
	if !ok || key == "" {
		w.Header().Set("WWW-Authenticate", `Bearer realm="segflow whip"`)
		http.Error(w, "a stream key is required: Authorization: Bearer <key>", http.StatusUnauthorized)
		return
	}
	offer, ok := rtc.ReadOffer(w, r)
	if !ok {
		return
	}
	name, err := s.host.Claim(key, remote)
	switch {
	case errors.Is(err, publish.ErrWrongKey):
		w.Header().Set("WWW-Authenticate", `Bearer realm="segflow whip", error="invalid_token"`)
		http.Error(w, "wrong stream key", http.StatusUnauthorized)
		return
	case errors.Is(err, publish.ErrBusy):
		http.Error(w, err.Error(), http.StatusConflict)
		return
	case err != nil:
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	ss, answer, err := s.open(r.Context(), name, offer)
	if err != nil {
		s.host.Release(name)
		var bad *rtc.OfferError
		if errors.As(err, &bad) {
			s.host.Refused(bad.Reason)
			http.Error(w, err.Error(), bad.Status)
			return
		}
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/sdp")
	w.Header().Set("Location", "/whip/"+ss.id)
	w.WriteHeader(http.StatusCreated)
	io.WriteString(w, answer)
}

func (s *Server) delete(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	ss := s.sessions[r.PathValue("id")]
	s.mu.Unlock()
	if ss == nil {
		http.Error(w, "no such session", http.StatusNotFound)
		return
	}
	ss.close("deleted by the publisher")
	w.WriteHeader(http.StatusOK)
}

// open makes the session for name's offer and returns its answer, every
// candidate in it.
func (s *Server) open(ctx context.Context, name, offer string) (*session, string, error) {
	s.mu.Lock()
	closing := s.closing
	s.mu.Unlock()
	if closing {
		return nil, "", publish.ErrClosing
	}
	id := make([]byte, 16)
	rand.Read(id)
	ss, err := newSession(s, hex.EncodeToString(id), name)
	if err != nil {
		return nil, "", err
	}
	answer, err := ss.negotiate(ctx, offer)
	if err != nil {
		ss.pc.Close()
		return nil, "", err
	}
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		ss.pc.Close()
		return nil, "", publish.ErrClosing
	}
	if ss.ctx.Err() == nil { // closed already (ICE failed): run ends it
		s.sessions[ss.id] = ss
	}
	s.wg.Add(1)
	s.mu.Unlock()
	go ss.run()
	return ss, answer, nil
}

// remoteAddr is the request's peer, for the wrong-key back-off.
func remoteAddr(r *http.Request) net.Addr {
	ap, err := net.ResolveTCPAddr("tcp", r.RemoteAddr)
	if err != nil {
		return &net.TCPAddr{}
	}
	return ap
}
