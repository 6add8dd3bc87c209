// Package stage is what every function's handler shares: its settings and
// storage client, reading the triggering CloudEvent, writing outputs tagged
// with the producing function, and answering the router so that it retries
// what may succeed later and never what cannot.
package stage

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"os"
	"time"

	"github.com/segflow/segflow/shared/config"
	"github.com/segflow/segflow/shared/events"
	"github.com/segflow/segflow/shared/layout"
	"github.com/segflow/segflow/shared/storage"
	"github.com/segflow/segflow/shared/telemetry"
)

// Env is one function's process-wide dependencies.
type Env struct {
	Name   string
	Store  *storage.Client
	Bucket string // the one bucket the function acts on
	Log    *slog.Logger
	// TempDir is where media is downloaded and produced.
	TempDir string
}

// NewEnv reads the function's settings: S3_* for storage (keys as secrets),
// S3_BUCKET for the default bucket.
func NewEnv(name string) (*Env, error) {
	opts, err := storage.OptionsFromEnv(name)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	c, err := storage.New(opts)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return &Env{Name: name, Store: c, Bucket: config.Env("S3_BUCKET", "media"),
		Log: telemetry.NewLogger(os.Stderr, name), TempDir: config.Env("SEGFLOW_WORKDIR", os.TempDir())}, nil
}

// Trigger is the object an event is about.
type Trigger struct {
	Event  events.Event
	Bucket string
	Key    string
	Layout layout.Key
	// ETag and Size come from the S3 record in the event data, when there.
	ETag string
	Size int64
}

// record is the part of an S3 event record a stage reads.
type record struct {
	S3 struct {
		Object struct {
			Size int64  `json:"size"`
			ETag string `json:"eTag"`
		} `json:"object"`
	} `json:"s3"`
}

// ReadTrigger parses the request's CloudEvent. A request without a valid
// event is a Permanent error.
func (e *Env) ReadTrigger(r *http.Request) (*Trigger, error) {
	ev, err := events.FromRequest(r)
	if err != nil {
		return nil, Permanent(err)
	}
	key := ev.Subject()
	if err := storage.ValidKey(key); err != nil {
		return nil, Permanent(fmt.Errorf("event %s: %w", ev.ID(), err))
	}
	// The event's source is the bucket it speaks of. A function acts on its
	// configured bucket only: anyone who can reach /function/NAME could
	// otherwise point it, with its storage rights, at another bucket.
	if src := ev.Source(); src != e.Bucket {
		return nil, Permanent(fmt.Errorf("event %s: source bucket %q: %s serves bucket %q only", ev.ID(), src, e.Name, e.Bucket))
	}
	t := &Trigger{Event: ev, Bucket: e.Bucket, Key: key, Layout: layout.Parse(key)}
	var rec record
	if ev.DataAs(&rec) == nil {
		t.ETag, t.Size = rec.S3.Object.ETag, rec.S3.Object.Size
	}
	return t, nil
}

// Meta returns object metadata that marks this function as the producer
// (the router never sends an object back to the function that wrote it),
// plus extra pairs.
func (e *Env) Meta(kv ...string) map[string]string {
	m := map[string]string{layout.ProducerMeta: e.Name}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

// PermanentError marks a failure that a retry cannot fix (bad input).
type PermanentError struct{ Err error }

func (p *PermanentError) Error() string { return p.Err.Error() }
func (p *PermanentError) Unwrap() error { return p.Err }

// Permanent wraps err as not worth retrying.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &PermanentError{Err: err}
}

// IsPermanent says whether err was marked Permanent.
func IsPermanent(err error) bool {
	var p *PermanentError
	return errors.As(err, &p)
}

// Respond answers the router: 200 with msg, 422 for a permanent failure
// (not retried), 503 when the storage is unavailable (waited out), 500
// for anything else that may pass on a retry. The log line
// carries how long the call took, so one asset's calls line up in time,
// and the call's trace (ctx's span), so it leads to the asset's trace.
func (e *Env) Respond(ctx context.Context, w http.ResponseWriter, t *Trigger, msg string, err error, took time.Duration) {
	attrs := []any{"seconds", math.Round(took.Seconds()*1000) / 1000}
	if t != nil {
		attrs = append(attrs, "event_id", t.Event.ID(), "key", t.Key)
	}
	switch {
	case err == nil:
		e.Log.InfoContext(ctx, msg, attrs...)
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write([]byte(msg + "\n"))
	case IsPermanent(err):
		e.Log.ErrorContext(ctx, "rejected", append(attrs, "err", err.Error())...)
		http.Error(w, err.Error(), http.StatusUnprocessableEntity)
	case storage.IsUnavailable(err):
		// Nothing about this event: the router waits the storage out
		// without spending one of its attempts.
		e.Log.WarnContext(ctx, "storage unavailable, will be retried", append(attrs, "err", err.Error())...)
		w.Header().Set("Retry-After", "5")
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
	default:
		e.Log.ErrorContext(ctx, "failed, will be retried", append(attrs, "err", err.Error())...)
		http.Error(w, err.Error(), http.StatusInternalServerError)
	}
}

// WorkDir makes a scratch folder for one call; the caller removes it.
func (e *Env) WorkDir(ctx context.Context) (string, func(), error) {
	d, err := os.MkdirTemp(e.TempDir, e.Name+"-")
	if err != nil {
		return "", func() {}, err
	}
	return d, func() { _ = os.RemoveAll(d) }, nil
}

// triggerWait is how long a trigger's object that reads as missing is
// read again before that is believed.
const triggerWait = 5 * time.Second

// GetTrigger downloads the trigger's object to file. The event says the
// object was written, so a not-found is first taken for "not readable
// here yet": a MinIO pool that has just lost a server can answer a read
// of an object written a moment before as missing while its drives
// catch up. It is read again for up to triggerWait; still missing (the
// object was deleted since), the error is ErrNotFound.
func (e *Env) GetTrigger(ctx context.Context, t *Trigger, file string) (storage.Info, error) {
	return e.readTrigger(ctx, t, func() (storage.Info, error) { return e.Store.GetFile(ctx, t.Bucket, t.Key, file) })
}

// StatTrigger is GetTrigger for the object's size and metadata only.
func (e *Env) StatTrigger(ctx context.Context, t *Trigger) (storage.Info, error) {
	return e.readTrigger(ctx, t, func() (storage.Info, error) { return e.Store.Stat(ctx, t.Bucket, t.Key) })
}

func (e *Env) readTrigger(ctx context.Context, t *Trigger, read func() (storage.Info, error)) (storage.Info, error) {
	deadline := time.Now().Add(triggerWait)
	for {
		info, err := read()
		if !errors.Is(err, storage.ErrNotFound) || time.Now().After(deadline) {
			return info, err
		}
		e.Log.WarnContext(ctx, "trigger's object not found yet; reading it again", "key", t.Key)
		select {
		case <-ctx.Done():
			return info, err
		case <-time.After(500 * time.Millisecond):
		}
	}
}
