package router

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync"
	"time"
)

// reach is whether the router's gateway can be reached. A router carries
// deliveries to one gateway (its runtime node's); while that gateway
// refuses connections (its process died and is being started again, its
// node is gone) the router hands back what it holds and takes nothing
// new, so the routers of the nodes still up take the work, and no
// delivery spends its attempts on a gateway nobody is behind.
type reach struct {
	healthz string
	client  *http.Client
	every   time.Duration

	mu   sync.Mutex
	down chan struct{} // closed when the gateway was lost; a new one when it is back
	up   chan struct{} // closed when it is back; nil while up
}

func newReach(gatewayURL string) *reach {
	return &reach{healthz: gatewayURL + "/healthz", client: &http.Client{Timeout: 2 * time.Second},
		every: 250 * time.Millisecond, down: make(chan struct{})}
}

// whenUp waits until the gateway is up and returns the channel closed
// when it is next lost; ok is false if ctx ended first.
func (g *reach) whenUp(ctx context.Context) (down <-chan struct{}, ok bool) {
	for {
		g.mu.Lock()
		up, d := g.up, g.down
		g.mu.Unlock()
		if up == nil {
			return d, true
		}
		select {
		case <-up:
		case <-ctx.Done():
			return nil, false
		}
	}
}

// isDown says whether the gateway is lost now.
func (g *reach) isDown() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.up != nil
}

// lost marks the gateway unreachable, if it was not already, and probes
// its /healthz until it answers (or ctx ends).
func (g *reach) lost(ctx context.Context) {
	g.mu.Lock()
	if g.up != nil {
		g.mu.Unlock()
		return
	}
	g.up = make(chan struct{})
	close(g.down)
	g.mu.Unlock()
	go func() {
		for ctx.Err() == nil {
			select {
			case <-ctx.Done():
			case <-time.After(g.every):
			}
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, g.healthz, nil)
			if err != nil {
				continue
			}
			resp, err := g.client.Do(req)
			if err != nil {
				continue
			}
			resp.Body.Close()
			if resp.StatusCode/100 == 2 {
				break
			}
		}
		g.mu.Lock()
		close(g.up)
		g.up, g.down = nil, make(chan struct{})
		g.mu.Unlock()
	}()
}

// unreachable says whether err is a connection that was never made: the
// request did not reach the gateway, so it says nothing of the event.
func unreachable(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}
