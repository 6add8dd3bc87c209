package packager

import (
	"context"
	"sync"
)

// coalescer runs the calls for one key one at a time and lets a call
// that waited reuse the result of a run that started after it arrived:
// that run listed the bucket after the call's object was written, so it
// did the call's work. One transcode call writes a segment of every
// rendition within milliseconds, and each write is a packager event; with
// this the burst costs about two playlist rebuilds instead of one per
// rendition, and the playlists are the same.
type coalescer struct {
	mu   sync.Mutex
	keys map[string]*keyRuns
}

// keyRuns is one key's state, kept while any call for it is around.
type keyRuns struct {
	turn    chan struct{} // holds a token while a run is going
	users   int
	started int    // runs started so far
	okRun   int    // number of the latest run that succeeded (0: none)
	okMsg   string // its result
}

// Do runs fn for key unless a run that started after this call arrived
// has succeeded by the time it is this call's turn; then it returns that
// run's result. A failed run is never reused: the next call runs again.
func (c *coalescer) Do(ctx context.Context, key string, fn func() (string, error)) (string, error) {
	c.mu.Lock()
	if c.keys == nil {
		c.keys = map[string]*keyRuns{}
	}
	k := c.keys[key]
	if k == nil {
		k = &keyRuns{turn: make(chan struct{}, 1)}
		c.keys[key] = k
	}
	k.users++
	arrived := k.started
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		if k.users--; k.users == 0 {
			delete(c.keys, key)
		}
		c.mu.Unlock()
	}()

	select {
	case k.turn <- struct{}{}:
	case <-ctx.Done():
		return "", ctx.Err()
	}
	defer func() { <-k.turn }()
	c.mu.Lock()
	if k.okRun > arrived {
		msg := k.okMsg
		c.mu.Unlock()
		return msg, nil
	}
	k.started++
	run := k.started
	c.mu.Unlock()

	msg, err := fn()
	if err == nil {
		c.mu.Lock()
		k.okRun, k.okMsg = run, msg
		c.mu.Unlock()
	}
	return msg, err
}
