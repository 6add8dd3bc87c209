// Package rtc is the relay's WebRTC transport, shared by WHIP publishers
// and WHEP viewers: one pion API (the codecs the relay takes and sends,
// NACKs, RTCP reports), every peer connection's media on one UDP port
// (ICE UDP mux), and the offer/answer exchange both endpoints make.
package rtc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/logging"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// OpusRate is Opus's clock in RTP.
const OpusRate = 48000

// Config configures a Transport.
type Config struct {
	// UDPAddr is where media goes and comes, every session on one port,
	// as MediaMTX does on 8189.
	UDPAddr string
	// PublicIPs are the addresses answers advertise for it when the relay
	// is behind NAT (a cloud VM's public address); empty: the interfaces'.
	PublicIPs []string
	// ICETimeout is how long a peer may go silent before its connection
	// fails, as if it had said goodbye (default 10s).
	ICETimeout time.Duration
	Logger     *slog.Logger
}

// Transport is the relay's WebRTC side.
type Transport struct {
	API *webrtc.API
	// VideoPrefs are the video codecs in the order answers list them:
	// H.264 first, whatever order the offer has (Chrome's puts VP8 first).
	VideoPrefs []webrtc.RTPCodecParameters
	udp        net.PacketConn
	mux        ice.UDPMux
}

// Open listens on cfg.UDPAddr; Close stops it.
func Open(cfg Config) (*Transport, error) {
	if cfg.ICETimeout <= 0 {
		cfg.ICETimeout = 10 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	udp, err := net.ListenPacket("udp", cfg.UDPAddr)
	if err != nil {
		return nil, fmt.Errorf("webrtc listen %s: %w", cfg.UDPAddr, err)
	}
	t := &Transport{udp: udp}
	if err := t.newAPI(cfg); err != nil {
		udp.Close()
		return nil, err
	}
	cfg.Logger.Info("relay: webrtc media listening", "udp", udp.LocalAddr().String())
	return t, nil
}

func (t *Transport) newAPI(cfg Config) error {
	m := &webrtc.MediaEngine{}
	fb := []webrtc.RTCPFeedback{{Type: "goog-remb"}, {Type: "ccm", Parameter: "fir"}, {Type: "nack"}, {Type: "nack", Parameter: "pli"}}
	// Constrained baseline, baseline, main and high, packetization mode 1
	// (what browsers send and play), before VP8: H.264 is passed through,
	// VP8 transcoded.
	for i, profile := range []string{"42e01f", "42001f", "4d001f", "640c1f"} {
		c := webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{
			MimeType: webrtc.MimeTypeH264, ClockRate: 90000,
			SDPFmtpLine:  "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=" + profile,
			RTCPFeedback: fb}, PayloadType: webrtc.PayloadType(102 + 2*i)}
		if err := m.RegisterCodec(c, webrtc.RTPCodecTypeVideo); err != nil {
			return err
		}
		t.VideoPrefs = append(t.VideoPrefs, c)
	}
	vp8 := webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{
		MimeType: webrtc.MimeTypeVP8, ClockRate: 90000, RTCPFeedback: fb}, PayloadType: 96}
	if err := m.RegisterCodec(vp8, webrtc.RTPCodecTypeVideo); err != nil {
		return err
	}
	t.VideoPrefs = append(t.VideoPrefs, vp8)
	if err := m.RegisterCodec(webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{
		MimeType: webrtc.MimeTypeOpus, ClockRate: OpusRate, Channels: 2, SDPFmtpLine: "minptime=10;useinbandfec=1"},
		PayloadType: 111}, webrtc.RTPCodecTypeAudio); err != nil {
		return err
	}
	reg := &interceptor.Registry{}
	if err := webrtc.RegisterDefaultInterceptors(m, reg); err != nil {
		return err
	}
	se := webrtc.SettingEngine{}
	// pion's own warnings go to the relay's log as debug lines: a closed
	// socket or a stray STUN packet is routine for a server.
	se.LoggerFactory = &logging.DefaultLoggerFactory{Writer: slogWriter{cfg.Logger}, DefaultLogLevel: logging.LogLevelWarn}
	t.mux = webrtc.NewICEUDPMux(se.LoggerFactory.NewLogger("ice"), t.udp)
	se.SetICEUDPMux(t.mux)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4, webrtc.NetworkTypeUDP6})
	se.SetIncludeLoopbackCandidate(true)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetICETimeouts(cfg.ICETimeout/2, cfg.ICETimeout, 2*time.Second)
	if len(cfg.PublicIPs) > 0 {
		if err := se.SetICEAddressRewriteRules(webrtc.ICEAddressRewriteRule{External: cfg.PublicIPs, AsCandidateType: webrtc.ICECandidateTypeHost}); err != nil {
			return fmt.Errorf("webrtc public addresses %v: %w", cfg.PublicIPs, err)
		}
	}
	t.API = webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithSettingEngine(se), webrtc.WithInterceptorRegistry(reg))
	return nil
}

// slogWriter writes pion's log lines to a slog logger.
type slogWriter struct{ log *slog.Logger }

func (w slogWriter) Write(p []byte) (int, error) {
	w.log.Debug("webrtc: pion", "msg", strings.TrimSpace(string(p)))
	return len(p), nil
}

// Addr is the UDP address media goes through.
func (t *Transport) Addr() net.Addr { return t.udp.LocalAddr() }

// Close stops listening; close every peer connection first.
func (t *Transport) Close() {
	t.mux.Close()
	t.udp.Close()
}

// OfferError is an offer the relay cannot take, with the HTTP status it
// gets and the reason the refused metric counts.
type OfferError struct {
	Status int
	Reason string
	Err    error
}

func (e *OfferError) Error() string { return e.Err.Error() }

// Answer answers offer on pc with every candidate gathered (no trickle),
// H.264 preferred. Before that, setup may add pc's own tracks (a viewer's)
// once the offer is in. want is the direction the relay's side of each
// m-line must take ("recvonly" for a publisher, "sendonly" for a viewer):
// the answer must take a video track so, and may take an audio one.
func (t *Transport) Answer(ctx context.Context, pc *webrtc.PeerConnection, offer, want string, setup func() error) (answer string, audio bool, err error) {
	var parsed sdp.SessionDescription
	if err := parsed.UnmarshalString(offer); err != nil {
		return "", false, &OfferError{http.StatusBadRequest, "format", fmt.Errorf("not an SDP offer: %w", err)}
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}); err != nil {
		return "", false, &OfferError{http.StatusBadRequest, "format", fmt.Errorf("offer refused: %w", err)}
	}
	for _, tr := range pc.GetTransceivers() {
		if tr.Kind() == webrtc.RTPCodecTypeVideo {
			// Codecs the offer lacks are left out; none left is a 406 below.
			_ = tr.SetCodecPreferences(t.VideoPrefs)
		}
	}
	if setup != nil {
		if err := setup(); err != nil {
			return "", false, err
		}
	}
	ans, err := pc.CreateAnswer(nil)
	if err != nil {
		return "", false, &OfferError{http.StatusBadRequest, "format", fmt.Errorf("no answer to this offer: %w", err)}
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(ans); err != nil {
		return "", false, err
	}
	select {
	case <-gathered:
	case <-ctx.Done():
		return "", false, ctx.Err()
	case <-time.After(5 * time.Second):
		return "", false, errors.New("ICE gathering did not complete in 5s")
	}
	local := pc.LocalDescription().SDP
	video, audio := accepted(local, want)
	if !video {
		return "", false, &OfferError{http.StatusNotAcceptable, "codec",
			errors.New("the offer has no video the relay can take: H.264 (packetization-mode=1) or VP8, " + map[string]string{"recvonly": "sent", "sendonly": "received"}[want])}
	}
	return local, audio, nil
}

// accepted says whether an answer takes a video and an audio m-line: with
// a port, in direction want (or both ways).
func accepted(answer, want string) (video, audio bool) {
	var d sdp.SessionDescription
	if d.UnmarshalString(answer) != nil {
		return false, false
	}
	for _, m := range d.MediaDescriptions {
		if m.MediaName.Port.Value == 0 {
			continue
		}
		_, dir := m.Attribute(want)
		_, both := m.Attribute("sendrecv")
		if !dir && !both {
			continue
		}
		switch m.MediaName.Media {
		case "video":
			video = true
		case "audio":
			audio = true
		}
	}
	return video, audio
}

// CORS lets a page on any origin use an endpoint (a WHIP or WHEP web
// client): the bearer token is the credential, never a cookie.
func CORS(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", "*")
	h.Set("Access-Control-Allow-Methods", "POST, DELETE, PATCH, OPTIONS")
	h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, If-Match")
	h.Set("Access-Control-Expose-Headers", "Location, Link, ETag")
}

// OpusSamples is how many 48 kHz samples an Opus packet holds (RFC 6716
// 3.1: the TOC byte's configuration gives the frame size, its code the
// frame count); 0 for a packet too short to say.
func OpusSamples(p []byte) int {
	if len(p) == 0 {
		return 0
	}
	cfg := p[0] >> 3
	var frame int // in 48 kHz samples
	switch {
	case cfg < 12: // SILK: 10, 20, 40, 60 ms
		frame = []int{480, 960, 1920, 2880}[cfg%4]
	case cfg < 16: // hybrid: 10, 20 ms
		frame = []int{480, 960}[cfg%2]
	default: // CELT: 2.5, 5, 10, 20 ms
		frame = []int{120, 240, 480, 960}[cfg%4]
	}
	switch p[0] & 3 {
	case 0:
		return frame
	case 1, 2:
		return 2 * frame
	default:
		if len(p) < 2 {
			return 0
		}
		return int(p[1]&0x3f) * frame
	}
}

// Route serves a WHIP or WHEP endpoint on mux: POST base (an offer) to
// post, DELETE base/{id} (a session) to del, CORS preflights, and PATCH
// base/{id} with 405: no trickle ICE nor ICE restart, the answer holds
// every candidate (RFC 9725 4.3.1).
func Route(mux *http.ServeMux, base string, post, del http.HandlerFunc) {
	options := func(w http.ResponseWriter, r *http.Request) {
		CORS(w)
		w.Header().Set("Accept-Post", "application/sdp")
		w.WriteHeader(http.StatusNoContent)
	}
	mux.HandleFunc("POST "+base, func(w http.ResponseWriter, r *http.Request) { CORS(w); post(w, r) })
	mux.HandleFunc("OPTIONS "+base, options)
	mux.HandleFunc("DELETE "+base+"/{id}", func(w http.ResponseWriter, r *http.Request) { CORS(w); del(w, r) })
	mux.HandleFunc("OPTIONS "+base+"/{id}", options)
	mux.HandleFunc("PATCH "+base+"/{id}", func(w http.ResponseWriter, r *http.Request) {
		CORS(w)
		http.Error(w, "trickle ICE is not supported: the answer holds every candidate", http.StatusMethodNotAllowed)
	})
}

// Bearer is r's bearer token (WHIP's stream key, WHEP's playback token)
// and whether it had one.
func Bearer(r *http.Request) (string, bool) {
	return strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
}

// IsSDP answers 415 unless r's body is declared application/sdp.
func IsSDP(w http.ResponseWriter, r *http.Request) bool {
	if !strings.HasPrefix(r.Header.Get("Content-Type"), "application/sdp") {
		http.Error(w, "the offer must be application/sdp", http.StatusUnsupportedMediaType)
		return false
	}
	return true
}

// maxOffer bounds an offer's size: a browser's is ~5 KB.
const maxOffer = 64 << 10

// ReadOffer reads r's SDP offer, answering 400 (false) when it is
// unreadable or too large.
func ReadOffer(w http.ResponseWriter, r *http.Request) (string, bool) {
	offer, err := io.ReadAll(io.LimitReader(r.Body, maxOffer+1))
	if err != nil || len(offer) > maxOffer {
		http.Error(w, "offer unreadable or larger than 64 KiB", http.StatusBadRequest)
		return "", false
	}
	return string(offer), true
}
