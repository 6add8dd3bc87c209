package relay

import (
	"net"
	"sync"
	"time"
)

// keyGuard slows down stream-key guessing: an address gets freeKeyFailures
// wrong keys, then each further one makes it wait twice as long before it
// is heard again (1 s, 2 s, 4 s ... up to maxKeyBackoff). A right key
// clears its record; a record with no failure for forgetKeyFailures goes.
type keyGuard struct {
	mu    sync.Mutex
	now   func() time.Time
	addrs map[string]*keyFailures
}

type keyFailures struct {
	n     int
	until time.Time // refused until then
	last  time.Time
}

const (
	freeKeyFailures   = 3
	maxKeyBackoff     = 5 * time.Minute
	forgetKeyFailures = 15 * time.Minute
)

func newKeyGuard() *keyGuard {
	return &keyGuard{now: time.Now, addrs: map[string]*keyFailures{}}
}

// host is the address without its port: a guesser reconnects from new ports.
func host(addr net.Addr) string {
	h, _, err := net.SplitHostPort(addr.String())
	if err != nil {
		return addr.String()
	}
	return h
}

// waiting says how long addr is still refused (0: it may try).
func (g *keyGuard) waiting(addr net.Addr) time.Duration {
	g.mu.Lock()
	defer g.mu.Unlock()
	f := g.addrs[host(addr)]
	if f == nil {
		return 0
	}
	return max(0, f.until.Sub(g.now()))
}

// failed records a wrong key from addr and returns the failures so far
// and the wait it now has.
func (g *keyGuard) failed(addr net.Addr) (int, time.Duration) {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.now()
	g.forget(now)
	h := host(addr)
	f := g.addrs[h]
	if f == nil {
		f = &keyFailures{}
		g.addrs[h] = f
	}
	f.n++
	f.last = now
	if f.n <= freeKeyFailures {
		return f.n, 0
	}
	wait := min(maxKeyBackoff, time.Second<<min(f.n-freeKeyFailures-1, 20))
	f.until = now.Add(wait)
	return f.n, wait
}

// succeeded clears addr's record.
func (g *keyGuard) succeeded(addr net.Addr) {
	g.mu.Lock()
	defer g.mu.Unlock()
	delete(g.addrs, host(addr))
}

// forget drops records idle for forgetKeyFailures. g.mu is held.
func (g *keyGuard) forget(now time.Time) {
	for h, f := range g.addrs {
		if now.Sub(f.last) > forgetKeyFailures {
			delete(g.addrs, h)
		}
	}
}

// wrongKey counts, logs and backs off a wrong stream key from addr. The
// key itself is never logged.
func (r *Relay) wrongKey(protocol string, addr net.Addr) {
	r.metrics.refused.WithLabelValues(protocol, "key").Inc()
	n, wait := r.keys.failed(addr)
	r.log.Warn("relay: wrong stream key refused", "protocol", protocol, "remote", addr.String(),
		"failures", n, "backoff", wait.String())
}

// backingOff is how long addr must still wait after its wrong keys; a
// connection refused for it is counted.
func (r *Relay) backingOff(protocol string, addr net.Addr) time.Duration {
	wait := r.keys.waiting(addr)
	if wait > 0 {
		r.metrics.refused.WithLabelValues(protocol, "backoff").Inc()
	}
	return wait
}
