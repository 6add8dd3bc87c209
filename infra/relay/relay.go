// Package relay is segflow's one long-running media service: it takes live
// publishes (RTMP, SRT) authenticated by stream key, cuts them at
// keyframes into MPEG-TS source segments without decoding, and puts them
// in the bucket through an on-disk spool, where they trigger the same
// functions as VOD uploads.
package relay

import (
	"errors"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/segflow/segflow/shared/storage"
)

// Config configures a Relay.
type Config struct {
	// RTMPAddr and SRTAddr are the listen addresses; empty disables one.
	RTMPAddr, SRTAddr string
	Keys              *Keys
	Store             *storage.Client
	Bucket            string
	// SegmentTarget is the segment duration aimed at (default 2s); cuts
	// fall on the first keyframe after it.
	SegmentTarget time.Duration
	// Window is how many segments live playlists list (default 6).
	Window int
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

	rtmp net.Listener
	srt  interface{ Close() }

	done chan struct{} // closed by Close

	mu      sync.Mutex
	active  map[string]bool // streams publishing now
	conns   map[net.Conn]bool
	closing bool
	wg      sync.WaitGroup
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
	r.active, r.conns, r.done = map[string]bool{}, map[net.Conn]bool{}, make(chan struct{})
	if cfg.RTMPAddr != "" {
		if err := r.listenRTMP(cfg.RTMPAddr); err != nil {
			return err
		}
	}
	if cfg.SRTAddr != "" {
		if err := r.listenSRT(cfg.SRTAddr); err != nil {
			r.Close()
			return err
		}
	}
	return nil
}

// RTMPAddr is the RTMP listener's address.
func (r *Relay) RTMPAddr() string { return r.rtmp.Addr().String() }

// claim marks a stream as publishing; a second publisher of the same
// stream is refused while the first one is on.
func (r *Relay) claim(name string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.active[name] || r.closing {
		return false
	}
	r.active[name] = true
	return true
}

func (r *Relay) release(name string) {
	r.mu.Lock()
	delete(r.active, name)
	r.mu.Unlock()
}

func (r *Relay) track(c net.Conn, on bool) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if on && r.closing {
		return false
	}
	if on {
		r.conns[c] = true
	} else {
		delete(r.conns, c)
	}
	return true
}

func (r *Relay) closed() <-chan struct{} { return r.done }

// Close stops accepting, ends every publish (their spools drain for up to
// DrainTimeout) and returns when all are done.
func (r *Relay) Close() {
	r.mu.Lock()
	if !r.closing {
		close(r.done)
	}
	r.closing = true
	for c := range r.conns {
		c.Close()
	}
	r.mu.Unlock()
	if r.rtmp != nil {
		r.rtmp.Close()
	}
	if r.srt != nil {
		r.srt.Close()
	}
	r.wg.Wait()
}
