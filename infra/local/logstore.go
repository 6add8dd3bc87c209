package local

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

// Query implements logs.Requester.
func (s *logStore) Query(ctx context.Context, req logs.Request) (<-chan logs.Message, error) {
	f, err := os.Open(s.path(req.Name))
	if err != nil {
		if os.IsNotExist(err) && !req.Follow {
			ch := make(chan logs.Message)
			close(ch)
			return ch, nil
		}
		if !os.IsNotExist(err) {
			return nil, fmt.Errorf("logs %s: %w", req.Name, err)
		}
	}
	ch := make(chan logs.Message, 64)
	go func() {
		defer close(ch)
		if f == nil {
			return
		}
		defer f.Close()
		// Read what is there, keeping only the last Tail messages.
		r := bufio.NewReader(f)
		var backlog []logs.Message
		for {
			line, err := r.ReadBytes('\n')
			if err == io.EOF {
				// A partial line stays for the follow loop.
				if len(line) > 0 {
					_, _ = f.Seek(-int64(len(line)), io.SeekCurrent)
					r.Reset(f)
				}
				break
			}
			if err != nil {
				return
			}
			var m logs.Message
			if json.Unmarshal(line, &m) != nil || (req.Since != nil && m.Timestamp.Before(*req.Since)) {
				continue
			}
			backlog = append(backlog, m)
			if req.Tail > 0 && len(backlog) > req.Tail {
				backlog = backlog[1:]
			}
		}
		for _, m := range backlog {
			select {
			case ch <- m:
			case <-ctx.Done():
				return
			}
		}
		if !req.Follow {
			return
		}
		var partial []byte
		for {
			line, err := r.ReadBytes('\n')
			partial = append(partial, line...)
			if err == io.EOF {
				select {
				case <-ctx.Done():
					return
				case <-time.After(200 * time.Millisecond):
				}
				continue
			}
			if err != nil {
				return
			}
			var m logs.Message
			if json.Unmarshal(partial, &m) == nil {
				select {
				case ch <- m:
				case <-ctx.Done():
					return
				}
			}
			partial = nil
		}
	}()
	return ch, nil
}
