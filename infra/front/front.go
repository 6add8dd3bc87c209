// Package front is one address in front of several servers of one
// service (a MinIO pool's, a set of gateways'): each connection goes to
// the next server that accepts it, so a dead server costs a refused dial,
// not a failed request. It plays the part a Kubernetes Service or a load
// balancer plays on a cluster, for `segflow up --nodes`.
package front

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Front forwards TCP connections to backends in turn.
type Front struct {
	l        net.Listener
	backends []string
	next     atomic.Uint64
	log      *slog.Logger
	wg       sync.WaitGroup

	mu    sync.Mutex
	conns map[net.Conn]struct{}
}

// Open listens on addr and forwards to backends (host:port) until Close.
func Open(addr string, backends []string, log *slog.Logger) (*Front, error) {
	if len(backends) == 0 {
		return nil, errors.New("front: no backends")
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("front %s: %w", addr, err)
	}
	f := &Front{l: l, backends: backends, log: log, conns: map[net.Conn]struct{}{}}
	f.wg.Go(f.serve)
	return f, nil
}

// Addr is where the front listens.
func (f *Front) Addr() string { return f.l.Addr().String() }

func (f *Front) serve() {
	for {
		c, err := f.l.Accept()
		if err != nil {
			return
		}
		f.wg.Go(func() { f.forward(c) })
	}
}

// dial connects to the next backend that accepts, trying each once.
func (f *Front) dial() (net.Conn, error) {
	start := f.next.Add(1)
	var errs []error
	for i := range f.backends {
		b := f.backends[(int(start)+i)%len(f.backends)]
		c, err := net.DialTimeout("tcp", b, 2*time.Second)
		if err == nil {
			return c, nil
		}
		errs = append(errs, err)
	}
	return nil, fmt.Errorf("front: every backend refused: %w", errors.Join(errs...))
}

func (f *Front) forward(c net.Conn) {
	defer c.Close()
	b, err := f.dial()
	if err != nil {
		f.log.Warn("front: no backend", "err", err)
		return
	}
	defer b.Close()
	if !f.track(c, b) {
		return
	}
	defer f.untrack(c, b)
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		// Half-close: the other side may still be answering.
		if tc, ok := dst.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
		done <- struct{}{}
	}
	go pipe(b, c)
	go pipe(c, b)
	<-done
	<-done
}

// track remembers a pair of connections for Close; false once closed.
func (f *Front) track(cs ...net.Conn) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.conns == nil {
		return false
	}
	for _, c := range cs {
		f.conns[c] = struct{}{}
	}
	return true
}

func (f *Front) untrack(cs ...net.Conn) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range cs {
		delete(f.conns, c)
	}
}

// Close stops listening and cuts the connections in flight.
func (f *Front) Close() {
	f.l.Close()
	f.mu.Lock()
	for c := range f.conns {
		c.Close()
	}
	f.conns = nil
	f.mu.Unlock()
	f.wg.Wait()
}
