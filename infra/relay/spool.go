package relay

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/segflow/segflow/shared/storage"
)

// errSpoolFull is returned when an item would take the spool over its bound.
var errSpoolFull = errors.New("spool full")

// item is one object waiting for the bucket.
type item struct {
	Key         string            `json:"key"`
	ContentType string            `json:"contentType"`
	Metadata    map[string]string `json:"metadata"`
}

// spool keeps what a stream has to upload on local disk and uploads it in
// order: item n+1 never lands before item n. While storage is down items
// pile up (to MaxBytes) and go out in order once it is back; a relay that
// restarts finds its spool folders and carries on.
type spool struct {
	dir      string
	bucket   string
	store    *storage.Client
	maxBytes int64
	log      *slog.Logger
	onDepth  func(items int, bytes int64)

	mu      sync.Mutex
	seq     int
	bytes   int64
	wake    chan struct{}
	closing bool
	abandon bool // Close gave up waiting: stop retrying, keep the files
	done    chan struct{}
}

func openSpool(dir, bucket string, store *storage.Client, maxBytes int64, log *slog.Logger, onDepth func(int, int64)) (*spool, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("spool %s: %w", dir, err)
	}
	s := &spool{dir: dir, bucket: bucket, store: store, maxBytes: maxBytes, log: log, onDepth: onDepth,
		wake: make(chan struct{}, 1), done: make(chan struct{})}
	// Pick up after a restart.
	// Scratch files of segments cut short by a crash are of no use.
	if parts, _ := filepath.Glob(filepath.Join(dir, "part-*.tmp")); parts != nil {
		for _, p := range parts {
			os.Remove(p)
		}
	}
	for _, p := range s.pending() {
		var n int
		fmt.Sscanf(filepath.Base(p), "%d.json", &n)
		s.seq = max(s.seq, n)
		if st, err := os.Stat(strings.TrimSuffix(p, ".json") + ".bin"); err == nil {
			s.bytes += st.Size()
		}
	}
	go s.run()
	return s, nil
}

// Add queues an object held in memory (a manifest).
func (s *spool) Add(it item, data []byte) error {
	f, err := s.Create()
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("spool %s: %w", it.Key, err)
	}
	return s.AddFile(it, f.Name(), int64(len(data)))
}

// Create opens a scratch file in the spool's folder for AddFile.
func (s *spool) Create() (*os.File, error) {
	return os.CreateTemp(s.dir, "part-*.tmp")
}

// AddFile queues the object written to path (made by Create), taking the
// file over. It is on disk, in order, when AddFile returns.
func (s *spool) AddFile(it item, path string, size int64) error {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		os.Remove(path)
		return errors.New("spool closed")
	}
	if s.bytes+size > s.maxBytes {
		s.mu.Unlock()
		os.Remove(path)
		return fmt.Errorf("%s: %w (%d bytes queued)", it.Key, errSpoolFull, s.bytes)
	}
	s.seq++
	n := s.seq
	s.bytes += size
	s.mu.Unlock()
	base := filepath.Join(s.dir, fmt.Sprintf("%09d", n))
	// Data first, header last: a header marks a complete item.
	if err := os.Rename(path, base+".bin"); err != nil {
		return fmt.Errorf("spool %s: %w", it.Key, err)
	}
	hdr, _ := json.Marshal(it)
	if err := os.WriteFile(base+".json.tmp", hdr, 0o644); err != nil {
		return fmt.Errorf("spool %s: %w", it.Key, err)
	}
	if err := os.Rename(base+".json.tmp", base+".json"); err != nil {
		return fmt.Errorf("spool %s: %w", it.Key, err)
	}
	s.report()
	select {
	case s.wake <- struct{}{}:
	default:
	}
	return nil
}

func (s *spool) pending() []string {
	ps, _ := filepath.Glob(filepath.Join(s.dir, "*.json"))
	sort.Strings(ps)
	return ps
}

func (s *spool) report() {
	if s.onDepth == nil {
		return
	}
	s.mu.Lock()
	b := s.bytes
	s.mu.Unlock()
	s.onDepth(len(s.pending()), b)
}

// run uploads items in order, retrying the head with backoff until it goes.
func (s *spool) run() {
	defer close(s.done)
	backoff := 250 * time.Millisecond
	for {
		s.mu.Lock()
		abandon := s.abandon
		s.mu.Unlock()
		if abandon {
			return
		}
		ps := s.pending()
		if len(ps) == 0 {
			s.mu.Lock()
			closing := s.closing
			s.mu.Unlock()
			if closing {
				return
			}
			<-s.wake
			continue
		}
		if err := s.upload(ps[0]); err != nil {
			s.log.Warn("spool: upload failed, keeping it", "item", filepath.Base(ps[0]), "err", err, "retry_in", backoff.String())
			select {
			case <-s.wake:
			case <-time.After(backoff):
			}
			backoff = min(backoff*2, 5*time.Second)
			continue
		}
		backoff = 250 * time.Millisecond
		s.report()
	}
}

func (s *spool) upload(hdrPath string) error {
	var it item
	b, err := os.ReadFile(hdrPath)
	if err == nil {
		err = json.Unmarshal(b, &it)
	}
	if err != nil {
		s.log.Error("spool: unreadable item dropped", "item", hdrPath, "err", err)
		return os.Remove(hdrPath)
	}
	bin := strings.TrimSuffix(hdrPath, ".json") + ".bin"
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.store.PutFile(ctx, s.bucket, it.Key, bin, storage.PutOptions{ContentType: it.ContentType, Metadata: it.Metadata}); err != nil {
		return err
	}
	st, _ := os.Stat(bin)
	_ = os.Remove(hdrPath)
	_ = os.Remove(bin)
	if st != nil {
		s.mu.Lock()
		s.bytes -= st.Size()
		s.mu.Unlock()
	}
	return nil
}

// Close waits until everything queued is uploaded or ctx ends; what is
// left stays on disk for the next start.
func (s *spool) Close(ctx context.Context) error {
	s.mu.Lock()
	s.closing = true
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
	select {
	case <-s.done:
		_ = os.Remove(s.dir) // empty: done with it
		return nil
	case <-ctx.Done():
		s.mu.Lock()
		s.abandon = true
		s.mu.Unlock()
		select {
		case s.wake <- struct{}{}:
		default:
		}
		return fmt.Errorf("spool %s: %d items not uploaded yet: %w", s.dir, len(s.pending()), ctx.Err())
	}
}
