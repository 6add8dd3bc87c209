package router

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/minio/minio-go/v7/pkg/notification"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/segflow/segflow/infra/queue"
	"github.com/segflow/segflow/shared/layout"
)

// The journal is what lets a restarted router queue only the writes it
// missed. Nothing but MinIO sees a write made while the router is down,
// so MinIO itself writes the journal: a second notification target beside
// the webhook, NATS in JetStream mode, with the same filters, publishing
// every announced write to journalSubject. A catch-up reads the journal
// from the checkpoint instead of listing the bucket (catchup.go), in time
// proportional to the writes missed rather than to the bucket. The
// router lists only when the journal cannot vouch for the window
// (journalCovers).
const (
	journalStream  = "SEGFLOW_JOURNAL"
	journalSubject = "segflow.journal"
	// journalARNResource is the NATS target's kind in its MinIO ARN.
	journalARNResource = "nats"
)

// openJournal makes the stream MinIO's NATS target publishes to: MinIO
// publishes through JetStream and fails (and counts the failure) while
// no stream takes the subject.
func (r *Router) openJournal(ctx context.Context) error {
	return queue.Placed(ctx, "journal stream", func(ctx context.Context) error {
		_, err := r.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
			Name: journalStream, Subjects: []string{journalSubject},
			Storage: jetstream.FileStorage, Retention: jetstream.LimitsPolicy,
			MaxAge: r.cfg.JournalAge, Replicas: r.cfg.Replicas,
		})
		return err
	})
}

// journalCovers returns the journal when it holds every announced write
// made at or after since, or else nil and why not. The journal's info is
// read once (js.Stream reads it), and the catch-up reads its end from
// that same reading.
func (r *Router) journalCovers(ctx context.Context, since time.Time) (jetstream.Stream, string) {
	from := since.Add(-reorderMargin)
	st, err := r.js.Stream(ctx, journalStream)
	if err != nil {
		return nil, fmt.Sprintf("journal unreadable: %v", err)
	}
	info := st.CachedInfo()
	if info.Created.After(from) {
		return nil, fmt.Sprintf("the journal (created %s) is younger than the checkpoint (%s)",
			info.Created.UTC().Format(time.RFC3339Nano), since.UTC().Format(time.RFC3339Nano))
	}
	if age := info.Config.MaxAge; age > 0 && from.Before(time.Now().Add(-age)) {
		return nil, "the checkpoint is older than the journal keeps entries"
	}
	// Entries removed (aged or purged) up to a time inside the window.
	if s := info.State; s.FirstSeq > 1 {
		removedUpTo := s.FirstTime
		if s.Msgs == 0 {
			removedUpTo = s.LastTime
		}
		if removedUpTo.After(from) {
			return nil, "entries of the window were removed from the journal"
		}
	}
	// MinIO publishes only what the bucket's subscription sends to its
	// NATS target; MinIO accepts only targets it runs, so a subscription
	// naming one means MinIO was configured with it.
	cfg, err := r.cfg.Storage.Minio().GetBucketNotification(ctx, r.cfg.CatchUpBucket)
	if err != nil {
		return nil, fmt.Sprintf("bucket subscription unreadable: %v", err)
	}
	for _, f := range layout.EventFilters() {
		if !journalSubscribed(cfg, f) {
			return nil, fmt.Sprintf("the bucket's subscription sends no %s*%s writes to a NATS target", f.Prefix, f.Suffix)
		}
	}
	return st, ""
}

// journalSubscribed reports whether cfg sends f's object-created events to
// a NATS target.
func journalSubscribed(cfg notification.Configuration, f layout.Filter) bool {
	for _, q := range cfg.QueueConfigs {
		arn, err := notification.NewArnFromString(q.Queue)
		if err != nil || arn.Resource != journalARNResource {
			continue
		}
		created := false
		for _, e := range q.Events {
			created = created || e == notification.ObjectCreatedAll || e == notification.ObjectCreatedPut
		}
		var prefix, suffix string
		if q.Filter != nil {
			for _, rule := range q.Filter.S3Key.FilterRules {
				switch strings.ToLower(rule.Name) {
				case "prefix":
					prefix = rule.Value
				case "suffix":
					suffix = rule.Value
				}
			}
		}
		if created && prefix == f.Prefix && suffix == f.Suffix {
			return true
		}
	}
	return false
}

// catchUpJournal queues every write the journal holds from since (less
// the reorder margin) up to its last entry when the catch-up starts. The
// records are MinIO's own, with the ids the webhook's carry, so what both
// bring is queued once.
func (r *Router) catchUpJournal(ctx context.Context, st jetstream.Stream, since time.Time) (int, error) {
	info := st.CachedInfo()
	from := since.Add(-reorderMargin)
	last := info.State.LastSeq
	if info.State.Msgs == 0 || info.State.LastTime.Before(from) {
		return 0, nil
	}
	cons, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		DeliverPolicy: jetstream.DeliverByStartTimePolicy, OptStartTime: &from})
	if err != nil {
		return 0, fmt.Errorf("catch-up: journal consumer: %w", err)
	}
	b := r.newBatcher()
	idle := 0
	for {
		// What is stored comes at once; waiting for a full batch held the
		// last one for the whole wait.
		batch, err := cons.FetchNoWait(catchUpBatch)
		if err != nil {
			return b.queued, fmt.Errorf("catch-up: journal read: %w", err)
		}
		got, done := 0, false
		for msg := range batch.Messages() {
			got++
			meta, err := msg.Metadata()
			if err != nil {
				return b.queued, fmt.Errorf("catch-up: journal entry: %w", err)
			}
			n, err := ParseNotification(msg.Data())
			if err != nil {
				r.metrics.malformed.Inc()
				r.log.Error("router: malformed journal entry, skipped", "seq", meta.Sequence.Stream, "err", err)
			} else if err := b.add(ctx, n.Records...); err != nil {
				return b.queued, err
			}
			done = done || meta.Sequence.Stream >= last
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) {
			return b.queued, fmt.Errorf("catch-up: journal read: %w", err)
		}
		if done {
			return b.queued, b.flush(ctx)
		}
		if got > 0 {
			idle = 0
			continue
		}
		if idle++; idle > 50 {
			return b.queued, fmt.Errorf("catch-up: journal read stopped before entry %d", last)
		}
		select {
		case <-ctx.Done():
			return b.queued, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}
