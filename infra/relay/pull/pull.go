package pull

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v5"

	"github.com/segflow/segflow/infra/relay/publish"
)

// Pull states.
const (
	StateConnecting = "connecting" // dialling, or waiting for the first bytes
	StateLive       = "live"       // media coming in
	StateWaiting    = "waiting"    // the source dropped or failed; retrying at Retry
	StateEnded      = "ended"      // an HLS source's playlist ended: not pulled again
)

// errEnded is a source's own end of its stream, for good (an HLS
// playlist's ENDLIST): unlike a dropped connection, not worth retrying.
var errEnded = errors.New("the source's playlist ended")

// Status is one pull as `segflow pull list` shows it.
type Status struct {
	Source
	State string    `json:"state"`
	Since time.Time `json:"since"` // when State began
	// Bitrate is what came in over the last second or more, in bits/s.
	Bitrate int64 `json:"bitrate"`
	Bytes   int64 `json:"bytes"` // received since the relay started pulling it
	// Attempts counts connections since the last one that lasted.
	Attempts int       `json:"attempts"`
	Error    string    `json:"error,omitempty"` // why the last connection ended
	Retry    time.Time `json:"retry,omitzero"`  // when the next one is tried
}

// settled is how long a connection must last for the next failure to
// start the waits from the shortest again.
const settled = 30 * time.Second

// Puller fetches one source for as long as it runs.
type Puller struct {
	src  Source
	host publish.Host
	log  *slog.Logger

	bytes  atomic.Int64
	live   atomic.Bool // this connection has received bytes
	mu     sync.Mutex
	st     Status
	sample struct {
		at    time.Time
		bytes int64
	}

	cancel context.CancelFunc
	done   chan struct{}
}

// Start pulls src into host (whose Claim takes the stream's name as its
// key) until Stop.
func Start(src Source, host publish.Host) *Puller {
	ctx, cancel := context.WithCancel(context.Background())
	p := &Puller{src: src, host: host, log: host.Logger().With("pull", src.Name), cancel: cancel, done: make(chan struct{})}
	p.st = Status{Source: src, State: StateConnecting, Since: time.Now()}
	p.sample.at = p.st.Since // the first Status gives the rate since the start
	go p.run(ctx)
	return p
}

// Stop ends the pull (and the stream it feeds) and waits for it.
func (p *Puller) Stop() {
	p.cancel()
	<-p.done
}

// Source is what p pulls.
func (p *Puller) Source() Source { return p.src }

// Status is p's state now.
func (p *Puller) Status() Status {
	p.mu.Lock()
	defer p.mu.Unlock()
	now, n := time.Now(), p.bytes.Load()
	if d := now.Sub(p.sample.at); d >= time.Second {
		p.st.Bitrate = int64(float64(n-p.sample.bytes) * 8 / d.Seconds())
		p.sample.at, p.sample.bytes = now, n
	}
	st := p.st
	st.Bytes = n
	return st
}

func (p *Puller) set(f func(*Status)) {
	p.mu.Lock()
	f(&p.st)
	p.mu.Unlock()
}

// received counts bytes from the source (every read: an atomic add, and
// no lock but on a connection's first bytes, which make it live).
func (p *Puller) received(n int) {
	if n <= 0 {
		return
	}
	p.bytes.Add(int64(n))
	if p.live.CompareAndSwap(false, true) {
		p.set(func(s *Status) { s.State, s.Since, s.Error, s.Retry = StateLive, time.Now(), "", time.Time{} })
	}
}

func (p *Puller) run(ctx context.Context) {
	defer close(p.done)
	// Waits from 1 s doubling to 30 s, each drawn within +-50%: sources
	// that dropped together (one upstream outage) do not all come back
	// at the same instant.
	b := &backoff.ExponentialBackOff{InitialInterval: time.Second, RandomizationFactor: 0.5, Multiplier: 2, MaxInterval: 30 * time.Second}
	b.Reset()
	for {
		began := time.Now()
		p.live.Store(false)
		p.set(func(s *Status) { s.State, s.Since, s.Attempts = StateConnecting, began, s.Attempts+1 })
		err := p.once(ctx)
		if ctx.Err() != nil {
			return
		}
		if errors.Is(err, errEnded) {
			p.log.Info("relay: pull ended", "url", redacted(p.src.URL))
			p.set(func(s *Status) { s.State, s.Since, s.Error = StateEnded, time.Now(), err.Error() })
			return // until the pulls file changes the line
		}
		if err == nil {
			err = errors.New("the source ended the stream")
		}
		if time.Since(began) >= settled {
			b.Reset()
			p.set(func(s *Status) { s.Attempts = 1 })
		}
		wait := b.NextBackOff()
		p.log.Warn("relay: pull dropped", "url", redacted(p.src.URL), "err", err.Error(), "retry_in", wait.Round(time.Millisecond).String())
		p.set(func(s *Status) {
			s.State, s.Since, s.Error, s.Retry = StateWaiting, time.Now(), err.Error(), time.Now().Add(wait)
		})
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// once is one connection to the source, from dial to drop.
func (p *Puller) once(ctx context.Context) error {
	u, err := url.Parse(p.src.URL)
	if err != nil {
		return err
	}
	k, err := kindOf(u)
	if err != nil {
		return err
	}
	name, err := p.host.Claim(p.src.Name, nil)
	if err != nil {
		return err
	}
	defer p.host.Release(name)
	switch k {
	case kindRTMP:
		err = playRTMP(ctx, u, p.host, name, p.received)
	case kindSRT:
		err = callSRT(ctx, u, p.host, name, p.received)
	case kindFLV:
		err = getFLV(ctx, u, p.host, name, p.received)
	case kindHLS:
		err = getHLS(ctx, u, p.host, name, p.received)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", k, err)
	}
	return nil
}

func redacted(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "?"
	}
	return u.Redacted()
}
