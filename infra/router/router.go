// Package router is the wire between "an object landed" and "the right
// functions ran": it takes S3 bucket notifications (MinIO's webhook, or SQS
// on AWS), turns each record into a CloudEvent, maps the key to a topic by
// the bucket layout, and queues one delivery per subscribed function in
// JetStream before acknowledging. Workers deliver each event to its function
// through the gateway, retry with backoff, and dead-letter what keeps
// failing.
package router

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/segflow/segflow/infra/gwclient"
	"github.com/segflow/segflow/infra/queue"
	"github.com/segflow/segflow/shared/storage"
	"github.com/segflow/segflow/shared/tracing"
)

// Annotations a function sets in stack.yml to tune its deliveries.
const (
	// AnnotationTopic is the OpenFaaS connector convention: a comma-separated
	// list of topics the function subscribes to.
	AnnotationTopic = "topic"
	// AnnotationMaxAttempts bounds deliveries of one event (default 5).
	AnnotationMaxAttempts = "com.segflow.max-attempts"
	// AnnotationConcurrency bounds deliveries in flight to the function
	// (default 4), and one urgent delivery beyond it.
	AnnotationConcurrency = "com.segflow.concurrency"
)

// JetStream names.
const (
	eventsStream  = "SEGFLOW_EVENTS"
	eventsSubject = "segflow.deliver."
	dlqStream     = "SEGFLOW_DLQ"
	dlqSubject    = "segflow.dlq."
)

// Config configures a Router.
type Config struct {
	NATS *nats.Conn
	// Gateway lists the functions (with their topic annotations) and
	// carries deliveries to them.
	Gateway *gwclient.Client
	// Token is the bearer token the webhook requires.
	Token string
	// Storage receives dead letters as objects under deadletter/ in the
	// event's bucket; nil keeps them in JetStream only.
	Storage *storage.Client
	// CatchUpBucket is the bucket whose MinIO webhook events this router
	// takes: it is listed, through Storage, for the writes the router
	// missed while it was down or refusing (see catchup.go). Empty for
	// sources that keep undelivered events themselves (SQS).
	CatchUpBucket string
	// CatchUpLag is how late MinIO may post an event after its write
	// (default 30s); CatchUpEvery how often the checkpoint moves (5s).
	CatchUpLag, CatchUpEvery time.Duration
	// JournalAge is how long the journal keeps MinIO's events (default
	// 24h): a router down longer than that lists the bucket to catch up.
	JournalAge time.Duration
	// Refresh is how often subscriptions are re-read (default 2s).
	Refresh time.Duration
	// DedupWindow is how long an event id is remembered (default 10m).
	DedupWindow time.Duration
	// BackoffBase and BackoffMax shape the retry delays (200ms, 30s).
	BackoffBase, BackoffMax time.Duration
	// MaxAttempts is the default bound per event (default 5).
	MaxAttempts int
	// Concurrency is the default deliveries in flight per function (4).
	Concurrency int
	// DeliveryTimeout bounds one delivery (default 15m: a transcode).
	DeliveryTimeout time.Duration
	// AckWait is how long JetStream waits to hear from the router about a
	// delivery it handed out before it hands it out again (default 30s):
	// the time a router that died has to be given up on. A live router
	// reports every delivery it holds as in progress three times as often.
	AckWait    time.Duration
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	// SQS, when set, is a queue of S3 notifications the router polls
	// (beside its webhook) from Open until Close.
	SQS *SQSSource
	// Replicas is how many JetStream nodes keep the router's streams and
	// checkpoint (default 1; 3 on a JetStream cluster, so deliveries
	// survive a node dying).
	Replicas int
}

// Router routes bucket events to functions.
type Router struct {
	cfg     Config
	js      jetstream.JetStream
	log     *slog.Logger
	metrics *metrics
	// missed is set when a notification was refused; the catch-up loop
	// then lists what MinIO dropped.
	missed atomic.Bool
	// journalDoubted is set when the queue refused a notification: MinIO's
	// publishes to the journal, on the same queue, may have failed too, so
	// the next catch-up lists.
	journalDoubted atomic.Bool
	// newestTaken is the latest event time (Unix ns) among the
	// notifications the webhook queued.
	newestTaken atomic.Int64
	// http posts deliveries; each is a client span of the event's trace.
	http *http.Client
	// reach is whether the gateway answers: while it refuses connections
	// the router hands its deliveries back and takes none.
	reach *reach

	mu      sync.RWMutex
	subs    map[string][]string // topic -> functions
	fnCfg   map[string]fnConfig
	workers map[string]*fnWorkers
	loaded  bool

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

type fnConfig struct {
	maxAttempts int
	concurrency int
}

// Open creates the streams, loads the subscriptions and starts delivering.
func Open(ctx context.Context, cfg Config) (*Router, error) {
	if cfg.NATS == nil || cfg.Gateway == nil {
		return nil, errors.New("router: NATS and Gateway are required")
	}
	setDefaults(&cfg)
	js, err := jetstream.New(cfg.NATS)
	if err != nil {
		return nil, fmt.Errorf("router: %w", err)
	}
	streams := []struct {
		what string
		jetstream.StreamConfig
	}{
		{"events stream", jetstream.StreamConfig{
			Name: eventsStream, Subjects: []string{eventsSubject + ">"},
			Storage: jetstream.FileStorage, Retention: jetstream.WorkQueuePolicy,
			Duplicates: cfg.DedupWindow, Replicas: cfg.Replicas,
		}},
		{"dead-letter stream", jetstream.StreamConfig{
			Name: dlqStream, Subjects: []string{dlqSubject + ">"},
			Storage: jetstream.FileStorage, Retention: jetstream.LimitsPolicy,
			MaxAge: 14 * 24 * time.Hour, Replicas: cfg.Replicas,
		}},
	}
	for _, st := range streams {
		if err := queue.Placed(ctx, st.what, func(ctx context.Context) error {
			_, err := js.CreateOrUpdateStream(ctx, st.StreamConfig)
			return err
		}); err != nil {
			return nil, fmt.Errorf("router: %w", err)
		}
	}
	rctx, cancel := context.WithCancel(context.Background())
	r := &Router{cfg: cfg, js: js, log: cfg.Logger, metrics: newMetrics(cfg.Registerer),
		subs: map[string][]string{}, fnCfg: map[string]fnConfig{}, workers: map[string]*fnWorkers{},
		http: &http.Client{Transport: tracing.Transport(deliveryTransport(), nil)}, ctx: rctx, cancel: cancel,
		reach: newReach(cfg.Gateway.URL)}
	if err := r.Refresh(ctx); err != nil {
		// The gateway may come up after us; the webhook answers 503 until
		// subscriptions load, and the catch-up then queues what MinIO
		// dropped meanwhile.
		r.log.Warn("router: subscriptions not loaded yet", "err", err)
	}
	r.wg.Add(1)
	go r.refreshLoop()
	if cfg.SQS != nil {
		if cfg.SQS.Client == nil || cfg.SQS.QueueURL == "" {
			r.Close()
			return nil, errors.New("router: sqs: client and queue URL are required")
		}
		r.wg.Go(func() { r.pollSQS(r.ctx, *cfg.SQS) })
	}
	switch {
	case cfg.CatchUpBucket == "":
	case cfg.Storage == nil:
		r.log.Warn("router: no storage to list; writes MinIO drops while the router is down are lost", "bucket", cfg.CatchUpBucket)
	default:
		var kv jetstream.KeyValue
		if err := r.openJournal(ctx); err != nil {
			r.Close()
			return nil, fmt.Errorf("router: %w", err)
		}
		if err := queue.Placed(ctx, "checkpoint store", func(ctx context.Context) (err error) {
			kv, err = js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: checkpointBucket, Storage: jetstream.FileStorage,
				Replicas: cfg.Replicas})
			return err
		}); err != nil {
			r.Close()
			return nil, fmt.Errorf("router: %w", err)
		}
		r.wg.Add(1)
		go r.catchUpLoop(kv)
	}
	return r, nil
}

func setDefaults(c *Config) {
	if c.Refresh <= 0 {
		c.Refresh = 2 * time.Second
	}
	if c.DedupWindow <= 0 {
		c.DedupWindow = 10 * time.Minute
	}
	if c.BackoffBase <= 0 {
		c.BackoffBase = 200 * time.Millisecond
	}
	if c.BackoffMax <= 0 {
		c.BackoffMax = 30 * time.Second
	}
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = 5
	}
	if c.Concurrency <= 0 {
		c.Concurrency = 4
	}
	if c.CatchUpLag <= 0 {
		c.CatchUpLag = 30 * time.Second
	}
	if c.JournalAge <= 0 {
		c.JournalAge = 24 * time.Hour
	}
	if c.CatchUpEvery <= 0 {
		c.CatchUpEvery = 5 * time.Second
	}
	if c.DeliveryTimeout <= 0 {
		c.DeliveryTimeout = 15 * time.Minute
	}
	if c.AckWait <= 0 {
		c.AckWait = 30 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Replicas <= 0 {
		c.Replicas = 1
	}
}

// Close stops the workers; queued deliveries stay in JetStream.
func (r *Router) Close() {
	r.cancel()
	r.wg.Wait()
	r.mu.Lock()
	for _, w := range r.workers {
		w.stop()
	}
	r.workers = map[string]*fnWorkers{}
	r.mu.Unlock()
	_ = r.cfg.NATS.FlushTimeout(2 * time.Second)
}

// Ready says whether subscriptions have been loaded at least once.
func (r *Router) Ready() bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.loaded
}

// Subscribers returns the functions subscribed to topic.
func (r *Router) Subscribers(topic string) []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return append([]string(nil), r.subs[topic]...)
}

func (r *Router) refreshLoop() {
	defer r.wg.Done()
	t := time.NewTicker(r.cfg.Refresh)
	defer t.Stop()
	for {
		select {
		case <-r.ctx.Done():
			return
		case <-t.C:
			if err := r.Refresh(r.ctx); err != nil && r.ctx.Err() == nil {
				r.log.Warn("router: refresh subscriptions", "err", err)
			}
		}
	}
}

// deliveryTransport keeps a connection per delivery in flight: every
// delivery goes to one host (the gateway), up to the sum of the functions'
// concurrency at once, and the default two idle connections per host made
// the rest redial for each event.
func deliveryTransport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = 256
	return t
}
