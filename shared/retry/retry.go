// Package retry is segflow's one retry schedule, on cenkalti/backoff:
// every loop that waits before trying again (the router's redeliveries and
// busy functions, the relay's spool, async callbacks, conditional writes)
// waits the same way.
package retry

import (
	"context"
	"time"

	"github.com/cenkalti/backoff/v5"
)

// Backoff is the schedule: the nth wait is a random point in [w/2, w],
// w = first·2^(n-1) capped at max. Waits grow, never pass max, and many
// callers retrying at once spread out. Reset starts it over.
func Backoff(first, max time.Duration) *backoff.ExponentialBackOff {
	// backoff spreads each interval ±RandomizationFactor around it:
	// ¾w ± ⅓ is [w/2, w].
	return &backoff.ExponentialBackOff{InitialInterval: first * 3 / 4, RandomizationFactor: 1.0 / 3,
		Multiplier: 2, MaxInterval: max * 3 / 4}
}

// Nth is the schedule's wait before retry n (1 for the first), for
// retries counted elsewhere (JetStream's delivery count).
func Nth(first, max time.Duration, n int) time.Duration {
	b := Backoff(first, max)
	d := b.NextBackOff()
	for range min(n, 64) - 1 { // past 64 doublings every wait is capped
		d = b.NextBackOff()
	}
	return d
}

// Wait sleeps for the schedule's next wait, or until ctx ends (false).
func Wait(ctx context.Context, b *backoff.ExponentialBackOff) bool {
	t := time.NewTimer(b.NextBackOff())
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
