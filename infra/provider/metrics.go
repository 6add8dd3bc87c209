package provider

import "github.com/prometheus/client_golang/prometheus"

type runtimeMetrics struct {
	starts      *prometheus.CounterVec
	crashes     *prometheus.CounterVec
	invocations *prometheus.CounterVec
	coldStart   *prometheus.HistogramVec
	duration    *prometheus.HistogramVec
}

func newRuntimeMetrics(reg prometheus.Registerer) *runtimeMetrics {
	m := &runtimeMetrics{
		starts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "segflow_function_replica_starts_total", Help: "Function processes started.",
		}, []string{"function_name"}),
		crashes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "segflow_function_replica_crashes_total", Help: "Function processes that exited unasked.",
		}, []string{"function_name"}),
		invocations: prometheus.NewCounterVec(prometheus.CounterOpts{
			// The gateway's own metric name, so OpenFaaS dashboards work.
			Name: "gateway_function_invocation_total", Help: "Function invocations by status code.",
		}, []string{"function_name", "code"}),
		coldStart: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "segflow_function_cold_start_seconds", Help: "Time to the first response of a call that started its function.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}, []string{"function_name"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "gateway_functions_seconds", Help: "Function call duration.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 22),
		}, []string{"function_name", "code"}),
	}
	if reg != nil {
		reg.MustRegister(m.starts, m.crashes, m.invocations, m.coldStart, m.duration)
	}
	return m
}

// RegisterMetrics registers the metrics this package exports on reg, as
// a running component does: for what reads the names (the dashboard's
// and the alerts' checks).
func RegisterMetrics(reg prometheus.Registerer) { newRuntimeMetrics(reg) }
