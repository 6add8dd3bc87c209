package router

import (
	"context"
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
// has to carry.) The router therefore finds what it missed itself, in the
// bucket: a checkpoint in JetStream says up to when every write has been
// queued, and a catch-up lists the announced keys written since then and
// queues them as the webhook would have. The records it makes carry the
// ids the webhook's would (see Record.ID), so what both bring is queued
// once within the duplicate window.

const (
	checkpointBucket = "SEGFLOW_ROUTER"
	// catchUpBatch is how many listed objects go to Ingest at once.
	catchUpBatch = 256
	// reorderMargin bounds how much older than an event the webhook took
	// another may be that is still on its way: MinIO's send workers take
	// events in order and each post lasts milliseconds.
	reorderMargin = 2 * time.Second
)

// catchUpLoop runs a catch-up when the router starts, and again after any
// notification it did not take; between them it moves the checkpoint on.
func (r *Router) catchUpLoop(kv jetstream.KeyValue) {
	defer r.wg.Done()
	key := "covered." + r.cfg.CatchUpBucket
	covered, err := loadCheckpoint(r.ctx, kv, key)
	if err != nil {
		// A router that has never run replays nothing written before it,
		// and from now on a restart catches up from here.
		covered = time.Now()
		if !errors.Is(err, jetstream.ErrKeyNotFound) {
			r.log.Warn("router: checkpoint unreadable; catching up from now", "err", err)
		}
		if err := saveCheckpoint(r.ctx, kv, key, covered); err != nil {
			r.log.Warn("router: save checkpoint", "err", err)
		}
	}
	behind := true // the start itself: the webhook was not served
	step := func() {
		if r.missed.Swap(false) {
			behind = true
		}
		next := time.Now()
		if behind {
			n, err := r.catchUp(r.ctx, covered)
			if err != nil {
				if r.ctx.Err() == nil {
					r.log.Warn("router: catch-up failed; retrying", "bucket", r.cfg.CatchUpBucket, "since", covered, "err", err)
				}
				return
			}
			behind = false
			r.log.Info("router: caught up", "bucket", r.cfg.CatchUpBucket, "since", covered, "queued", n)
		}
		// Everything written before next, less the time MinIO may take to
		// post an event, is queued: by the listing, or by the webhook while
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
// since. It returns the deliveries queued.
func (r *Router) catchUp(ctx context.Context, since time.Time) (int, error) {
	bucket := r.cfg.CatchUpBucket
	queued := 0
	var batch Notification
	flush := func() error {
		if len(batch.Records) == 0 {
			return nil
		}
		n, err := r.Ingest(ctx, batch)
		queued += n
		r.metrics.caughtUp.Add(float64(n))
		batch.Records = batch.Records[:0]
		return err
	}
	for _, f := range layout.EventFilters() {
		for obj := range r.cfg.Storage.Minio().ListObjects(ctx, bucket, minio.ListObjectsOptions{
			Prefix: f.Prefix, Recursive: true, WithMetadata: true}) {
			if obj.Err != nil {
				return queued, fmt.Errorf("catch-up: list %s/%s: %w", bucket, f.Prefix, obj.Err)
			}
			if obj.LastModified.Before(since) || !strings.HasSuffix(obj.Key, f.Suffix) {
				continue
			}
			batch.Records = append(batch.Records, listedRecord(bucket, obj))
			if len(batch.Records) == catchUpBatch {
				if err := flush(); err != nil {
					return queued, err
				}
			}
		}
	}
	return queued, flush()
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
