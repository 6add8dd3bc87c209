package relay

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	publishers                      prometheus.Gauge
	refused                         *prometheus.CounterVec
	segments, dropped               *prometheus.CounterVec
	bitrate, spoolItems, spoolBytes *prometheus.GaugeVec
	viewers                         *prometheus.GaugeVec
	// What WebRTC viewers were sent and reported lost: the loss ratio is
	// rate(lost) / rate(sent packets), the bitrate out 8 * rate(bytes).
	whepPackets, whepBytes, whepLost *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	perStream := func(name, help string) *prometheus.GaugeVec {
		return prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "segflow_relay", Name: name, Help: help}, []string{"stream"})
	}
	perStreamCounter := func(name, help string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "segflow_relay", Name: name, Help: help}, []string{"stream"})
	}
	m := &metrics{
		publishers: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "segflow_relay", Name: "publishers", Help: "Publishers connected now."}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "segflow_relay", Name: "refused_total",
			Help: "Connections refused, by protocol and reason."}, []string{"protocol", "reason"}),
		segments: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "segflow_relay", Name: "segments_total",
			Help: "Segments closed."}, []string{"stream"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "segflow_relay", Name: "segments_dropped_total",
			Help: "Segments dropped because the spool was full."}, []string{"stream"}),
		bitrate:     perStream("bitrate_bits_per_second", "Bitrate of the last closed segment."),
		spoolItems:  perStream("spool_depth", "Objects waiting in the spool for the bucket."),
		spoolBytes:  perStream("spool_bytes", "Bytes waiting in the spool."),
		viewers:     perStream("whep_viewers", "WebRTC (WHEP) viewers watching now."),
		whepPackets: perStreamCounter("whep_sent_packets_total", "RTP packets sent to WebRTC (WHEP) viewers, each viewer's counted."),
		whepBytes:   perStreamCounter("whep_sent_bytes_total", "RTP payload bytes sent to WebRTC (WHEP) viewers, each viewer's counted."),
		whepLost:    perStreamCounter("whep_lost_packets_total", "RTP packets WebRTC (WHEP) viewers reported lost (RTCP receiver reports' cumulative loss, as it grows)."),
	}
	if reg != nil {
		reg.MustRegister(m.publishers, m.refused, m.segments, m.dropped, m.bitrate, m.spoolItems, m.spoolBytes, m.viewers,
			m.whepPackets, m.whepBytes, m.whepLost)
	}
	return m
}

// RegisterMetrics registers the metrics this package exports on reg, as
// a running component does: for what reads the names (the dashboard's
// and the alerts' checks).
func RegisterMetrics(reg prometheus.Registerer) { newMetrics(reg) }
