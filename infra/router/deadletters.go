package router

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/segflow/segflow/infra/gwclient"
	"github.com/segflow/segflow/shared/events"
	"github.com/segflow/segflow/shared/layout"
	"github.com/segflow/segflow/shared/storage"
)

// DeadLetter is an event that exhausted its attempts, with the last error
// (the wire shape gwclient reads).
type DeadLetter = gwclient.DeadLetter

// deadLetter keeps the event in the dead-letter stream and, when storage is
// configured, as deadletter/<function>/<hash>.json in the event's bucket.
func (r *Router) deadLetter(ctx context.Context, d delivery, attempts int, cause error) error {
	var e events.Event
	_ = json.Unmarshal(d.Event, &e)
	dl := DeadLetter{ID: d.ID, Function: d.Function, Subject: e.Subject(), Attempts: attempts,
		At: time.Now().UTC(), Event: d.Event}
	if cause != nil {
		dl.Error = cause.Error()
	}
	if r.cfg.Storage != nil && e.Source() != "" {
		dl.Object = deadLetterKey(d)
		b, _ := json.MarshalIndent(dl, "", "  ")
		if err := r.cfg.Storage.PutBytes(ctx, e.Source(), dl.Object, b, storage.PutOptions{
			ContentType: "application/json",
			Metadata:    map[string]string{layout.ProducerMeta: "router"},
		}); err != nil {
			return fmt.Errorf("dead letter object: %w", err)
		}
	}
	b, err := json.Marshal(dl)
	if err != nil {
		return err
	}
	if _, err := r.js.Publish(ctx, dlqSubject+d.Function, b); err != nil {
		return fmt.Errorf("dead letter: %w", err)
	}
	return nil
}

func deadLetterKey(d delivery) string {
	sum := sha256.Sum256([]byte(d.ID))
	return layout.DeadLetterPrefix + d.Function + "/" + hex.EncodeToString(sum[:16]) + ".json"
}

// DeadLetters lists what the dead-letter stream holds, oldest first.
func (r *Router) DeadLetters(ctx context.Context) ([]DeadLetter, error) {
	s, err := r.js.Stream(ctx, dlqStream)
	if err != nil {
		return nil, fmt.Errorf("dead letters: %w", err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("dead letters: %w", err)
	}
	var out []DeadLetter
	if info.State.Msgs == 0 {
		return out, nil
	}
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("dead letter %d: %w", seq, err)
		}
		var dl DeadLetter
		if err := json.Unmarshal(m.Data, &dl); err != nil {
			continue
		}
		dl.Seq = seq
		out = append(out, dl)
	}
	return out, nil
}

// Replay queues dead letters again (the one with id, or all when id is
// empty) and removes them from the dead letters. It returns how many.
func (r *Router) Replay(ctx context.Context, id string) (int, error) {
	dls, err := r.DeadLetters(ctx)
	if err != nil {
		return 0, err
	}
	s, err := r.js.Stream(ctx, dlqStream)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, dl := range dls {
		if id != "" && dl.ID != id {
			continue
		}
		d := delivery{ID: dl.ID, Function: dl.Function, Event: dl.Event, Queued: time.Now().UTC()}
		if _, err := r.enqueue(ctx, d, fmt.Sprintf("%s|replay-%d", dl.ID, dl.Seq)); err != nil {
			return n, err
		}
		if err := s.DeleteMsg(ctx, dl.Seq); err != nil {
			return n, fmt.Errorf("replay %s: %w", dl.ID, err)
		}
		r.removeCopy(ctx, dl)
		r.log.Info("router: replayed", "delivery_id", dl.ID, "function", dl.Function)
		n++
	}
	if id != "" && n == 0 {
		return 0, fmt.Errorf("replay %s: %w", id, errNoDeadLetter)
	}
	return n, nil
}

// DeadLettersHandler serves GET (list) and POST ?id= (replay one; no id
// replays all). Mount it behind the gateway's basic auth.
func (r *Router) DeadLettersHandler() http.HandlerFunc {
	return func(w http.ResponseWriter, req *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch req.Method {
		case http.MethodGet:
			dls, err := r.DeadLetters(req.Context())
			if err != nil {
				http.Error(w, err.Error(), http.StatusServiceUnavailable)
				return
			}
			_ = json.NewEncoder(w).Encode(dls)
		case http.MethodPost:
			n, err := r.Replay(req.Context(), req.URL.Query().Get("id"))
			if errors.Is(err, errNoDeadLetter) {
				http.Error(w, err.Error(), http.StatusNotFound)
				return
			}
			if err != nil {
				http.Error(w, err.Error(), http.StatusServiceUnavailable)
				return
			}
			_ = json.NewEncoder(w).Encode(map[string]int{"replayed": n})
		default:
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		}
	}
}

// removeCopy deletes the bucket copy of a replayed dead letter: only the
// key its own id and function name (always under deadletter/). Anyone who
// could publish to the queue could otherwise forge an entry whose Object
// names any key, and a replay would delete it.
func (r *Router) removeCopy(ctx context.Context, dl DeadLetter) {
	if r.cfg.Storage == nil || dl.Object == "" {
		return
	}
	key := deadLetterKey(delivery{ID: dl.ID, Function: dl.Function})
	var e events.Event
	if dl.Object != key || json.Unmarshal(dl.Event, &e) != nil {
		r.log.Warn("router: replayed dead letter names no copy of its own; nothing removed", "delivery_id", dl.ID, "object", dl.Object)
		return
	}
	_ = r.cfg.Storage.Remove(ctx, e.Source(), key)
}
