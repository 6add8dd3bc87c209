package router

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	received, malformed, unauthorized, duplicates prometheus.Counter
	refused, caughtUp                             prometheus.Counter
	catchUps                                      *prometheus.CounterVec
	catchUpTime                                   prometheus.Histogram
	delivered, retried, deadLettered, rejected    *prometheus.CounterVec
	busy, handedBack                              *prometheus.CounterVec
	latency                                       *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	c := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Namespace: "segflow_router", Name: name, Help: help})
	}
	cv := func(name, help string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "segflow_router", Name: name, Help: help}, []string{"function_name"})
	}
	m := &metrics{
		received:     c("events_received_total", "Bucket event records received."),
		malformed:    c("events_malformed_total", "Notifications or records that could not be read."),
		unauthorized: c("webhook_unauthorized_total", "Webhook calls refused for a bad token."),
		duplicates:   c("events_duplicate_total", "Deliveries dropped as duplicates of a queued one."),
		refused:      c("webhook_refused_total", "Notifications answered 503 (queue unavailable or not ready); the catch-up lists their writes."),
		caughtUp:     c("caught_up_total", "Deliveries queued by a catch-up (journal or listing): writes whose notification never came in."),
		catchUps: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "segflow_router", Name: "catchups_total",
			Help: "Catch-ups done, by where they found the missed writes: the journal, or a listing of the bucket."}, []string{"source"}),
		catchUpTime: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "segflow_router", Name: "catchup_duration_seconds",
			Help: "Time a catch-up took to queue the writes it found.", Buckets: prometheus.ExponentialBuckets(0.01, 4, 10)}),
		delivered:    cv("deliveries_total", "Events delivered to a function with a 2xx answer."),
		retried:      cv("retries_total", "Deliveries scheduled again after a failure."),
		deadLettered: cv("dead_letters_total", "Events that exhausted their attempts."),
		rejected:     cv("rejected_total", "Events a function refused with a 4xx (not retried)."),
		busy:         cv("busy_total", "Delivery attempts answered 429 (function at its limit), waited out without using an attempt."),
		handedBack:   cv("handed_back_total", "Deliveries handed back to the queue, for another router, because this router's gateway refused the connection."),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "segflow_router", Name: "dispatch_latency_seconds",
			Help:    "From the bucket event time to the function's answer, per delivery.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 18),
		}, []string{"function_name"}),
	}
	if reg != nil {
		reg.MustRegister(m.received, m.malformed, m.unauthorized, m.duplicates, m.refused, m.caughtUp, m.catchUps, m.catchUpTime,
			m.delivered, m.retried, m.deadLettered, m.rejected, m.busy, m.handedBack, m.latency)
	}
	return m
}

// RegisterMetrics registers the metrics this package exports on reg, as
// a running component does: for what reads the names (the dashboard's
// and the alerts' checks).
func RegisterMetrics(reg prometheus.Registerer) { newMetrics(reg) }
