package router

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/segflow/segflow/shared/asset"
	"github.com/segflow/segflow/shared/events"
	"github.com/segflow/segflow/shared/layout"
	"github.com/segflow/segflow/shared/storage"
	"github.com/segflow/segflow/shared/tracing"
)

// delivery is one event on its way to one function.
type delivery struct {
	ID       string          `json:"id"` // event id + "|" + function
	Function string          `json:"function"`
	Event    json.RawMessage `json:"event"` // the CloudEvent, JSON format
	Queued   time.Time       `json:"queued"`
	// Urgent deliveries go ahead of the function's other queued ones
	// (urgent): a viewer is waiting on them.
	Urgent bool `json:"urgent,omitempty"`
}

// urgent reports whether a write is one a viewer waits on, so its
// deliveries jump every function's queue: a live segment (its relay stamps
// Segment-Wallclock), or a file's first segment (the master goes out once
// every rung has it). Queued in order, a new upload's first segment waited
// behind every later segment of the uploads before it: 60 s of 1080p
// uploaded right after another one played after 173 s instead of 10 s.
func urgent(rec Record, key string) bool {
	k := layout.Parse(key)
	switch k.Kind {
	case layout.KindSourceSegment, layout.KindMarkedSegment, layout.KindRenditionSegment:
		return k.Index == 0 || rec.Meta(asset.MetaWallclock) != ""
	}
	return false
}

// Ingest converts the records and queues one delivery per subscribed
// function. It returns once JetStream holds them all, so the caller can
// acknowledge the notification. The count is the deliveries queued.
func (r *Router) Ingest(ctx context.Context, n Notification) (int, error) {
	queued := 0
	for _, rec := range n.Records {
		r.metrics.received.Inc()
		e, err := rec.CloudEvent()
		if err != nil {
			r.metrics.malformed.Inc()
			r.log.Error("router: record not convertible, skipped", "event_id", rec.ID(), "err", err)
			continue
		}
		key := e.Subject()
		if !rec.Created() {
			continue // nothing subscribes to removals yet
		}
		topic := layout.Topic(key)
		if topic == "" {
			continue
		}
		if err := storage.ValidKey(key); err != nil {
			// A key no function can take (a control character, a newline)
			// can never be delivered: retrying it only ends in the dead
			// letters with its asset stuck. Its upload fails now, saying why.
			r.metrics.malformed.Inc()
			r.refuseUpload(ctx, rec, key, topic, err)
			continue
		}
		// The event continues the trace of whoever wrote the object (its
		// traceparent metadata), else starts one here, and carries it
		// through the queue to every function.
		parent := tracing.Extract(ctx, map[string]string{"traceparent": rec.Meta(storage.TraceMeta)})
		_, span := tracing.Tracer().Start(parent, "route "+topic, trace.WithSpanKind(trace.SpanKindConsumer),
			trace.WithAttributes(attribute.String("cloudevents.event_id", e.ID()), attribute.String("cloudevents.event_subject", key)))
		events.SetTrace(trace.ContextWithSpan(parent, span), &e)
		span.End()
		body, err := json.Marshal(e)
		if err != nil {
			return queued, fmt.Errorf("event %s: %w", e.ID(), err)
		}
		producer := rec.Producer()
		hurry := urgent(rec, key)
		for _, fn := range r.Subscribers(topic) {
			if fn == producer {
				// A function never gets back what it wrote itself.
				r.log.Debug("router: skip own output", "function", fn, "key", key)
				continue
			}
			d := delivery{ID: e.ID() + "|" + fn, Function: fn, Event: body, Queued: time.Now().UTC(), Urgent: hurry}
			dup, err := r.enqueue(ctx, d, d.ID)
			if err != nil {
				return queued, err
			}
			if !dup {
				queued++
			}
			r.log.Debug("router: queued", "event_id", e.ID(), "key", key, "topic", topic, "function", fn)
		}
	}
	return queued, nil
}

// enqueue stores a delivery; msgID deduplicates within the window, so the
// same write notified twice (or notified and listed by a catch-up) queues
// it once. dup says the queue already held it.
func (r *Router) enqueue(ctx context.Context, d delivery, msgID string) (dup bool, err error) {
	b, err := json.Marshal(d)
	if err != nil {
		return false, err
	}
	ack, err := r.js.Publish(ctx, deliverySubject(d.Function, d.Urgent), b, jetstream.WithMsgID(msgID))
	if err != nil {
		return false, fmt.Errorf("queue %s: %w", d.ID, err)
	}
	if ack.Duplicate {
		r.metrics.duplicates.Inc()
	}
	return ack.Duplicate, nil
}

// refuseUpload records an upload that cannot be processed as a failed
// asset, under the id split would have given it, so its uploader sees the
// reason where they look for progress.
func (r *Router) refuseUpload(ctx context.Context, rec Record, key, topic string, why error) {
	log := r.log.With("event_id", rec.ID(), "key", fmt.Sprintf("%q", key))
	if topic != layout.TopicUpload || r.cfg.Storage == nil {
		log.Error("router: invalid key, not delivered", "err", why)
		return
	}
	id := layout.AssetID(key, rec.S3.Object.ETag)
	err := asset.UpdateStatus(ctx, r.cfg.Storage, rec.S3.Bucket.Name, id, "split", func(s *asset.Status) {
		s.Source = key
		s.SetStage("split", asset.StateFailed, fmt.Errorf("upload key refused: %w", why))
	})
	if err != nil {
		log.Error("router: invalid upload key; its failed status not written", "asset", id, "err", err)
		return
	}
	log.Error("router: invalid upload key, asset failed", "asset", id, "err", why)
}
