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

// waitUsers returns once n calls for key are inside c (running or
// waiting for their turn).
func waitUsers(t *testing.T, c *coalescer, key string, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c.mu.Lock()
		k := c.keys[key]
		users := 0
		if k != nil {
			users = k.users
		}
		c.mu.Unlock()
		if users >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d calls inside, want %d", users, n)
		}
		time.Sleep(time.Millisecond)
	}
}

// A call's result must come from a run that saw the bucket after the
// call's own write; a burst of calls that arrive during a run costs one
// more run, not one each.
func TestCoalescerSeesEveryCallsWrite(t *testing.T) {
	var c coalescer
	var written, runs atomic.Int64
	release := make(chan struct{})
	run := func() (string, error) {
		if runs.Add(1) == 1 {
			<-release // the burst arrives while the first run goes on
		}
		return strconv.FormatInt(written.Load(), 10), nil // the "listing"
	}
	const calls = 40
	var wg sync.WaitGroup
	for i := range calls {
		wg.Go(func() {
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
	waitUsers(t, &c, "asset", calls)
	close(release)
	wg.Wait()
	if n := runs.Load(); n > 2 {
		t.Errorf("%d runs for a burst of %d calls during one run: want at most 2", n, calls)
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
	waitUsers(t, &c, "a", 1)
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
	waitUsers(t, &c, "a", 3)
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
	release, running := make(chan struct{}), make(chan struct{})
	go c.Do(context.Background(), "a", func() (string, error) { close(running); <-release; return "", nil })
	<-running
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := c.Do(ctx, "a", func() (string, error) { return "", nil }); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("waiting call: %v, want its context's error", err)
	}
	close(release)
}
