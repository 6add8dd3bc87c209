// Package whep is the relay's WebRTC playback (WHEP,
// draft-ietf-wish-whep): a viewer POSTs an SDP offer for a live stream
// and gets its source video as it came (H.264, no re-encode) and its audio
// as Opus, a fraction of a second behind the publisher, while the
// functions make the HLS ladder from the same frames. Media goes through
// the relay's one WebRTC port (relay/rtc).
package whep

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"

	"github.com/segflow/segflow/infra/relay/rtc"
)

// ErrNotLive is Config.Source's answer for a stream nobody publishes.
var ErrNotLive = errors.New("stream is not live")

// ErrNoToken is Config.Authorize's answer for a request without the
// token a private stream asks for (401; any other refusal is 403).
var ErrNoToken = errors.New("this stream needs a token (Authorization: Bearer)")

// Config configures a Server.
type Config struct {
	// Source is the broadcast of a live stream, made on the first
	// viewer's request; ErrNotLive when it is not publishing.
	Source func(stream string) (*Broadcast, error)
	// Authorize admits a viewer of stream holding token (the request's
	// bearer token, "" when none): nil, ErrNoToken, or why not. Nil
	// admits everyone.
	Authorize func(stream, token string) error
	// MaxPerStream and MaxViewers cap viewers of one stream and of all
	// (0: no cap); beyond them a viewer gets 503.
	MaxPerStream, MaxViewers int
	// OnViewers is told of each viewer that comes (+1) or goes (-1).
	OnViewers func(stream string, delta int)
	Logger    *slog.Logger
}

// Server is the WHEP endpoint of a relay.
type Server struct {
	cfg Config
	rtc *rtc.Transport
	log *slog.Logger

	mu      sync.Mutex
	viewers map[string]*viewer
	closing bool
}

// Open serves WHEP viewers over t; Close ends every session.
func Open(t *rtc.Transport, cfg Config) *Server {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Server{cfg: cfg, rtc: t, log: cfg.Logger, viewers: map[string]*viewer{}}
}

// Close ends every session and refuses new ones.
func (s *Server) Close() {
	s.mu.Lock()
	s.closing = true
	vs := make([]*viewer, 0, len(s.viewers))
	for _, v := range s.viewers {
		vs = append(vs, v)
	}
	s.mu.Unlock()
	for _, v := range vs {
		v.close("relay closing")
	}
}

func (s *Server) metricViewers(stream string, delta int) {
	if s.cfg.OnViewers != nil {
		s.cfg.OnViewers(stream, delta)
	}
}

// Handler serves POST /whep/<stream> (an offer) and DELETE
// /whep/<stream>/<id> (a session); mount it at the root of a mux.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	rtc.Route(mux, "/whep/{stream}", s.post, s.delete)
	return mux
}

func (s *Server) post(w http.ResponseWriter, r *http.Request) {
	if !rtc.IsSDP(w, r) {
		return
	}
	offer, ok := rtc.ReadOffer(w, r)
	if !ok {
		return
	}
	stream := r.PathValue("stream")
	if s.cfg.Authorize != nil {
		token, _ := rtc.Bearer(r)
		if err := s.cfg.Authorize(stream, strings.TrimSpace(token)); err != nil {
			code := http.StatusForbidden
			if errors.Is(err, ErrNoToken) {
				code = http.StatusUnauthorized
				w.Header().Set("WWW-Authenticate", `Bearer realm="segflow whep"`)
			}
			http.Error(w, err.Error(), code)
			return
		}
	}
	b, err := s.cfg.Source(stream)
	if err != nil {
		code := http.StatusServiceUnavailable
		if errors.Is(err, ErrNotLive) {
			code = http.StatusNotFound
		}
		http.Error(w, err.Error(), code)
		return
	}
	if why := s.full(b); why != "" {
		http.Error(w, why, http.StatusServiceUnavailable)
		return
	}
	id := make([]byte, 16)
	rand.Read(id)
	v, err := newViewer(s, hex.EncodeToString(id), b)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	answer, err := v.negotiate(r.Context(), offer)
	if err != nil {
		v.pc.Close()
		var bad *rtc.OfferError
		if errors.As(err, &bad) {
			http.Error(w, err.Error(), bad.Status)
			return
		}
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		v.pc.Close()
		http.Error(w, "relay closing", http.StatusServiceUnavailable)
		return
	}
	s.viewers[v.id] = v
	s.mu.Unlock()
	s.metricViewers(stream, 1)
	v.log.Info("whep: viewer joined", "audio", v.hasAudio)
	w.Header().Set("Content-Type", "application/sdp")
	w.Header().Set("Location", "/whep/"+stream+"/"+v.id)
	w.WriteHeader(http.StatusCreated)
	io.WriteString(w, answer)
}

// full says why one more viewer of b is refused ("" if not).
func (s *Server) full(b *Broadcast) string {
	if s.cfg.MaxPerStream > 0 && b.Viewers() >= s.cfg.MaxPerStream {
		return "this stream has as many viewers as it may"
	}
	s.mu.Lock()
	n := len(s.viewers)
	s.mu.Unlock()
	if s.cfg.MaxViewers > 0 && n >= s.cfg.MaxViewers {
		return "the relay has as many viewers as it may"
	}
	return ""
}

func (s *Server) delete(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	v := s.viewers[r.PathValue("id")]
	s.mu.Unlock()
	if v == nil || v.b.name != r.PathValue("stream") {
		http.Error(w, "no such session", http.StatusNotFound)
		return
	}
	v.close("deleted by the viewer")
	w.WriteHeader(http.StatusOK)
}
