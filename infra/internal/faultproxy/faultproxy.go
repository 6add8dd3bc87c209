// Package faultproxy is a TCP proxy for tests that makes a link
// unreliable on demand: connections refused, delayed or cut at random,
// or every HTTP request answered 503 for a while, as an edge relay's link
// to the origin bucket or an overloaded MinIO would.
package faultproxy

import (
	"bufio"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"
)

// Faults are what the proxy does to each new connection.
type Faults struct {
	Drop     float64       // share of connections closed at once
	MaxDelay time.Duration // a connection waits up to this before it is relayed
	// MaxLife, when set, cuts a relayed connection after a random time
	// up to it, mid-request or mid-answer alike.
	MaxLife time.Duration
	// Unavailable answers every request 503 (Service Unavailable, as
	// MinIO does when it is overloaded) instead of relaying it.
	Unavailable bool
}

// Proxy relays to a target with the current Faults.
type Proxy struct {
	l      net.Listener
	target string
	mu     sync.Mutex
	faults Faults
	rng    *rand.Rand
	// connections seen, dropped, cut; requests answered 503
	conns, dropped, cut, refused int
}

// Start proxies a free local port to target until the test ends.
func Start(t testing.TB, target string) *Proxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{l: l, target: target, rng: rand.New(rand.NewPCG(1, 2))}
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			wg.Go(func() { p.serve(c) })
		}
	})
	t.Cleanup(func() { l.Close() })
	return p
}

// Addr is the proxy's host:port.
func (p *Proxy) Addr() string { return p.l.Addr().String() }

// Set changes the faults for connections made from now on (and
// Unavailable for requests on open ones).
func (p *Proxy) Set(f Faults) {
	p.mu.Lock()
	p.faults = f
	p.mu.Unlock()
}

// Stats returns the counts so far.
func (p *Proxy) Stats() (conns, dropped, cut, refused int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.conns, p.dropped, p.cut, p.refused
}

// draw decides a new connection's fate under the current faults.
func (p *Proxy) draw() (f Faults, drop bool, delay, life time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.conns++
	f = p.faults
	if p.rng.Float64() < f.Drop {
		p.dropped++
		return f, true, 0, 0
	}
	if f.MaxDelay > 0 {
		delay = time.Duration(p.rng.Int64N(int64(f.MaxDelay)))
	}
	if f.MaxLife > 0 {
		life = time.Duration(p.rng.Int64N(int64(f.MaxLife)))
	}
	return f, false, delay, life
}

func (p *Proxy) count(n *int) {
	p.mu.Lock()
	*n++
	p.mu.Unlock()
}

func (p *Proxy) unavailable() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.faults.Unavailable
}

func (p *Proxy) serve(c net.Conn) {
	defer c.Close()
	f, drop, delay, life := p.draw()
	if drop {
		return
	}
	time.Sleep(delay)
	if f.Unavailable {
		p.refuse(c)
		return
	}
	b, err := net.Dial("tcp", p.target)
	if err != nil {
		return
	}
	defer b.Close()
	if life > 0 {
		timer := time.AfterFunc(life, func() { p.count(&p.cut); c.Close(); b.Close() })
		defer timer.Stop()
	}
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(b, c); done <- struct{}{} }()
	go func() { _, _ = io.Copy(c, b); done <- struct{}{} }()
	<-done
}

// refuse answers each request on c with 503 until the client closes or
// the faults change (then the connection is closed, and the client's
// next one is relayed).
func (p *Proxy) refuse(c net.Conn) {
	r := bufio.NewReader(c)
	for p.unavailable() {
		req, err := http.ReadRequest(r)
		if err != nil {
			return
		}
		_, _ = io.Copy(io.Discard, req.Body)
		req.Body.Close()
		p.count(&p.refused)
		resp := &http.Response{StatusCode: http.StatusServiceUnavailable, ProtoMajor: 1, ProtoMinor: 1,
			Header: http.Header{"Retry-After": {"1"}, "Content-Type": {"application/xml"}}, ContentLength: 0, Body: http.NoBody}
		if err := resp.Write(c); err != nil {
			return
		}
	}
}
