package tracing_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"go.opentelemetry.io/otel/trace"

	"github.com/segflow/segflow/shared/events"
	"github.com/segflow/segflow/shared/storage"
	"github.com/segflow/segflow/shared/testenv"
	"github.com/segflow/segflow/shared/tracing"
	"github.com/segflow/segflow/shared/tracing/otlp"
	"github.com/segflow/segflow/shared/tracing/otlptest"
)

// TestTraceCrossesEventFunctionAndStorage follows one event from the span
// that raised it, over HTTP in binary mode, into a function's server span
// and the S3 request that function makes, all exported over OTLP/HTTP.
func TestTraceCrossesEventFunctionAndStorage(t *testing.T) {
	col := otlptest.Start(t)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", col.URL)
	ctx := context.Background()
	flush, err := otlp.Setup(ctx, "tracing-test")
	if err != nil {
		t.Fatal(err)
	}
	m := testenv.StartMinIO(t)
	bucket := m.Bucket(t, "media")

	fn := tracing.Handler("probe", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e, err := events.FromRequest(r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if err := m.Client.PutBytes(r.Context(), bucket, e.Subject(), []byte("x"), storage.PutOptions{}); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
		}
	}))
	srv := httptest.NewServer(fn)
	defer srv.Close()

	cases := []struct {
		name   string
		client *http.Client
		key    string
		// parent is the name of the function span's parent.
		parent string
	}{
		// The router's way: its client span carries traceparent.
		{"traceparent header", &http.Client{Transport: tracing.Transport(nil, func(*http.Request) string { return "post" })}, "a/one", "post"},
		// A plain client: only the event's extension carries the trace.
		{"cloudevent extension only", http.DefaultClient, "a/two", "raise"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx, span := tracing.Tracer().Start(ctx, "raise")
			e, err := events.New("id-"+tc.key, events.TypeObjectCreated, bucket, tc.key, map[string]string{"k": tc.key})
			if err != nil {
				t.Fatal(err)
			}
			events.SetTrace(ctx, &e)
			span.End()
			if got := trace.SpanContextFromContext(events.TraceContext(context.Background(), e)); got.TraceID() != span.SpanContext().TraceID() {
				t.Fatalf("event carries trace %s, want %s", got.TraceID(), span.SpanContext().TraceID())
			}
			req, err := events.NewRequest(ctx, srv.URL, e)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := tc.client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("function answered %d", resp.StatusCode)
			}
		})
	}
	if err := flush(ctx); err != nil {
		t.Fatal(err)
	}
	spans := col.Spans()
	for _, tc := range cases {
		var s3 *otlptest.Span
		for i := range spans {
			if spans[i].Name == "s3 PUT /media/"+tc.key {
				s3 = &spans[i]
			}
		}
		if s3 == nil {
			t.Fatalf("%s: no storage span among %d spans: %+v", tc.name, len(spans), spans)
		}
		chain := []string{s3.Name}
		cur := *s3
		for {
			p, ok := col.Parent(cur)
			if !ok {
				break
			}
			chain = append(chain, p.Name)
			cur = p
		}
		want := []string{"s3 PUT /media/" + tc.key, "probe", tc.parent}
		if tc.parent == "post" {
			want = append(want, "raise")
		}
		if len(chain) != len(want) {
			t.Fatalf("%s: span chain %v, want %v", tc.name, chain, want)
		}
		for i := range want {
			if chain[i] != want[i] {
				t.Fatalf("%s: span chain %v, want %v", tc.name, chain, want)
			}
		}
		if cur.ParentID != "" || cur.Service != "tracing-test" {
			t.Fatalf("%s: root %+v", tc.name, cur)
		}
	}
}
