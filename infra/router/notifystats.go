package router

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"github.com/segflow/segflow/shared/telemetry"
)

// MinIO notifies from one in-memory queue (50,000 events) shared by its
// targets and skips what does not fit: a write whose event was skipped
// reaches neither the webhook nor the journal, and nothing tells the
// router. (Filling a bucket from 32 writers, MinIO had sent 3,422 events
// for 25,262 writes after a minute.) A NATS publish can fail too, and then
// the journal lacks the write. MinIO counts both; the router keeps the
// counts beside its checkpoint and trusts the journal only while they
// have not moved.

// notifyStatsLag is how old a reading of MinIO's counters may be about
// the notifications it has already tried: MinIO computes its metrics at
// most every 10 s, and a JetStream publish fails only after its 5 s wait.
const notifyStatsLag = 20 * time.Second

// notifyStats are MinIO's counts of the notifications that did not reach
// the journal, as read at At.
type notifyStats struct {
	Skipped       float64   `json:"skipped"`        // minio_notify_events_skipped_total
	JournalFailed float64   `json:"journal_failed"` // minio_notify_target_failed_events of NATS targets
	At            time.Time `json:"at"`
}

// same reports whether no notification was skipped or failed between
// the two readings. A restarted server counts from zero: that differs
// too, and rightly, as its queue's events were lost with it.
func (s notifyStats) same(o notifyStats) bool {
	return s.Skipped == o.Skipped && s.JournalFailed == o.JournalFailed
}

// readNotifyStats reads MinIO's counters through the router's storage
// client (the key it signs the metrics token with must be allowed to
// read them).
func (r *Router) readNotifyStats(ctx context.Context) (notifyStats, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	at := time.Now()
	body, err := r.cfg.Storage.ServerMetrics(ctx)
	if err != nil {
		return notifyStats{}, err
	}
	scrape, err := telemetry.ParseScrape(bytes.NewReader(body))
	if err != nil {
		return notifyStats{}, fmt.Errorf("minio %w", err)
	}
	if !scrape.Has("minio_notify_events_skipped_total") {
		return notifyStats{}, fmt.Errorf("minio metrics: no minio_notify_events_skipped_total")
	}
	s := notifyStats{At: at,
		Skipped:       scrape.Sum("minio_notify_events_skipped_total", nil),
		JournalFailed: scrape.Sum("minio_notify_target_failed_events", map[string]string{"target_name": journalARNResource}),
	}
	return s, nil
}
