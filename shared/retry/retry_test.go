package retry

import (
	"testing"
	"time"
)

func TestBackoff(t *testing.T) {
	const first, max = 100 * time.Millisecond, 2 * time.Second
	for run := range 200 {
		b := Backoff(first, max)
		w := first
		for n := 1; n <= 10; n++ {
			d := b.NextBackOff()
			if d < w/2 || d > w {
				t.Fatalf("run %d: wait %d = %s, want within [%s, %s]", run, n, d, w/2, w)
			}
			if got := Nth(first, max, n); got < w/2 || got > w {
				t.Fatalf("Nth(%d) = %s, want within [%s, %s]", n, got, w/2, w)
			}
			w = min(2*w, max)
		}
	}
	// Spread: two schedules do not wait in step.
	same := 0
	for range 50 {
		if a, b := Nth(first, max, 3), Nth(first, max, 3); a == b {
			same++
		}
	}
	if same > 5 {
		t.Fatalf("%d of 50 pairs of waits were equal: no jitter", same)
	}
}
