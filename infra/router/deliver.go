package router

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/segflow/segflow/infra/queue"
	"github.com/segflow/segflow/shared/events"
	retrypkg "github.com/segflow/segflow/shared/retry"
	"github.com/segflow/segflow/shared/tracing"
)

// fnWorkers deliver one function's queue.
type fnWorkers struct {
	cfg    fnConfig
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// stop cancels the workers without waiting: an in-flight delivery is handed
// back to the queue by its worker.
func (w *fnWorkers) stop() {
	w.cancel()
}

// consumerName is the durable JetStream consumer of fn's deliveries, and
// of its urgent ones when urgent.
func consumerName(fn string, urgent bool) string {
	if urgent {
		return "deliver-" + fn + "-urgent"
	}
	return "deliver-" + fn
}

// deliverySubject is where fn's deliveries are queued: urgent ones on a
// subject of their own, which a consumer of their own serves first.
func deliverySubject(fn string, urgent bool) string {
	if urgent {
		return eventsSubject + fn + ".urgent"
	}
	return eventsSubject + fn
}

// lanes are a function's two queues, the urgent one first.
var lanes = [2]bool{true, false}

// Backlog is how many of fn's deliveries are queued or in flight (taken
// and not yet acknowledged). At 0 everything queued for fn so far has been
// answered for good: no copy of it can come again.
func (r *Router) Backlog(ctx context.Context, fn string) (int, error) {
	n := 0
	for _, urgent := range lanes {
		cons, err := r.js.Consumer(ctx, eventsStream, consumerName(fn, urgent))
		if err != nil {
			return 0, fmt.Errorf("router: consumer of %s: %w", fn, err)
		}
		info, err := cons.Info(ctx)
		if err != nil {
			return 0, fmt.Errorf("router: consumer of %s: %w", fn, err)
		}
		n += int(info.NumPending) + info.NumAckPending
	}
	return n, nil
}

func (r *Router) startWorkers(ctx context.Context, fn string, c fnConfig) (*fnWorkers, error) {
	var conses [2]jetstream.Consumer
	for i, urgent := range lanes {
		cons, err := r.js.CreateOrUpdateConsumer(ctx, eventsStream, jetstream.ConsumerConfig{
			Durable:       consumerName(fn, urgent),
			FilterSubject: deliverySubject(fn, urgent),
			AckPolicy:     jetstream.AckExplicitPolicy,
			AckWait:       r.cfg.AckWait,
			MaxAckPending: maxAckPending(c),
		})
		if err != nil {
			return nil, fmt.Errorf("router: consumer for %s: %w", fn, err)
		}
		conses[i] = cons
	}
	wctx, cancel := context.WithCancel(r.ctx)
	w := &fnWorkers{cfg: c, cancel: cancel}
	w.wg.Add(1)
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		defer w.wg.Done()
		r.work(wctx, conses, fn, c)
	}()
	r.log.Info("router: delivering", "function", fn, "concurrency", c.concurrency, "max_attempts", c.maxAttempts)
	return w, nil
}

// taken is a delivery this router holds: from the moment it is taken,
// also while it waits in the queue for a worker. JetStream hands out
// again what it has not heard of within AckWait, and the last of a 60 s
// upload's segments waits ~40 s for one of three transcodes (each
// redelivery was a segment transcoded twice). JetStream hands out no more
// than MaxAckPending at once, so the queue never fills.
type taken struct {
	msg  jetstream.Msg
	stop func()
}

// work runs up to concurrency of the function's deliveries at once: an
// urgent one whenever there is one, else the others in the order they
// came; and one more worker for urgent ones alone, so an urgent delivery
// never waits for a call already running to end (a 6 s segment's ladder
// takes ~10 s on two cores: a second upload's first frame waited for it).
func (r *Router) work(ctx context.Context, conses [2]jetstream.Consumer, fn string, c fnConfig) {
	var queues [2]chan taken
	var pullers sync.WaitGroup
	for i, cons := range conses {
		queues[i] = make(chan taken, maxAckPending(c))
		pullers.Go(func() {
			defer close(queues[i])
			r.pull(ctx, cons, fn, c, queues[i])
		})
	}
	var workers sync.WaitGroup
	for range c.concurrency {
		workers.Go(func() { r.serve(ctx, c, queues[0], queues[1]) })
	}
	workers.Go(func() { r.serve(ctx, c, queues[0], nil) })
	pullers.Wait()
	workers.Wait()
}

// serve handles deliveries from the two queues (urgent first) until both
// are closed; a nil queue is never read.
func (r *Router) serve(ctx context.Context, c fnConfig, urgent, other <-chan taken) {
	for urgent != nil || other != nil {
		t, ok, fromUrgent := next(urgent, other)
		if !ok {
			if fromUrgent {
				urgent = nil
			} else {
				other = nil
			}
			continue
		}
		if ctx.Err() != nil || r.reach.isDown() {
			// Stopped, or the gateway out of reach, before its turn: back
			// to JetStream, for another router.
			_ = t.msg.Nak()
		} else {
			r.handle(ctx, t.msg, c)
		}
		t.stop()
	}
}

// next takes an urgent delivery if one waits, else whichever comes
// first; ok is false when the queue it read from is closed. A nil queue
// is never read.
func next(urgent, other <-chan taken) (t taken, ok, fromUrgent bool) {
	select {
	case t, ok = <-urgent:
		return t, ok, true
	default:
	}
	select {
	case t, ok = <-urgent:
		return t, ok, true
	case t, ok = <-other:
		return t, ok, false
	}
}

// pull takes one consumer's deliveries in batches (one pull request per
// message costs more than the delivery itself at hundreds a second) into
// out until ctx ends.
func (r *Router) pull(ctx context.Context, cons jetstream.Consumer, fn string, c fnConfig, out chan<- taken) {
	for {
		// Nothing is taken while the gateway is out of reach.
		down, ok := r.reach.whenUp(ctx)
		if !ok {
			return
		}
		it, err := cons.Messages(jetstream.PullMaxMessages(2 * c.concurrency))
		if err != nil {
			r.log.Error("router: pull", "function", fn, "err", err)
			return
		}
		done := make(chan struct{})
		go func() {
			select {
			case <-ctx.Done():
			case <-down:
			case <-done:
				return
			}
			it.Drain() // hand out what is buffered, then end the loop below
		}()
		for {
			msg, err := it.Next()
			if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				break
			}
			if err != nil {
				r.log.Warn("router: pull", "function", fn, "err", err)
				continue
			}
			if ctx.Err() != nil || r.reach.isDown() {
				_ = msg.Nak() // buffered when we stopped: back to JetStream
				continue
			}
			out <- taken{msg, queue.KeepInProgress(msg, r.cfg.AckWait/3)}
		}
		close(done)
		if ctx.Err() != nil {
			return
		}
	}
}

// maxAckPending is how many of a function's deliveries the router holds
// at once: its workers' and a queue of three times as many behind them.
func maxAckPending(c fnConfig) int { return c.concurrency * 4 }

// outcome of one delivery attempt.
type outcome int

const (
	delivered outcome = iota
	retry
	reject
	// busy: the function answered 429, it is at its limit, or 503, what
	// it needs is unavailable (a stage whose storage is out of reach).
	// That says nothing about the event, so it costs no attempt: the
	// router waits and sends it again.
	busy
	// handBack: the gateway refused the connection; the delivery goes
	// back to JetStream at once, for a router whose gateway is up.
	handBack
)

func (r *Router) handle(ctx context.Context, msg jetstream.Msg, c fnConfig) {
	var d delivery
	if err := json.Unmarshal(msg.Data(), &d); err != nil {
		r.log.Error("router: undecodable delivery dropped", "err", err)
		_ = msg.Term()
		return
	}
	md, err := msg.Metadata()
	attempt := 1
	if err == nil {
		attempt = int(md.NumDelivered)
	}
	log := r.log.With("delivery_id", d.ID, "function", d.Function, "attempt", attempt)
	// The delivery's lines carry its event's trace (telemetry's logger
	// reads it from ctx); the span deliver starts has the same parent.
	ctx = traced(ctx, d)

	out, status, err := r.deliver(ctx, d, attempt)
	out, status, err = r.waitOutBusy(ctx, d, attempt, out, status, err, log)
	if ctx.Err() != nil {
		// Shutting down or unsubscribed: the next worker takes it.
		_ = msg.Nak()
		return
	}
	switch out {
	case handBack:
		r.metrics.handedBack.WithLabelValues(d.Function).Inc()
		log.WarnContext(ctx, "router: gateway unreachable; delivery handed back", "err", err)
		_ = msg.Nak()
		r.reach.lost(r.ctx)
	case delivered:
		r.metrics.delivered.WithLabelValues(d.Function).Inc()
		log.InfoContext(ctx, "router: delivered", "status", status)
		_ = msg.Ack()
	case reject:
		r.metrics.rejected.WithLabelValues(d.Function).Inc()
		log.ErrorContext(ctx, "router: function refused the event; not retried", "status", status, "err", err)
		_ = msg.Ack()
	case retry:
		if attempt >= c.maxAttempts {
			if dlErr := r.deadLetter(context.Background(), d, attempt, err); dlErr != nil {
				log.ErrorContext(ctx, "router: dead letter failed; will retry", "err", dlErr)
				_ = msg.NakWithDelay(r.cfg.BackoffMax)
				return
			}
			r.metrics.deadLettered.WithLabelValues(d.Function).Inc()
			log.ErrorContext(ctx, "router: dead-lettered", "err", err)
			_ = msg.Ack()
			return
		}
		delay := r.backoff(attempt)
		r.metrics.retried.WithLabelValues(d.Function).Inc()
		log.WarnContext(ctx, "router: delivery failed, retrying", "status", status, "err", err, "delay_ms", delay.Milliseconds())
		_ = msg.NakWithDelay(delay)
	}
}

// traced is ctx in the trace of d's event, which the lines logged about
// d carry.
func traced(ctx context.Context, d delivery) context.Context {
	var e events.Event
	if json.Unmarshal(d.Event, &e) != nil {
		return ctx
	}
	return events.TraceContext(ctx, e)
}

// waitOutBusy sends a delivery the function answered 429 again, after a
// growing pause, while the message is reported in progress: a function
// held at its limit (by load, or by callers that never finish their
// requests) delays its events instead of dead-lettering them. Only a
// function busy for a whole DeliveryTimeout turns it into a counted retry.
func (r *Router) waitOutBusy(ctx context.Context, d delivery, attempt int, out outcome, status int, err error, log *slog.Logger) (outcome, int, error) {
	start := time.Now()
	b := retrypkg.Backoff(r.cfg.BackoffBase, r.cfg.BackoffMax)
	for out == busy {
		r.metrics.busy.WithLabelValues(d.Function).Inc()
		if waited := time.Since(start); waited >= r.cfg.DeliveryTimeout {
			return retry, status, fmt.Errorf("busy for %s: %w", waited.Round(time.Second), err)
		}
		log.WarnContext(ctx, "router: function busy, waiting", "status", status)
		if !retrypkg.Wait(ctx, b) {
			return retry, status, ctx.Err()
		}
		out, status, err = r.deliver(ctx, d, attempt)
	}
	return out, status, err
}

// backoff is the wait before redelivery after attempt: segflow's retry
// schedule between BackoffBase and BackoffMax.
func (r *Router) backoff(attempt int) time.Duration {
	return retrypkg.Nth(r.cfg.BackoffBase, r.cfg.BackoffMax, attempt)
}

// deliver posts the event in binary mode to the function through the
// gateway. 2xx is delivered; 429 is busy; 5xx and transport errors are retried;
// other 4xx are the function refusing the event.
func (r *Router) deliver(ctx context.Context, d delivery, attempt int) (outcome, int, error) {
	var e events.Event
	if err := json.Unmarshal(d.Event, &e); err != nil {
		return reject, 0, fmt.Errorf("stored event: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, r.cfg.DeliveryTimeout)
	defer cancel()
	ctx, span := tracing.Tracer().Start(events.TraceContext(ctx, e), "deliver "+d.Function,
		trace.WithSpanKind(trace.SpanKindProducer),
		trace.WithAttributes(attribute.String("cloudevents.event_id", e.ID()), attribute.String("cloudevents.event_subject", e.Subject()),
			attribute.String("faas.invoked_name", d.Function), attribute.Int("segflow.attempt", attempt)))
	defer span.End()
	out, status, err := r.post(ctx, d, e, attempt)
	span.SetAttributes(attribute.Int("http.response.status_code", status))
	if err != nil {
		span.SetStatus(codes.Error, err.Error())
	}
	return out, status, err
}

func (r *Router) post(ctx context.Context, d delivery, e events.Event, attempt int) (outcome, int, error) {
	req, err := events.NewRequest(ctx, r.cfg.Gateway.URL+"/function/"+d.Function, e)
	if err != nil {
		return reject, 0, err
	}
	req.Header.Set("X-Segflow-Attempt", strconv.Itoa(attempt))
	resp, err := r.http.Do(req)
	if err != nil {
		if unreachable(err) {
			return handBack, 0, err
		}
		return retry, 0, err
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	if !e.Time().IsZero() {
		r.metrics.latency.WithLabelValues(d.Function).Observe(time.Since(e.Time()).Seconds())
	}
	switch {
	case resp.StatusCode/100 == 2:
		return delivered, resp.StatusCode, nil
	case resp.StatusCode == http.StatusTooManyRequests, resp.StatusCode == http.StatusServiceUnavailable:
		return busy, resp.StatusCode, fmt.Errorf("%d: %s", resp.StatusCode, body)
	case resp.StatusCode >= 500:
		return retry, resp.StatusCode, fmt.Errorf("%d: %s", resp.StatusCode, body)
	default:
		return reject, resp.StatusCode, fmt.Errorf("%d: %s", resp.StatusCode, body)
	}
}

var errNoDeadLetter = errors.New("dead letter not found")
