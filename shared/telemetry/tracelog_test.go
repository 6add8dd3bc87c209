package telemetry

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"testing"

	"go.opentelemetry.io/otel/trace"
)

// A line logged with a context in a span carries its ids under the names
// a log shipper keeps (trace_id, span_id), also through a logger made With
// more attributes; a line outside any span has neither.
func TestLogLinesCarryTheirTrace(t *testing.T) {
	sc := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID:    trace.TraceID{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36},
		SpanID:     trace.SpanID{0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7},
		TraceFlags: trace.FlagsSampled,
	})
	inSpan := trace.ContextWithSpanContext(context.Background(), sc)
	tests := []struct {
		name      string
		log       func(l *slog.Logger)
		wantTrace bool
	}{
		{"context in a span", func(l *slog.Logger) { l.InfoContext(inSpan, "transcoded") }, true},
		{"context in none", func(l *slog.Logger) { l.InfoContext(context.Background(), "transcoded") }, false},
		{"no context", func(l *slog.Logger) { l.Info("transcoded") }, false},
		{"logger With attributes", func(l *slog.Logger) { l.With("function", "transcode").WarnContext(inSpan, "delivered") }, true},
		{"logger With attributes, no span", func(l *slog.Logger) { l.With("function", "transcode").WarnContext(context.Background(), "delivered") }, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			tc.log(NewLogger(&buf, "transcode"))
			var line map[string]any
			if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
				t.Fatalf("not one JSON line: %q: %v", buf.String(), err)
			}
			if line["service"] != "transcode" {
				t.Errorf("service = %v in %s", line["service"], buf.String())
			}
			_, hasTrace := line["trace_id"]
			_, hasSpan := line["span_id"]
			if !tc.wantTrace {
				if hasTrace || hasSpan {
					t.Errorf("ids on a line outside any span: %s", buf.String())
				}
				return
			}
			if line["trace_id"] != "4bf92f3577b34da6a3ce929d0e0e4736" || line["span_id"] != "00f067aa0ba902b7" {
				t.Errorf("trace_id %v span_id %v, want the span's: %s", line["trace_id"], line["span_id"], buf.String())
			}
		})
	}
}
