package router

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/segflow/segflow/shared/layout"
)

// MinIO's webhook target posts each event once, as soon as the write is
// done, and drops it when the router does not take it: the router is down
// or starting, or its queue refused. (MinIO's queued target keeps events
// on disk, but sends them only on a 3-second scan and costs MinIO a file
// per event, which capped the router well under the events per second it
// has to carry.) The router therefore finds what it missed itself: a
// checkpoint in JetStream says up to when every write has been queued,
// and a catch-up queues the announced writes made since then as the
// webhook would have, read from the journal MinIO also publishes to
// (journal.go), or, when the journal cannot vouch for the window, found
// by listing the bucket. The records it makes carry the ids the webhook's
// would (see Record.ID), so what both bring is queued once within the
// duplicate window.

const (
	checkpointBucket = "SEGFLOW_ROUTER"
	// catchUpBatch is how many missed writes go to Ingest at once.
	catchUpBatch = 256
	// reorderMargin bounds how much older than an event the webhook took
	// another may be that is still on its way: MinIO's send workers take
	// events in order and each post lasts milliseconds.
	reorderMargin = 2 * time.Second
)

// catchUpLoop runs a catch-up when the router starts, and again after any
// notification it did not take or MinIO could not send; between them it
// moves the checkpoint on.
func (r *Router) catchUpLoop(kv jetstream.KeyValue) {
	defer r.wg.Done()
	key := "covered." + r.cfg.CatchUpBucket
	var covered time.Time
	for {
		// Unreadable for a moment (a leader election) is not "never ran":
		// catching up "from now" would skip everything missed.
		var err error
		covered, err = loadCheckpoint(r.ctx, kv, key)
		if err == nil {
			break
		}
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			// A router that has never run replays nothing written before
			// it, and from now on a restart catches up from here.
			covered = time.Now()
			if err := saveCheckpoint(r.ctx, kv, key, covered); err != nil {
				r.log.Warn("router: save checkpoint", "err", err)
			}
			break
		}
		r.log.Warn("router: checkpoint unreadable; trying again", "err", err)
		select {
		case <-r.ctx.Done():
			return
		case <-time.After(r.cfg.CatchUpEvery):
		}
	}
	// baseline is MinIO's counters read when the journal last had nothing
	// missing (after a listing, or as saved by the router before).
	statsKey := "notify." + r.cfg.CatchUpBucket
	baseline, haveBaseline := loadNotifyStats(r.ctx, kv, statsKey)
	behind := true // the start itself: the webhook was not served
	doubt := false // MinIO skipped or failed notifications since baseline
	var verifyAfter time.Time
	warnedStats := false
	step := func() {
		if r.missed.Swap(false) {
			behind = true
		}
		stats, statsErr := r.readNotifyStats(r.ctx)
		switch {
		case statsErr != nil:
			if !warnedStats {
				r.log.Warn("router: MinIO's notification counters unreadable; catch-ups list the bucket", "err", statsErr)
				warnedStats = true
			}
		case haveBaseline && !stats.same(baseline):
			if !doubt {
				r.log.Warn("router: MinIO skipped or failed notifications; listing the bucket",
					"skipped", stats.Skipped-baseline.Skipped, "journal_failed", stats.JournalFailed-baseline.JournalFailed)
			}
			doubt, behind = true, true
		}
		next := time.Now()
		if behind {
			source := "listing"
			refused := r.journalDoubted.Swap(false)
			var journal jetstream.Stream
			var why string
			switch {
			case refused:
				why = "the queue refused a notification"
			case statsErr != nil || doubt:
				why = "MinIO's counters moved or are unreadable"
			case !haveBaseline:
				why = "no reading of MinIO's counters saved yet"
			default:
				if journal, why = r.journalCovers(r.ctx, covered); journal != nil {
					source = "journal"
				}
			}
			began := time.Now()
			var n int
			var err error
			if source == "journal" {
				n, err = r.catchUpJournal(r.ctx, journal, covered)
			} else {
				r.log.Info("router: catching up by listing the bucket", "bucket", r.cfg.CatchUpBucket, "why", why)
				n, err = r.catchUp(r.ctx, covered)
			}
			if err != nil {
				if refused {
					r.journalDoubted.Store(true)
				}
				if r.ctx.Err() == nil {
					r.log.Warn("router: catch-up failed; retrying", "bucket", r.cfg.CatchUpBucket, "since", covered, "source", source, "err", err)
				}
				return
			}
			r.metrics.catchUps.WithLabelValues(source).Inc()
			r.metrics.catchUpTime.Observe(time.Since(began).Seconds())
			behind = false
			if source == "journal" {
				// What MinIO failed to publish while the journal was read
				// shows in its counters only later: until a reading that
				// recent agrees, the checkpoint stays.
				verifyAfter = time.Now().Add(notifyStatsLag)
			} else if verifyAfter = (time.Time{}); statsErr == nil {
				baseline, haveBaseline, doubt = stats, true, false
				if err := saveNotifyStats(r.ctx, kv, statsKey, baseline); err != nil {
					r.log.Warn("router: save MinIO's counters", "err", err)
				}
			}
			r.log.Info("router: caught up", "bucket", r.cfg.CatchUpBucket, "since", covered, "source", source, "queued", n,
				"seconds", time.Since(began).Seconds())
		}
		if !verifyAfter.IsZero() {
			if statsErr != nil {
				behind = true // unverifiable: list next time
				return
			}
			if stats.At.Before(verifyAfter) {
				return
			}
			verifyAfter = time.Time{}
		}
		// Everything written before next, less the time MinIO may take to
		// post an event, is queued: by the catch-up, or by the webhook while
		// no notification was refused. So is everything written a little
		// before the newest event taken: MinIO posts from one queue in
		// order, a few at once.
		c := next.Add(-r.cfg.CatchUpLag)
		if ns := r.newestTaken.Load(); ns != 0 {
			if t := time.Unix(0, ns).Add(-reorderMargin); t.After(c) && t.Before(next) {
				c = t
			}
		}
		if c.After(covered) {
			if err := saveCheckpoint(r.ctx, kv, key, c); err != nil {
				r.log.Warn("router: save checkpoint", "err", err)
				return
			}
			covered = c
		}
	}
	t := time.NewTicker(r.cfg.CatchUpEvery)
	defer t.Stop()
	for {
		if r.Ready() {
			step()
		}
		select {
		case <-r.ctx.Done():
			return
		case <-t.C:
		}
	}
}

// catchUp queues every announced object of the bucket modified at or after
// since, found by listing it: O(bucket), for when the journal cannot
// vouch for the window. It returns the deliveries queued.
func (r *Router) catchUp(ctx context.Context, since time.Time) (int, error) {
	bucket := r.cfg.CatchUpBucket
	b := r.newBatcher()
	for _, f := range layout.EventFilters() {
		for obj := range r.cfg.Storage.Minio().ListObjects(ctx, bucket, minio.ListObjectsOptions{
			Prefix: f.Prefix, Recursive: true, WithMetadata: true}) {
			if obj.Err != nil {
				return b.queued, fmt.Errorf("catch-up: list %s/%s: %w", bucket, f.Prefix, obj.Err)
			}
			if obj.LastModified.Before(since) || !strings.HasSuffix(obj.Key, f.Suffix) {
				continue
			}
			if err := b.add(ctx, listedRecord(bucket, obj)); err != nil {
				return b.queued, err
			}
		}
	}
	return b.queued, b.flush(ctx)
}

// batcher gives a catch-up's records to Ingest catchUpBatch at a time.
type batcher struct {
	r      *Router
	batch  Notification
	queued int
}

func (r *Router) newBatcher() *batcher { return &batcher{r: r} }

func (b *batcher) add(ctx context.Context, recs ...Record) error {
	for _, rec := range recs {
		b.batch.Records = append(b.batch.Records, rec)
		if len(b.batch.Records) == catchUpBatch {
			if err := b.flush(ctx); err != nil {
				return err
			}
		}
	}
	return nil
}

func (b *batcher) flush(ctx context.Context) error {
	if len(b.batch.Records) == 0 {
		return nil
	}
	n, err := b.r.Ingest(ctx, b.batch)
	b.queued += n
	b.r.metrics.caughtUp.Add(float64(n))
	b.batch.Records = b.batch.Records[:0]
	return err
}

// listedRecord is the record MinIO's webhook sends for a write, made from
// the object as a listing shows it.
func listedRecord(bucket string, obj minio.ObjectInfo) Record {
	var rec Record
	rec.EventVersion = "2.0"
	rec.EventSource = minioEventSource
	rec.EventTime = obj.LastModified.UTC()
	rec.EventName = "s3:ObjectCreated:Put"
	rec.S3.Bucket.Name = bucket
	rec.S3.Bucket.ARN = "arn:aws:s3:::" + bucket
	rec.S3.Object.Key = url.QueryEscape(obj.Key)
	rec.S3.Object.Size = obj.Size
	rec.S3.Object.ETag = obj.ETag
	rec.S3.Object.ContentType = obj.ContentType
	rec.S3.Object.VersionID = obj.VersionID
	rec.S3.Object.Sequencer = fmt.Sprintf("%X", obj.LastModified.UnixNano())
	if len(obj.UserMetadata) > 0 {
		rec.S3.Object.UserMetadata = map[string]string(obj.UserMetadata)
	}
	return rec
}

func loadCheckpoint(ctx context.Context, kv jetstream.KeyValue, key string) (time.Time, error) {
	e, err := kv.Get(ctx, key)
	if err != nil {
		return time.Time{}, err
	}
	return time.Parse(time.RFC3339Nano, string(e.Value()))
}

func saveCheckpoint(ctx context.Context, kv jetstream.KeyValue, key string, t time.Time) error {
	_, err := kv.Put(ctx, key, []byte(t.UTC().Format(time.RFC3339Nano)))
	return err
}

func loadNotifyStats(ctx context.Context, kv jetstream.KeyValue, key string) (notifyStats, bool) {
	e, err := kv.Get(ctx, key)
	if err != nil {
		return notifyStats{}, false
	}
	var s notifyStats
	if err := json.Unmarshal(e.Value(), &s); err != nil {
		return notifyStats{}, false
	}
	return s, true
}

func saveNotifyStats(ctx context.Context, kv jetstream.KeyValue, key string, s notifyStats) error {
	b, err := json.Marshal(s)
	if err != nil {
		return err
	}
	_, err = kv.Put(ctx, key, b)
	return err
}
