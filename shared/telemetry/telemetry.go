// Package telemetry gives every segflow service the same JSON slog logger,
// its own Prometheus registry and the /healthz and /metrics endpoints.
package telemetry

import (
	"io"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// NewLogger returns a JSON logger tagged with the service name. The level
// comes from SEGFLOW_LOG_LEVEL (debug, info, warn, error). A line logged
// with a context inside a span carries its trace_id and span_id. The time
// always has nine digits of fraction (TimeFormat): slog's own drops the
// fraction on a whole second, which a log shipper's one time format (the
// Fluent Bit parser in infra/k8s) would then not read.
func NewLogger(w io.Writer, service string) *slog.Logger {
	if w == nil {
		w = os.Stderr
	}
	var level slog.Level
	_ = level.UnmarshalText([]byte(strings.ToUpper(os.Getenv("SEGFLOW_LOG_LEVEL"))))
	return slog.New(traceHandler{slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level, ReplaceAttr: fixedTime})}).With("service", service)
}

// TimeFormat is the time of every log line: RFC 3339, nanoseconds, zone.
const TimeFormat = "2006-01-02T15:04:05.000000000Z07:00"

func fixedTime(groups []string, a slog.Attr) slog.Attr {
	if len(groups) == 0 && a.Key == slog.TimeKey && a.Value.Kind() == slog.KindTime {
		return slog.String(slog.TimeKey, a.Value.Time().Format(TimeFormat))
	}
	return a
}

// NewRegistry returns a registry with the Go and process collectors, so each
// service reports its own memory and CPU without sharing global state.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// MetricsHandler serves the registry in the Prometheus text format.
func MetricsHandler(reg *prometheus.Registry) http.Handler {
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})
}

// HealthHandler answers 200 while check returns nil, 503 with the error
// otherwise. A nil check means "alive".
func HealthHandler(check func() error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if check != nil {
			if err := check(); err != nil {
				http.Error(w, err.Error(), http.StatusServiceUnavailable)
				return
			}
		}
		w.Header().Set("Content-Type", "text/plain")
		_, _ = io.WriteString(w, "OK\n")
	}
}

// HTTPMetrics counts and times the requests a handler serves.
type HTTPMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// NewHTTPMetrics registers the request metrics on reg.
func NewHTTPMetrics(reg prometheus.Registerer, namespace string) *HTTPMetrics {
	m := &HTTPMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "http_requests_total", Help: "HTTP requests served, by status code.",
		}, []string{"code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Name: "http_request_duration_seconds", Help: "Time to serve HTTP requests.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 20),
		}, []string{"code"}),
	}
	reg.MustRegister(m.requests, m.duration)
	return m
}

// Wrap instruments next.
func (m *HTTPMetrics) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &StatusWriter{ResponseWriter: w, Code: http.StatusOK}
		next.ServeHTTP(sw, r)
		code := strconv.Itoa(sw.Code)
		m.requests.WithLabelValues(code).Inc()
		m.duration.WithLabelValues(code).Observe(time.Since(start).Seconds())
	})
}

// StatusWriter remembers the status code written through it.
type StatusWriter struct {
	http.ResponseWriter
	Code int
}

// WriteHeader records the code.
func (s *StatusWriter) WriteHeader(code int) {
	s.Code = code
	s.ResponseWriter.WriteHeader(code)
}

// Flush passes through so streaming responses keep working.
func (s *StatusWriter) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (s *StatusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }
