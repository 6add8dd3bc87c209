package packager

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// A call's result must come from a run that saw the bucket after the
// call's own write; a burst of calls must cost fewer runs than calls.
func TestCoalescerSeesEveryCallsWrite(t *testing.T) {
	var c coalescer
	var written, runs atomic.Int64
	run := func() (string, error) {
		runs.Add(1)
		seen := written.Load() // the "listing"
		time.Sleep(20 * time.Millisecond)
		return strconv.FormatInt(seen, 10), nil
	}
	const calls = 40
	var wg sync.WaitGroup
	for i := range calls {
		wg.Go(func() {
			time.Sleep(time.Duration(i%8) * 3 * time.Millisecond)
			mine := written.Add(1) // the object the event is about
			msg, err := c.Do(context.Background(), "asset", run)
			if err != nil {
				t.Error(err)
				return
			}
			if seen, _ := strconv.ParseInt(msg, 10, 64); seen < mine {
				t.Errorf("call %d got a run that saw %d writes, before its own (%d)", i, seen, mine)
			}
		})
	}
	wg.Wait()
	if n := runs.Load(); n >= calls/2 {
		t.Errorf("%d runs for %d calls in a burst: not coalesced", n, calls)
	}
	if len(c.keys) != 0 {
		t.Errorf("%d keys left after every call returned", len(c.keys))
	}
}

func TestCoalescerNeverReusesFailure(t *testing.T) {
	var c coalescer
	var runs atomic.Int64
	release := make(chan struct{})
	first := func() (string, error) {
		runs.Add(1)
		<-release
		return "", errors.New("storage down")
	}
	errc := make(chan error, 1)
	go func() { _, err := c.Do(context.Background(), "a", first); errc <- err }()
	for runs.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	// Two calls arrive during the failing first run: neither takes its
	// failure, each runs again.
	fails := func() (string, error) { runs.Add(1); return "", errors.New("still down") }
	var wg sync.WaitGroup
	var failed atomic.Int64
	for range 2 {
		wg.Go(func() {
			if _, err := c.Do(context.Background(), "a", fails); err != nil {
				failed.Add(1)
			}
		})
	}
	time.Sleep(20 * time.Millisecond)
	close(release)
	if err := <-errc; err == nil {
		t.Fatal("first call: want its run's error")
	}
	wg.Wait()
	if failed.Load() != 2 || runs.Load() != 3 {
		t.Fatalf("failed calls %d, runs %d: want 2 and 3 (a failure is not shared)", failed.Load(), runs.Load())
	}
	msg, err := c.Do(context.Background(), "a", func() (string, error) { return "ok", nil })
	if err != nil || msg != "ok" {
		t.Fatalf("after the failures: %q %v", msg, err)
	}
}

func TestCoalescerGivesUpWhenCancelled(t *testing.T) {
	var c coalescer
	release := make(chan struct{})
	go c.Do(context.Background(), "a", func() (string, error) { <-release; return "", nil })
	time.Sleep(10 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := c.Do(ctx, "a", func() (string, error) { return "", nil }); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("waiting call: %v, want its context's error", err)
	}
	close(release)
}
