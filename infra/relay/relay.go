// Package relay is segflow's one long-running media service: it takes live
// publishes authenticated by stream key from its protocol servers
// (relay/rtmp, relay/srt, relay/whip, through the relay/publish contract), cuts them at
// keyframes into MPEG-TS source segments without decoding (relay/mpegts),
// and puts them in the bucket through an on-disk spool (relay/spool), where
// they trigger the same functions as VOD uploads.
package relay

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/segflow/segflow/infra/playback"
	"github.com/segflow/segflow/infra/relay/publish"
	"github.com/segflow/segflow/infra/relay/pull"
	"github.com/segflow/segflow/infra/relay/rtc"
	"github.com/segflow/segflow/infra/relay/rtmp"
	"github.com/segflow/segflow/infra/relay/srt"
	"github.com/segflow/segflow/infra/relay/whep"
	"github.com/segflow/segflow/infra/relay/whip"
	"github.com/segflow/segflow/shared/storage"
)

// Config configures a Relay.
type Config struct {
	// RTMPAddr and SRTAddr are the listen addresses; empty disables one.
	RTMPAddr, SRTAddr string
	// WebRTCAddr is the UDP address of WebRTC media: publishers' (WHIP,
	// offers over HTTP). Empty: no WebRTC.
	WebRTCAddr string
	// WebRTCPublicIPs are the addresses answers advertise when the relay
	// is behind NAT; empty: its interfaces'.
	WebRTCPublicIPs []string
	// MaxViewersPerStream and MaxViewers cap WebRTC (WHEP) viewers of one
	// stream and of the relay (0: no cap).
	MaxViewersPerStream, MaxViewers int
	// Playback checks the tokens of private streams' WebRTC viewers
	// (playback.StreamSubject); nil: a private stream admits none.
	Playback *playback.Signer
	Keys     *Keys
	Store    *storage.Client
	Bucket   string
	// SegmentTarget is the segment duration aimed at (default 2s); cuts
	// fall on the first keyframe after it.
	SegmentTarget time.Duration
	// Window is how many segments a channel's playlists list (default 6;
	// a stream's dvr option sets its own).
	Window int
	// Reconnect is how long a stopped stream's channel waits for its
	// publisher to come back before it ends (default 20s; a stream's
	// reconnect option sets its own).
	Reconnect time.Duration
	// LowLatencyURL is where LowLatency is served as viewers reach it
	// (http://host:port/live); the live masters list each stream's LL-HLS
	// rendition under it. Empty: it is served but not listed.
	LowLatencyURL string
	// PullsFile names the streams the relay pulls from other servers
	// ("name url" lines, relay/pull); the relay follows its changes. Empty:
	// no pulls.
	PullsFile string
	// SpoolDir holds segments on their way to the bucket.
	SpoolDir string
	// SpoolMaxBytes bounds each stream's spool (default 1 GiB).
	SpoolMaxBytes int64
	// DrainTimeout bounds how long a stopped publish waits for its spool
	// (default 2m); the rest stays on disk for the next start.
	DrainTimeout time.Duration
	Logger       *slog.Logger
	Registerer   prometheus.Registerer
}

// Relay accepts publishers.
type Relay struct {
	cfg     Config
	log     *slog.Logger
	metrics *metrics
	keys    *keyGuard // backs off addresses that send wrong stream keys

	rtmp *rtmp.Server
	srt  *srt.Server
	rtc  *rtc.Transport // WebRTC media, for whip and whep
	whip *whip.Server
	whep *whep.Server

	mu      sync.Mutex
	active  map[string]bool // streams publishing now
	closing bool
	// channels are the streams that published since the relay started;
	// ends counts their channels' pending ends.
	channels map[string]*channel
	ends     sync.WaitGroup
	// bg ends with Close: the recovery of spools a previous run left.
	bg     context.Context
	stopBg context.CancelFunc
	// live are the publishing streams, for their LL-HLS renditions.
	live map[string]*stream

	// pulls are the running pulls by stream name (PullsFile).
	pullsMu   sync.Mutex
	pulls     map[string]*pull.Puller
	pullsStop chan struct{}
	pullsDone sync.WaitGroup
}

// Open starts the listeners; Close stops them, ends every publish (its
// spool drained within DrainTimeout) and joins every goroutine.
func Open(cfg Config) (*Relay, error) {
	r := &Relay{}
	if err := r.open(cfg); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *Relay) open(cfg Config) error {
	if cfg.Keys == nil || cfg.Store == nil || cfg.Bucket == "" || cfg.SpoolDir == "" {
		return errors.New("relay: Keys, Store, Bucket and SpoolDir are required")
	}
	if cfg.SegmentTarget <= 0 {
		cfg.SegmentTarget = 2 * time.Second
	}
	if cfg.Window <= 0 {
		cfg.Window = 6
	}
	if cfg.Reconnect <= 0 {
		cfg.Reconnect = 20 * time.Second
	}
	if cfg.SpoolMaxBytes <= 0 {
		cfg.SpoolMaxBytes = 1 << 30
	}
	if cfg.DrainTimeout <= 0 {
		cfg.DrainTimeout = 2 * time.Minute
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	r.cfg, r.log, r.metrics, r.keys = cfg, cfg.Logger, newMetrics(cfg.Registerer), newKeyGuard()
	r.bg, r.stopBg = context.WithCancel(context.Background())
	r.active, r.channels, r.live = map[string]bool{}, map[string]*channel{}, map[string]*stream{}
	var err error
	if cfg.RTMPAddr != "" {
		if r.rtmp, err = rtmp.Open(cfg.RTMPAddr, protocolHost{r, "rtmp"}); err != nil {
			return fmt.Errorf("relay: %w", err)
		}
	}
	if cfg.SRTAddr != "" {
		if r.srt, err = srt.Open(cfg.SRTAddr, protocolHost{r, "srt"}); err != nil {
			r.Close()
			return fmt.Errorf("relay: %w", err)
		}
	}
	if cfg.WebRTCAddr != "" {
		if r.rtc, err = rtc.Open(rtc.Config{UDPAddr: cfg.WebRTCAddr, PublicIPs: cfg.WebRTCPublicIPs, Logger: r.log}); err != nil {
			r.Close()
			return fmt.Errorf("relay: %w", err)
		}
		r.whip = whip.Open(r.rtc, whip.Config{SegmentTarget: cfg.SegmentTarget}, protocolHost{r, "whip"})
		r.whep = whep.Open(r.rtc, whep.Config{Source: r.broadcast, Authorize: r.authorizeViewer, MaxPerStream: cfg.MaxViewersPerStream, MaxViewers: cfg.MaxViewers,
			OnViewers: func(stream string, d int) { r.metrics.viewers.WithLabelValues(stream).Add(float64(d)) }, Logger: r.log})
	}
	r.pulls, r.pullsStop = map[string]*pull.Puller{}, make(chan struct{})
	if cfg.PullsFile != "" {
		r.pullsDone.Add(1)
		go r.watchPulls(cfg.PullsFile)
	}
	r.recoverSpools()
	return nil
}

// RTMPAddr is the RTMP listener's address.
func (r *Relay) RTMPAddr() string { return r.rtmp.Addr().String() }

// WHIP serves WebRTC publishers' offers at /whip and their sessions at
// /whip/<id> (mount it at the root); 404 when WebRTCAddr is empty.
func (r *Relay) WHIP() http.Handler {
	if r.whip == nil {
		return http.NotFoundHandler()
	}
	return r.whip.Handler()
}

// WHEP serves WebRTC viewers' offers at /whep/<stream> and their
// sessions at /whep/<stream>/<id> (mount it at the root); 404 when
// WebRTCAddr is empty.
func (r *Relay) WHEP() http.Handler {
	if r.whep == nil {
		return http.NotFoundHandler()
	}
	return r.whep.Handler()
}

// authorizeViewer admits anyone to a public stream, and to a private one
// whoever holds an unexpired token made for it with the playback key.
func (r *Relay) authorizeViewer(stream, token string) error {
	if !r.cfg.Keys.Options(stream).Private {
		return nil
	}
	if token == "" {
		return whep.ErrNoToken
	}
	if r.cfg.Playback == nil {
		return errors.New("private stream, and this relay has no playback key to check tokens with")
	}
	_, err := r.cfg.Playback.Verify(token, playback.StreamSubject(stream), time.Now())
	return err
}

// broadcast is a live stream's WebRTC broadcast, for whep.
func (r *Relay) broadcast(name string) (*whep.Broadcast, error) {
	r.mu.Lock()
	st := r.live[name]
	r.mu.Unlock()
	if st == nil {
		return nil, fmt.Errorf("%w: %s", whep.ErrNotLive, name)
	}
	return st.broadcast()
}

// WebRTCAddr is the UDP address of WebRTC media; nil without WebRTC.
func (r *Relay) WebRTCAddr() net.Addr {
	if r.rtc == nil {
		return nil
	}
	return r.rtc.Addr()
}

// claim marks a stream as publishing; a second publisher of the same
// stream is refused while the first one is on.
func (r *Relay) claim(name string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case r.closing:
		return publish.ErrClosing
	case r.active[name]:
		return fmt.Errorf("%w: %s", publish.ErrBusy, name)
	}
	r.active[name] = true
	return nil
}

func (r *Relay) release(name string) {
	r.mu.Lock()
	delete(r.active, name)
	r.mu.Unlock()
}

// Close stops accepting, ends every publish (their spools drain for up to
// DrainTimeout) and returns when all are done.
func (r *Relay) Close() {
	r.mu.Lock()
	r.closing = true
	r.mu.Unlock()
	if r.rtmp != nil {
		r.rtmp.Close()
	}
	if r.srt != nil {
		r.srt.Close()
	}
	if r.whip != nil {
		r.whip.Close()
	}
	if r.whep != nil {
		r.whep.Close()
	}
	if r.rtc != nil {
		r.rtc.Close()
	}
	if r.pullsStop != nil {
		close(r.pullsStop)
		r.pullsDone.Wait()
	}
	// A channel whose end is pending stays open: its stream may come back
	// once the relay is up again.
	r.mu.Lock()
	for _, ch := range r.channels {
		if ch.timer != nil && ch.timer.Stop() {
			r.ends.Done()
		}
		ch.timer = nil
	}
	r.mu.Unlock()
	r.stopBg()
	r.ends.Wait()
}

// protocolHost is the relay as one protocol's server sees it (publish.Host).
type protocolHost struct {
	r        *Relay
	protocol string
}

func (h protocolHost) Admit(remote net.Addr) time.Duration { return h.r.backingOff(h.protocol, remote) }

func (h protocolHost) Claim(key string, remote net.Addr) (string, error) {
	name, ok := h.r.cfg.Keys.Stream(key)
	if !ok {
		h.r.wrongKey(h.protocol, remote)
		return "", publish.ErrWrongKey
	}
	h.r.keys.succeeded(remote)
	if err := h.r.claim(name); err != nil {
		h.Refused("busy")
		return "", err
	}
	return name, nil
}

func (h protocolHost) Release(name string) { h.r.release(name) }

func (h protocolHost) Start(name string, sps []byte, audio *mpeg4audio.AudioSpecificConfig) (publish.Stream, error) {
	st, err := h.r.newStream(name, sps, audio)
	if err != nil {
		return nil, err // not a nil *stream in an interface
	}
	return st, nil
}

func (h protocolHost) Refused(reason string) {
	h.r.metrics.refused.WithLabelValues(h.protocol, reason).Inc()
}

func (h protocolHost) Logger() *slog.Logger { return h.r.log }
