// Package tracing is segflow's OpenTelemetry instrumentation: spans for
// HTTP servers and clients, and the trace context carried through
// CloudEvents (the distributed-tracing extension's traceparent/tracestate
// attributes), object metadata and HTTP. It uses only the OpenTelemetry
// API; a process that exports spans installs the SDK with tracing/otlp,
// and one that does not (the relay) stays without it and pays nothing.
//
// The tracer provider is OpenTelemetry's process global on purpose: otelhttp
// and every instrumented library read it from there, and a process that
// exports sets it once, in main (tracing/otlp).
package tracing

import (
	"context"
	"net/http"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/segflow/segflow/shared/telemetry"
)

// Scope names the instrumentation in every span segflow makes.
const Scope = "github.com/segflow/segflow"

// Tracer is segflow's tracer from the installed provider.
func Tracer() trace.Tracer { return otel.Tracer(Scope) }

// Transport wraps base (nil: http.DefaultTransport) so that each request
// is a client span and carries the caller's trace context in traceparent.
func Transport(base http.RoundTripper, name func(*http.Request) string) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	opts := []otelhttp.Option{otelhttp.WithPropagators(propagator)}
	if name != nil {
		opts = append(opts, otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string { return name(r) }))
	}
	return otelhttp.NewTransport(base, opts...)
}

// propagator is W3C trace context (and baggage), the same in every
// process, exporting or not, so it is a value here rather than the SDK's.
var propagator = propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})

// Inject writes ctx's trace context into m (CloudEvent extension
// attributes, or any string map).
func Inject(ctx context.Context, m map[string]string) {
	propagator.Inject(ctx, propagation.MapCarrier(m))
}

// Extract reads a trace context from m into ctx.
func Extract(ctx context.Context, m map[string]string) context.Context {
	return propagator.Extract(ctx, propagation.MapCarrier(m))
}

// Handler makes each request to next a server span named name. Its parent
// is the request's traceparent header, or else the trace context of the
// CloudEvent it carries in binary mode (ce-traceparent), so a function
// called by anything that speaks either joins the caller's trace.
func Handler(name string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := propagator.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
		if !trace.SpanContextFromContext(ctx).IsValid() {
			ctx = Extract(ctx, map[string]string{
				"traceparent": r.Header.Get("ce-traceparent"), "tracestate": r.Header.Get("ce-tracestate")})
		}
		ctx, span := Tracer().Start(ctx, name, trace.WithSpanKind(trace.SpanKindServer),
			trace.WithAttributes(attribute.String("http.request.method", r.Method), attribute.String("url.path", r.URL.Path),
				attribute.String("cloudevents.event_id", r.Header.Get("ce-id")),
				attribute.String("cloudevents.event_subject", r.Header.Get("ce-subject"))))
		defer span.End()
		sw := &telemetry.StatusWriter{ResponseWriter: w, Code: http.StatusOK}
		next.ServeHTTP(sw, r.WithContext(ctx))
		span.SetAttributes(attribute.Int("http.response.status_code", sw.Code))
		if sw.Code >= 500 {
			span.SetStatus(codes.Error, http.StatusText(sw.Code))
		}
	})
}
