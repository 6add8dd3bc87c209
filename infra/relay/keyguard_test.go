package relay

import (
	"net"
	"testing"
	"time"
)

func TestKeyGuardBacksOffAnAddress(t *testing.T) {
	now := time.Unix(1000, 0)
	g := newKeyGuard()
	g.now = func() time.Time { return now }
	guesser := &net.TCPAddr{IP: net.IPv4(192, 0, 2, 7), Port: 50000}
	samePortLater := &net.TCPAddr{IP: net.IPv4(192, 0, 2, 7), Port: 50001}
	other := &net.TCPAddr{IP: net.IPv4(192, 0, 2, 8), Port: 50000}
	wants := []time.Duration{0, 0, 0, time.Second, 2 * time.Second, 4 * time.Second}
	for i, want := range wants {
		if n, wait := g.failed(guesser); n != i+1 || wait != want {
			t.Fatalf("failure %d: %d, wait %s; want %s", i+1, n, wait, want)
		}
	}
	// A new connection from another port of the same host waits too.
	if w := g.waiting(samePortLater); w != 4*time.Second {
		t.Fatalf("waiting = %s, want 4s", w)
	}
	if w := g.waiting(other); w != 0 {
		t.Fatalf("another address waits %s", w)
	}
	now = now.Add(5 * time.Second)
	if w := g.waiting(guesser); w != 0 {
		t.Fatalf("after the wait: %s", w)
	}
	for range 30 {
		g.failed(guesser)
	}
	if w := g.waiting(guesser); w != maxKeyBackoff {
		t.Fatalf("capped wait = %s, want %s", w, maxKeyBackoff)
	}
	g.succeeded(guesser)
	if w := g.waiting(guesser); w != 0 {
		t.Fatalf("after a right key: %s", w)
	}
}
