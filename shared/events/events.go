// Package events is segflow's CloudEvents vocabulary (sdk-go/v2): the event
// types the router emits, reading an event from a function's HTTP request in
// binary mode, and writing one onto an outgoing request.
package events

import (
	"context"
	"fmt"
	"net/http"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/cloudevents/sdk-go/v2/binding"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"

	"github.com/segflow/segflow/shared/tracing"
)

// Event types. They mirror S3's event names so that a reader who knows S3
// knows what each means.
const (
	TypeObjectCreated = "io.segflow.object.created"
	TypeObjectRemoved = "io.segflow.object.removed"
)

// Event is the sdk's event type, re-exported so callers need one import.
type Event = cloudevents.Event

// New builds a CloudEvent 1.0 with JSON data.
func New(id, typ, source, subject string, data any) (Event, error) {
	e := cloudevents.NewEvent()
	e.SetID(id)
	e.SetType(typ)
	e.SetSource(source)
	e.SetSubject(subject)
	e.SetTime(time.Now().UTC())
	if data != nil {
		if err := e.SetData(cloudevents.ApplicationJSON, data); err != nil {
			return e, fmt.Errorf("event %s data: %w", id, err)
		}
	}
	if err := e.Validate(); err != nil {
		return e, fmt.Errorf("event %s: %w", id, err)
	}
	return e, nil
}

// FromRequest reads the CloudEvent carried by an HTTP request, in binary or
// structured mode. It fails on a request that carries none.
func FromRequest(r *http.Request) (Event, error) {
	msg := cehttp.NewMessageFromHttpRequest(r)
	defer msg.Finish(nil)
	e, err := binding.ToEvent(r.Context(), msg)
	if err != nil {
		return Event{}, fmt.Errorf("read cloudevent: %w", err)
	}
	if err := e.Validate(); err != nil {
		return Event{}, fmt.Errorf("read cloudevent: %w", err)
	}
	return *e, nil
}

// NewRequest builds a POST to url that carries e in binary mode: attributes
// as ce-* headers, data as the body.
func NewRequest(ctx context.Context, url string, e Event) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, nil)
	if err != nil {
		return nil, fmt.Errorf("event %s request: %w", e.ID(), err)
	}
	if err := cehttp.WriteRequest(ctx, binding.ToMessage(&e), req); err != nil {
		return nil, fmt.Errorf("event %s request: %w", e.ID(), err)
	}
	return req, nil
}

// SetTrace records ctx's trace context in e as the CloudEvents
// distributed-tracing extension (traceparent, tracestate), so whoever
// handles e later joins the trace of whoever raised it.
func SetTrace(ctx context.Context, e *Event) {
	m := map[string]string{}
	tracing.Inject(ctx, m)
	for _, k := range []string{"traceparent", "tracestate"} {
		if m[k] != "" {
			e.SetExtension(k, m[k])
		}
	}
}

// TraceContext returns ctx carrying the trace context recorded in e, if any.
func TraceContext(ctx context.Context, e Event) context.Context {
	m := map[string]string{}
	for _, k := range []string{"traceparent", "tracestate"} {
		if v, ok := e.Extensions()[k].(string); ok {
			m[k] = v
		}
	}
	return tracing.Extract(ctx, m)
}
