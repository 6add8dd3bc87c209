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
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/logging"
	"github.com/pion/webrtc/v4"

	"github.com/segflow/segflow/infra/relay/publish"
)

// Config configures a Server.
type Config struct {
	// UDPAddr is where media arrives, every session on one port (ICE UDP
	// mux), as MediaMTX does on 8189.
	UDPAddr string
	// PublicIPs are the addresses the answers advertise for it when the
	// relay is behind NAT (a cloud VM's public address); empty: the
	// interfaces' own.
	PublicIPs []string
	// SegmentTarget is the relay's segment duration: a keyframe is asked
	// for this long after the last one, so segments cut near it.
	SegmentTarget time.Duration
	// ICETimeout is how long a session whose publisher went silent lives
	// before it ends, as if DELETEd (default 10s).
	ICETimeout time.Duration
}

// Server is the WHIP endpoint of a relay.
type Server struct {
	cfg  Config
	host publish.Host
	api  *webrtc.API
	udp  net.PacketConn
	mux  ice.UDPMux
	// videoPrefs are the video codecs in the order answers list them:
	// H.264 first, whatever order the offer has (Chrome's puts VP8 first).
	videoPrefs []webrtc.RTPCodecParameters

	mu       sync.Mutex
	sessions map[string]*session
	closing  bool
	wg       sync.WaitGroup
}

// Open listens on cfg.UDPAddr; Close ends every session and stops it.
func Open(cfg Config, host publish.Host) (*Server, error) {
	if cfg.SegmentTarget <= 0 {
		cfg.SegmentTarget = 2 * time.Second
	}
	if cfg.ICETimeout <= 0 {
		cfg.ICETimeout = 10 * time.Second
	}
	udp, err := net.ListenPacket("udp", cfg.UDPAddr)
	if err != nil {
		return nil, fmt.Errorf("whip listen %s: %w", cfg.UDPAddr, err)
	}
	s := &Server{cfg: cfg, host: host, udp: udp, sessions: map[string]*session{}}
	if s.api, err = s.newAPI(); err != nil {
		udp.Close()
		return nil, err
	}
	host.Logger().Info("relay: whip listening", "udp", udp.LocalAddr().String())
	return s, nil
}

// newAPI is pion's API as every session uses it: the codecs the relay
// takes, NACKs and RTCP reports, one UDP port, no mDNS.
func (s *Server) newAPI() (*webrtc.API, error) {
	m := &webrtc.MediaEngine{}
	fb := []webrtc.RTCPFeedback{{Type: "goog-remb"}, {Type: "ccm", Parameter: "fir"}, {Type: "nack"}, {Type: "nack", Parameter: "pli"}}
	// Constrained baseline, baseline, main and high, packetization mode 1
	// (what browsers send), preferred to VP8 in every answer: passed
	// through, not transcoded.
	for i, profile := range []string{"42e01f", "42001f", "4d001f", "640c1f"} {
		c := webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{
			MimeType: webrtc.MimeTypeH264, ClockRate: 90000,
			SDPFmtpLine:  "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=" + profile,
			RTCPFeedback: fb}, PayloadType: webrtc.PayloadType(102 + 2*i)}
		if err := m.RegisterCodec(c, webrtc.RTPCodecTypeVideo); err != nil {
			return nil, err
		}
		s.videoPrefs = append(s.videoPrefs, c)
	}
	// VP8 for a publisher that offers no H.264: transcoded (vp8.go).
	if err := m.RegisterCodec(webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{
		MimeType: webrtc.MimeTypeVP8, ClockRate: 90000, RTCPFeedback: fb}, PayloadType: 96}, webrtc.RTPCodecTypeVideo); err != nil {
		return nil, err
	}
	s.videoPrefs = append(s.videoPrefs, webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{
		MimeType: webrtc.MimeTypeVP8, ClockRate: 90000, RTCPFeedback: fb}, PayloadType: 96})
	if err := m.RegisterCodec(webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{
		MimeType: webrtc.MimeTypeOpus, ClockRate: opusRate, Channels: 2, SDPFmtpLine: "minptime=10;useinbandfec=1"},
		PayloadType: 111}, webrtc.RTPCodecTypeAudio); err != nil {
		return nil, err
	}
	reg := &interceptor.Registry{}
	if err := webrtc.RegisterDefaultInterceptors(m, reg); err != nil {
		return nil, err
	}
	se := webrtc.SettingEngine{}
	// pion's own warnings go to the relay's log as debug lines: a closed
	// socket or a stray STUN packet is routine for a server.
	se.LoggerFactory = &logging.DefaultLoggerFactory{Writer: slogWriter{s.host.Logger()}, DefaultLogLevel: logging.LogLevelWarn}
	s.mux = webrtc.NewICEUDPMux(se.LoggerFactory.NewLogger("ice"), s.udp)
	se.SetICEUDPMux(s.mux)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4, webrtc.NetworkTypeUDP6})
	se.SetIncludeLoopbackCandidate(true)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetICETimeouts(s.cfg.ICETimeout/2, s.cfg.ICETimeout, 2*time.Second)
	if len(s.cfg.PublicIPs) > 0 {
		if err := se.SetICEAddressRewriteRules(webrtc.ICEAddressRewriteRule{External: s.cfg.PublicIPs, AsCandidateType: webrtc.ICECandidateTypeHost}); err != nil {
			return nil, fmt.Errorf("whip public addresses %v: %w", s.cfg.PublicIPs, err)
		}
	}
	return webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithSettingEngine(se), webrtc.WithInterceptorRegistry(reg)), nil
}

// slogWriter writes pion's log lines to a slog logger.
type slogWriter struct{ log *slog.Logger }

func (w slogWriter) Write(p []byte) (int, error) {
	w.log.Debug("whip: pion", "msg", strings.TrimSpace(string(p)))
	return len(p), nil
}

// Addr is the UDP address media arrives at.
func (s *Server) Addr() net.Addr { return s.udp.LocalAddr() }

// Close refuses new sessions, ends every one (their publishes end as a
// disconnect would end them) and stops listening.
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
	s.mux.Close()
	s.udp.Close()
}

// Handler serves the endpoint at /whip (POST an offer) and its sessions at
// /whip/<id> (DELETE ends one); mount it at the root of a mux.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /whip", s.post)
	mux.HandleFunc("OPTIONS /whip", s.options)
	mux.HandleFunc("DELETE /whip/{id}", s.delete)
	mux.HandleFunc("OPTIONS /whip/{id}", s.options)
	// Trickle ICE and ICE restarts are not offered: the answer carries
	// every candidate (RFC 9725 4.3.1: 405 then).
	mux.HandleFunc("PATCH /whip/{id}", func(w http.ResponseWriter, r *http.Request) {
		cors(w)
		http.Error(w, "trickle ICE is not supported: the answer holds every candidate", http.StatusMethodNotAllowed)
	})
	return mux
}

// cors lets a page on any origin publish (the console, a WHIP web
// client): the bearer key is the credential, never a cookie.
func cors(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", "*")
	h.Set("Access-Control-Allow-Methods", "POST, DELETE, PATCH, OPTIONS")
	h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, If-Match")
	h.Set("Access-Control-Expose-Headers", "Location, Link, ETag")
}

func (s *Server) options(w http.ResponseWriter, r *http.Request) {
	cors(w)
	w.Header().Set("Accept-Post", "application/sdp")
	w.WriteHeader(http.StatusNoContent)
}

// maxOffer bounds an offer's size: a browser's is ~5 KB.
const maxOffer = 64 << 10

func (s *Server) post(w http.ResponseWriter, r *http.Request) {
	cors(w)
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/sdp") {
		http.Error(w, "the offer must be application/sdp", http.StatusUnsupportedMediaType)
		return
	}
	remote := remoteAddr(r)
	if wait := s.host.Admit(remote); wait > 0 {
		w.Header().Set("Retry-After", fmt.Sprint(int(wait.Seconds())+1))
		http.Error(w, "too many wrong stream keys: wait", http.StatusTooManyRequests)
		return
	}
	key, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || key == "" {
		w.Header().Set("WWW-Authenticate", `Bearer realm="segflow whip"`)
		http.Error(w, "a stream key is required: Authorization: Bearer <key>", http.StatusUnauthorized)
		return
	}
	offer, err := io.ReadAll(io.LimitReader(r.Body, maxOffer+1))
	if err != nil || len(offer) > maxOffer {
		http.Error(w, "offer unreadable or larger than 64 KiB", http.StatusBadRequest)
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
	ss, answer, err := s.open(r.Context(), name, string(offer))
	if err != nil {
		s.host.Release(name)
		var bad *offerError
		if errors.As(err, &bad) {
			s.host.Refused(bad.reason)
			http.Error(w, err.Error(), bad.status)
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
	cors(w)
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

// offerError is an offer the relay cannot take, with the status it gets.
type offerError struct {
	status int
	reason string // the refused metric's label
	err    error
}

func (e *offerError) Error() string { return e.err.Error() }

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
