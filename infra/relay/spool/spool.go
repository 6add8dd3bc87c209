// Package spool keeps what a live stream has to upload on local disk and
// uploads it in order, through storage outages and relay restarts.
package spool

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/segflow/segflow/shared/retry"
	"github.com/segflow/segflow/shared/storage"
)

// ErrFull is returned when an Item would take the spool over its bound.
var ErrFull = errors.New("spool full")

// Item is one object waiting for the bucket.
type Item struct {
	Key         string            `json:"key"`
	ContentType string            `json:"contentType"`
	Metadata    map[string]string `json:"metadata"`
}

// spool keeps what a stream has to upload on local disk and uploads it in
// order: Item n+1 never lands before Item n. While storage is down items
// pile up (to MaxBytes) and go out in order once it is back; a relay that
// restarts finds its spool folders and carries on.
type Spool struct {
	dir      string
	bucket   string
	store    *storage.Client
	maxBytes int64
	log      *slog.Logger
	onDepth  func(items int, bytes int64)

	mu    sync.Mutex
	seq   int
	bytes int64 // on disk
	// mem holds, by sequence number, the items the disk refused (full):
	// a spool whose disk is full goes on in memory, up to memoryBound, so
	// a full disk costs the relay memory, not the stream's segments.
	mem      map[int]memItem
	memBytes int64
	wake     chan struct{}
	closing  bool
	abandon  bool // Close gave up waiting: stop retrying, keep the files
	done     chan struct{}
}

// Open opens the spool in dir (made if missing), picks up what a previous
// one left there, and starts uploading; Close stops it. onDepth, when not
// nil, hears the items and bytes waiting after each change.
func Open(dir, bucket string, store *storage.Client, maxBytes int64, log *slog.Logger, onDepth func(items int, bytes int64)) (*Spool, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("spool %s: %w", dir, err)
	}
	s := &Spool{dir: dir, bucket: bucket, store: store, maxBytes: maxBytes, log: log, onDepth: onDepth,
		mem: map[int]memItem{}, wake: make(chan struct{}, 1), done: make(chan struct{})}
	// Pick up after a restart.
	// Scratch files of segments cut short by a crash are of no use.
	if parts, _ := filepath.Glob(filepath.Join(dir, "part-*.tmp")); parts != nil {
		for _, p := range parts {
			os.Remove(p)
		}
	}
	for _, p := range s.pending() {
		var n int
		fmt.Sscanf(filepath.Base(p), "%d.item", &n)
		s.seq = max(s.seq, n)
		if st, err := os.Stat(p); err == nil {
			s.bytes += st.Size()
		}
	}
	go s.run()
	return s, nil
}

// memoryBound is how much a spool holds in memory once its disk refuses
// items: about three minutes of a 3 Mb/s stream, while storage takes
// each segment as it comes.
const memoryBound = 64 << 20

// memItem is an item the disk refused, held in memory.
type memItem struct {
	it   Item
	data []byte
}

// Add queues an object held in memory (a manifest, or a segment the
// disk refused while it was cut); if the disk refuses it, in memory.
func (s *Spool) Add(it Item, data []byte) error {
	f, err := s.Create()
	if err != nil {
		return s.queueMemory(it, data, err)
	}
	t := trailer(it)
	_, err = f.Write(data)
	if err == nil {
		_, err = f.Write(t)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return s.queueMemory(it, data, err)
	}
	return s.queue(it, f.Name(), int64(len(data)+len(t)))
}

// queueMemory queues data in memory after the disk refused it (why).
func (s *Spool) queueMemory(it Item, data []byte, why error) error {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return errors.New("spool closed")
	}
	if s.memBytes+int64(len(data)) > memoryBound {
		s.mu.Unlock()
		return fmt.Errorf("%s: disk refused it (%v) and %w in memory (%d bytes held)", it.Key, why, ErrFull, s.memBytes)
	}
	s.seq++
	s.mem[s.seq] = memItem{it, data}
	s.memBytes += int64(len(data))
	s.mu.Unlock()
	s.log.Warn("spool: disk refused an item; holding it in memory", "key", it.Key, "err", why)
	s.report()
	select {
	case s.wake <- struct{}{}:
	default:
	}
	return nil
}

// Create opens a scratch file in the spool's folder for AddFile.
func (s *Spool) Create() (*os.File, error) {
	return os.CreateTemp(s.dir, "part-*.tmp")
}

// An Item is one file: the object's bytes, then its header (JSON) and the
// header's length in 4 bytes; the rename to <seq>.Item marks it complete.
// One file per Item, not data and header apart, halves the files the
// relay creates and deletes (inode allocation was ~9% of its CPU).
func trailer(it Item) []byte {
	hdr, _ := json.Marshal(it)
	return binary.BigEndian.AppendUint32(hdr, uint32(len(hdr)))
}

// AddFile queues the object written to path (made by Create), taking the
// file over. It is on disk, in order, when AddFile returns.
func (s *Spool) AddFile(it Item, path string, size int64) error {
	t := trailer(it)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err == nil {
		_, err = f.Write(t)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		// The disk took the object but not its header (full): the object
		// goes on from memory.
		data, rerr := readPrefix(path, size)
		os.Remove(path)
		if rerr != nil {
			return fmt.Errorf("spool %s: %w (then reading it back: %v)", it.Key, err, rerr)
		}
		return s.queueMemory(it, data, err)
	}
	return s.queue(it, path, size+int64(len(t)))
}

// queue takes over the complete Item file at path (fileSize bytes, its
// trailer included) as the next item.
func (s *Spool) queue(it Item, path string, fileSize int64) error {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		os.Remove(path)
		return errors.New("spool closed")
	}
	if s.bytes+fileSize > s.maxBytes {
		s.mu.Unlock()
		os.Remove(path)
		return fmt.Errorf("%s: %w (%d bytes queued)", it.Key, ErrFull, s.bytes)
	}
	s.seq++
	n := s.seq
	s.bytes += fileSize
	s.mu.Unlock()
	if err := os.Rename(path, filepath.Join(s.dir, fmt.Sprintf("%09d.item", n))); err != nil {
		return fmt.Errorf("spool %s: %w", it.Key, err)
	}
	s.report()
	select {
	case s.wake <- struct{}{}:
	default:
	}
	return nil
}

// readPrefix reads the first size bytes of the file at path.
func readPrefix(path string, size int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data := make([]byte, size)
	_, err = io.ReadFull(f, data)
	return data, err
}

func (s *Spool) pending() []string {
	ps, _ := filepath.Glob(filepath.Join(s.dir, "*.item"))
	sort.Strings(ps)
	return ps
}

func (s *Spool) report() {
	if s.onDepth == nil {
		return
	}
	s.mu.Lock()
	b, n := s.bytes+s.memBytes, len(s.mem)
	s.mu.Unlock()
	s.onDepth(len(s.pending())+n, b)
}

// head is the next item to upload: the lowest sequence number among the
// files and the items in memory; ok is false when nothing waits.
func (s *Spool) head() (path string, mem memItem, seq int, ok bool) {
	seq = -1
	if ps := s.pending(); len(ps) > 0 {
		fmt.Sscanf(filepath.Base(ps[0]), "%d.item", &seq)
		path = ps[0]
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for n, m := range s.mem {
		if seq < 0 || n < seq {
			seq, mem, path = n, m, ""
		}
	}
	return path, mem, seq, seq >= 0
}

// run uploads items in order, retrying the head with backoff until it goes.
func (s *Spool) run() {
	defer close(s.done)
	b := retry.Backoff(250*time.Millisecond, 5*time.Second)
	for {
		s.mu.Lock()
		abandon := s.abandon
		s.mu.Unlock()
		if abandon {
			return
		}
		path, mem, seq, ok := s.head()
		if !ok {
			s.mu.Lock()
			closing := s.closing
			s.mu.Unlock()
			if closing {
				return
			}
			<-s.wake
			continue
		}
		var err error
		if path != "" {
			err = s.upload(path)
		} else {
			err = s.uploadMemory(seq, mem)
		}
		if err != nil {
			wait := b.NextBackOff()
			s.log.Warn("spool: upload failed, keeping it", "item", seq, "err", err, "retry_in", wait.String())
			select {
			case <-s.wake:
			case <-time.After(wait):
			}
			continue
		}
		b.Reset()
		s.report()
	}
}

func (s *Spool) upload(path string) error {
	f, err := os.Open(path)
	if err != nil {
		s.log.Error("spool: unreadable item dropped", "item", path, "err", err)
		return os.Remove(path)
	}
	defer f.Close()
	it, size, fileSize, err := readItem(f)
	if err != nil {
		s.log.Error("spool: unreadable item dropped", "item", path, "err", err)
		return os.Remove(path)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.store.Put(ctx, s.bucket, it.Key, io.NewSectionReader(f, 0, size), size,
		storage.PutOptions{ContentType: it.ContentType, Metadata: it.Metadata}); err != nil {
		return err
	}
	_ = os.Remove(path)
	s.mu.Lock()
	s.bytes -= fileSize
	s.mu.Unlock()
	return nil
}

func (s *Spool) uploadMemory(seq int, m memItem) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.store.PutBytes(ctx, s.bucket, m.it.Key, m.data,
		storage.PutOptions{ContentType: m.it.ContentType, Metadata: m.it.Metadata}); err != nil {
		return err
	}
	s.mu.Lock()
	delete(s.mem, seq)
	s.memBytes -= int64(len(m.data))
	s.mu.Unlock()
	return nil
}

// readItem reads a spooled item's header from its trailer: the header,
// the object's length (the bytes before the trailer) and the file's.
func readItem(f *os.File) (Item, int64, int64, error) {
	var it Item
	st, err := f.Stat()
	if err != nil {
		return it, 0, 0, err
	}
	var n [4]byte
	if _, err := f.ReadAt(n[:], st.Size()-4); err != nil {
		return it, 0, 0, fmt.Errorf("no header: %w", err)
	}
	hlen := int64(binary.BigEndian.Uint32(n[:]))
	size := st.Size() - 4 - hlen
	if size < 0 || hlen > 1<<20 {
		return it, 0, 0, fmt.Errorf("header of %d bytes in a file of %d", hlen, st.Size())
	}
	hdr := make([]byte, hlen)
	if _, err := f.ReadAt(hdr, size); err != nil {
		return it, 0, 0, err
	}
	if err := json.Unmarshal(hdr, &it); err != nil {
		return it, 0, 0, err
	}
	return it, size, st.Size(), nil
}

// Close waits until everything queued is uploaded or ctx ends; what is
// left stays on disk for the next start.
func (s *Spool) Close(ctx context.Context) error {
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
		s.mu.Lock()
		lost := len(s.mem)
		s.mu.Unlock()
		return fmt.Errorf("spool %s: %d items not uploaded yet (%d of them in memory, lost): %w", s.dir, len(s.pending())+lost, lost, ctx.Err())
	}
}
