package provider

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/openfaas/faas-provider/logs"
)

// logStore keeps each function's output as JSON lines in one file per
// function, and answers faas-provider log queries (tail, since, follow).
type logStore struct {
	dir string
	mu  sync.Mutex
	fs  map[string]*os.File
}

func newLogStore(dir string) (*logStore, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("log dir: %w", err)
	}
	return &logStore{dir: dir, fs: map[string]*os.File{}}, nil
}

func (s *logStore) path(name string) string { return filepath.Join(s.dir, name+".log") }

// Append records one line of a function's output.
func (s *logStore) Append(name string, pid int, text string) {
	b, _ := json.Marshal(logs.Message{Name: name, Namespace: Namespace, Instance: strconv.Itoa(pid),
		Timestamp: time.Now().UTC(), Text: text})
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.fs[name]
	if f == nil {
		var err error
		f, err = os.OpenFile(s.path(name), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			return
		}
		s.fs[name] = f
	}
	_, _ = f.Write(append(b, '\n'))
}

// Forget closes and removes a deleted function's log.
func (s *logStore) Forget(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if f := s.fs[name]; f != nil {
		f.Close()
		delete(s.fs, name)
	}
	_ = os.Remove(s.path(name))
}

// Close closes every open file.
func (s *logStore) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for n, f := range s.fs {
		f.Close()
		delete(s.fs, n)
	}
}

// Query implements logs.Requester: the last req.Tail messages (since
// req.Since), then, when following, each new one as it is written, also
// for a function that has logged nothing yet.
func (s *logStore) Query(ctx context.Context, req logs.Request) (<-chan logs.Message, error) {
	f, err := os.Open(s.path(req.Name))
	switch {
	case os.IsNotExist(err) && !req.Follow:
		ch := make(chan logs.Message)
		close(ch)
		return ch, nil
	case err != nil && !os.IsNotExist(err):
		return nil, fmt.Errorf("logs %s: %w", req.Name, err)
	}
	ch := make(chan logs.Message, 64)
	go func() {
		defer close(ch)
		if f == nil {
			// Its file comes with its first line.
			if f = waitForFile(ctx, s.path(req.Name)); f == nil {
				return
			}
		}
		defer f.Close()
		r := bufio.NewReader(f)
		for _, m := range backlog(f, r, req) {
			if !send(ctx, ch, m) {
				return
			}
		}
		if req.Follow {
			follow(ctx, r, ch)
		}
	}()
	return ch, nil
}

// followPoll is how often a followed log is checked for new lines.
const followPoll = 200 * time.Millisecond

func send(ctx context.Context, ch chan<- logs.Message, m logs.Message) bool {
	select {
	case ch <- m:
		return true
	case <-ctx.Done():
		return false
	}
}

// waitForFile opens path once it exists, or returns nil when ctx ends.
func waitForFile(ctx context.Context, path string) *os.File {
	for {
		if f, err := os.Open(path); err == nil {
			return f
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(followPoll):
		}
	}
}

// backlog reads the whole messages in f, keeping the last req.Tail
// written since req.Since. A partial last line is left unread in r, for
// follow.
func backlog(f *os.File, r *bufio.Reader, req logs.Request) []logs.Message {
	var out []logs.Message
	for {
		line, err := r.ReadBytes('\n')
		if err == io.EOF {
			if len(line) > 0 {
				_, _ = f.Seek(-int64(len(line)), io.SeekCurrent)
				r.Reset(f)
			}
			return out
		}
		if err != nil {
			return out
		}
		var m logs.Message
		if json.Unmarshal(line, &m) != nil || (req.Since != nil && m.Timestamp.Before(*req.Since)) {
			continue
		}
		out = append(out, m)
		if req.Tail > 0 && len(out) > req.Tail {
			out = out[1:]
		}
	}
}

// follow sends each message written to r from now on until ctx ends.
func follow(ctx context.Context, r *bufio.Reader, ch chan<- logs.Message) {
	var partial []byte
	for {
		line, err := r.ReadBytes('\n')
		partial = append(partial, line...)
		if err == io.EOF {
			select {
			case <-ctx.Done():
				return
			case <-time.After(followPoll):
			}
			continue
		}
		if err != nil {
			return
		}
		var m logs.Message
		if json.Unmarshal(partial, &m) == nil && !send(ctx, ch, m) {
			return
		}
		partial = nil
	}
}
