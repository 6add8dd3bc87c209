package provider

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"github.com/segflow/segflow/infra/queue"
	"github.com/segflow/segflow/shared/retry"
)

// Names of the JetStream objects that hold async calls.
const (
	asyncStream   = "SEGFLOW_ASYNC"
	asyncSubject  = "segflow.async."
	asyncConsumer = "segflow-async-worker"
)

// AsyncCall is one /async-function request, kept in JetStream until its
// function has run and its callback has been made.
type AsyncCall struct {
	ID          string      `json:"id"`
	Function    string      `json:"function"`
	Method      string      `json:"method"`
	Path        string      `json:"path"`
	Query       string      `json:"query,omitempty"`
	Header      http.Header `json:"header"`
	Body        []byte      `json:"body"`
	CallbackURL string      `json:"callbackUrl,omitempty"`
	QueuedAt    time.Time   `json:"queuedAt"`
}

// AsyncOptions tune the worker.
type AsyncOptions struct {
	// Concurrency is how many calls run at once (default 4).
	Concurrency int
	// AckWait is how long a taken call may run before JetStream hands it to
	// another worker; the worker extends it while the call runs, so it only
	// bounds how late a call a crashed runtime held is run again (default 10s).
	AckWait time.Duration
	// MaxDeliver bounds redeliveries of one call (default 10).
	MaxDeliver int
	// Callbacks says where X-Callback-Url may point.
	Callbacks CallbackPolicy
	Logger    *slog.Logger
	// Replicas is how many JetStream nodes keep the queued calls (default
	// 1; 3 on a JetStream cluster).
	Replicas int
}

// AsyncQueue queues calls in JetStream and runs them through the runtime.
type AsyncQueue struct {
	nc     *nats.Conn
	js     jetstream.JetStream
	cons   jetstream.Consumer
	rt     *Runtime
	opts   AsyncOptions
	log    *slog.Logger
	client func(callbackURL string) *http.Client

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// OpenAsync makes sure the stream and consumer exist and starts the worker.
func OpenAsync(ctx context.Context, nc *nats.Conn, rt *Runtime, opts AsyncOptions) (*AsyncQueue, error) {
	if opts.Concurrency <= 0 {
		opts.Concurrency = 4
	}
	if opts.AckWait <= 0 {
		opts.AckWait = 10 * time.Second
	}
	if opts.MaxDeliver <= 0 {
		opts.MaxDeliver = 10
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("async queue: %w", err)
	}
	err = queue.Placed(ctx, "async queue stream", func(ctx context.Context) error {
		_, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
			Name:      asyncStream,
			Subjects:  []string{asyncSubject + ">"},
			Storage:   jetstream.FileStorage,
			Retention: jetstream.WorkQueuePolicy,
			Replicas:  max(opts.Replicas, 1),
		})
		return err
	})
	if err != nil {
		return nil, err
	}
	cons, err := js.CreateOrUpdateConsumer(ctx, asyncStream, jetstream.ConsumerConfig{
		Durable:       asyncConsumer,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       opts.AckWait,
		MaxDeliver:    opts.MaxDeliver,
		MaxAckPending: opts.Concurrency * 4,
	})
	if err != nil {
		return nil, fmt.Errorf("async queue consumer: %w", err)
	}
	wctx, cancel := context.WithCancel(context.Background())
	q := &AsyncQueue{nc: nc, js: js, cons: cons, rt: rt, opts: opts, log: opts.Logger, cancel: cancel,
		client: opts.Callbacks.client(30 * time.Second)}
	for i := 0; i < opts.Concurrency; i++ {
		q.wg.Add(1)
		go q.work(wctx)
	}
	return q, nil
}

// Enqueue stores the call durably and returns its id.
func (q *AsyncQueue) Enqueue(ctx context.Context, c AsyncCall) (string, error) {
	if c.ID == "" {
		c.ID = nuid.Next()
	}
	c.QueuedAt = time.Now().UTC()
	b, err := json.Marshal(c)
	if err != nil {
		return "", fmt.Errorf("enqueue %s: %w", c.Function, err)
	}
	// The message id makes a client's retry of the same call id a no-op.
	if _, err := q.js.Publish(ctx, asyncSubject+c.Function, b, jetstream.WithMsgID(c.ID)); err != nil {
		return "", fmt.Errorf("enqueue %s: %w", c.Function, err)
	}
	return c.ID, nil
}

// Close stops taking calls. Calls that are running are cancelled and handed
// back to JetStream, so the next worker (after a restart) runs them.
func (q *AsyncQueue) Close() {
	q.cancel()
	q.wg.Wait()
	// The naks of cancelled calls are buffered; without a flush the server
	// would only hand those calls out again after AckWait.
	_ = q.nc.FlushTimeout(2 * time.Second)
}

func (q *AsyncQueue) work(ctx context.Context) {
	defer q.wg.Done()
	for ctx.Err() == nil {
		batch, err := q.cons.Fetch(1, jetstream.FetchMaxWait(time.Second))
		if err != nil {
			if ctx.Err() == nil {
				q.log.Warn("async fetch", "err", err)
				time.Sleep(200 * time.Millisecond)
			}
			continue
		}
		for msg := range batch.Messages() {
			q.handle(ctx, msg)
		}
	}
}

func (q *AsyncQueue) handle(ctx context.Context, msg jetstream.Msg) {
	var c AsyncCall
	if err := json.Unmarshal(msg.Data(), &c); err != nil {
		q.log.Error("async call undecodable, dropped", "err", err)
		_ = msg.Term()
		return
	}
	log := q.log.With("call_id", c.ID, "function", c.Function)
	// Keep JetStream from redelivering while a long call runs.
	stop := queue.KeepInProgress(msg, q.opts.AckWait/3)
	res, err := q.rt.Call(ctx, c.Function, c.Method, c.Path, c.Query, c.Header, bytes.NewReader(c.Body))
	stop()
	switch {
	case ctx.Err() != nil:
		// Shutting down: hand the call back untouched.
		q.requeue(msg, c, log)
		return
	case errors.Is(err, ErrTooMany):
		_ = msg.NakWithDelay(500 * time.Millisecond)
		return
	case errors.Is(err, ErrNotFound):
		res = &Result{Status: http.StatusNotFound, Body: []byte(err.Error())}
	case err != nil:
		log.Error("async call", "err", err)
		_ = msg.NakWithDelay(time.Second)
		return
	}
	log.Info("async call done", "status", res.Status, "duration_ms", res.Duration.Milliseconds())
	if c.CallbackURL != "" {
		q.callback(ctx, c, res, log)
	}
	if err := msg.Ack(); err != nil {
		log.Error("async ack", "err", err)
	}
}

// requeue hands a call that shutdown interrupted back to the queue. A nak
// would do in a running server, but JetStream's file store does not persist
// it, so after a restart the call would wait out AckWait; a fresh copy and
// a confirmed ack of the old one make it the next worker's at once.
func (q *AsyncQueue) requeue(msg jetstream.Msg, c AsyncCall, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	md, _ := msg.Metadata()
	var seq uint64
	if md != nil {
		seq = md.Sequence.Stream
	}
	_, err := q.js.Publish(ctx, msg.Subject(), msg.Data(), jetstream.WithMsgID(fmt.Sprintf("%s-requeued-%d", c.ID, seq)))
	if err != nil {
		_ = msg.Nak()
		log.Warn("async call requeue failed; it runs again after AckWait", "err", err)
		return
	}
	if err := msg.DoubleAck(ctx); err != nil {
		log.Warn("async call requeued but old copy not acked; it may run twice", "err", err)
		return
	}
	log.Info("async call returned to the queue on shutdown")
}

// callback posts the result to X-Callback-Url with the headers OpenFaaS's
// queue-worker sends, retrying briefly; the call itself is not re-run.
func (q *AsyncQueue) callback(ctx context.Context, c AsyncCall, res *Result, log *slog.Logger) {
	b := retry.Backoff(200*time.Millisecond, time.Second)
	for attempt := 1; attempt <= 3; attempt++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.CallbackURL, bytes.NewReader(res.Body))
		if err != nil {
			log.Error("callback url", "err", err)
			return
		}
		if ct := res.Header.Get("Content-Type"); ct != "" {
			req.Header.Set("Content-Type", ct)
		}
		req.Header.Set("X-Call-Id", c.ID)
		req.Header.Set("X-Function-Name", c.Function)
		req.Header.Set("X-Function-Status", strconv.Itoa(res.Status))
		req.Header.Set("X-Duration-Seconds", strconv.FormatFloat(res.Duration.Seconds(), 'f', 6, 64))
		resp, err := q.client(c.CallbackURL).Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode < 500 {
				return
			}
			err = fmt.Errorf("callback answered %d", resp.StatusCode)
		}
		log.Warn("callback failed", "attempt", attempt, "err", err)
		if !retry.Wait(ctx, b) {
			return
		}
	}
}

// CheckCallback refuses a callback URL the policy does not allow; the
// async handler asks before queueing, so the caller hears why.
func (q *AsyncQueue) CheckCallback(ctx context.Context, raw string) error {
	return q.opts.Callbacks.Check(ctx, raw)
}
