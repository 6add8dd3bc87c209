// Package tracing is segflow's OpenTelemetry wiring: one call per process
// installs an OTLP/HTTP exporter when an endpoint is configured (the
// standard OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT
// variables) and leaves tracing a no-op otherwise; helpers carry the trace
// context through CloudEvents (the distributed-tracing extension's
// traceparent/tracestate attributes) and HTTP.
//
// The tracer provider and propagator are OpenTelemetry's process globals on
// purpose: otelhttp and every instrumented library read them from there, and
// each segflow process sets them once, in main.
package tracing

import (
	"context"
	"fmt"
	"net/http"
	"os"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/segflow/segflow/shared/telemetry"
)

// Scope names the instrumentation in every span segflow makes.
const Scope = "github.com/segflow/segflow"

// EnvVars are the settings a process passes on to the functions it starts
// so that they export to the same collector.
var EnvVars = []string{
	"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
	"OTEL_EXPORTER_OTLP_HEADERS", "OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_INSECURE",
	"OTEL_TRACES_SAMPLER", "OTEL_TRACES_SAMPLER_ARG", "OTEL_BSP_SCHEDULE_DELAY",
}

// Enabled says whether an OTLP endpoint is configured.
func Enabled() bool {
	return os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != ""
}

// Setup installs the W3C trace-context propagator and, when an endpoint is
// configured, a batching OTLP/HTTP exporter for service. The returned
// function flushes and stops the exporter; call it before exiting.
func Setup(ctx context.Context, service string) (func(context.Context) error, error) {
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
	if !Enabled() {
		return func(context.Context) error { return nil }, nil
	}
	exp, err := otlptracehttp.New(ctx)
	if err != nil {
		return nil, fmt.Errorf("tracing: otlp exporter: %w", err)
	}
	// OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES, when set, win over
	// the name the process gives itself.
	res, err := resource.New(ctx,
		resource.WithAttributes(attribute.String("service.name", service)),
		resource.WithFromEnv(), resource.WithProcessPID(), resource.WithHost())
	if err != nil {
		return nil, fmt.Errorf("tracing: resource: %w", err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	otel.SetTracerProvider(tp)
	return tp.Shutdown, nil
}

// Tracer is segflow's tracer from the installed provider.
func Tracer() trace.Tracer { return otel.Tracer(Scope) }

// Transport wraps base (nil: http.DefaultTransport) so that each request
// is a client span and carries the caller's trace context in traceparent.
func Transport(base http.RoundTripper, name func(*http.Request) string) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	opts := []otelhttp.Option{}
	if name != nil {
		opts = append(opts, otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string { return name(r) }))
	}
	return otelhttp.NewTransport(base, opts...)
}

// Inject writes ctx's trace context into m (CloudEvent extension
// attributes, or any string map).
func Inject(ctx context.Context, m map[string]string) {
	otel.GetTextMapPropagator().Inject(ctx, propagation.MapCarrier(m))
}

// Extract reads a trace context from m into ctx.
func Extract(ctx context.Context, m map[string]string) context.Context {
	return otel.GetTextMapPropagator().Extract(ctx, propagation.MapCarrier(m))
}

// Handler makes each request to next a server span named name. Its parent
// is the request's traceparent header, or else the trace context of the
// CloudEvent it carries in binary mode (ce-traceparent), so a function
// called by anything that speaks either joins the caller's trace.
func Handler(name string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		prop := otel.GetTextMapPropagator()
		ctx := prop.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
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
