package router

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	retrypkg "github.com/segflow/segflow/shared/retry"
)

// SQSSource is where AWS S3 sends a bucket's notifications on AWS: an SQS
// queue (S3 -> SQS directly, or S3 -> SNS -> SQS).
type SQSSource struct {
	Client   *sqs.Client
	QueueURL string
	// Wait is the long-poll time of one receive (default 20 s, SQS's most).
	Wait time.Duration
}

// pollSQS ingests the queue's S3 notifications through the same conversion
// and queueing as the webhook until ctx ends. A message is deleted once its
// deliveries are in JetStream; one that could not be queued is left to
// come back after the queue's visibility timeout; one that can never be
// read is logged, counted as malformed and deleted, since only the
// failures that may pass later belong in the queue's redrive policy.
func (r *Router) pollSQS(ctx context.Context, src SQSSource) {
	wait := src.Wait
	if wait <= 0 || wait > 20*time.Second {
		wait = 20 * time.Second
	}
	log := r.log.With("queue", src.QueueURL)
	log.Info("router: polling sqs")
	pause := retrypkg.Backoff(time.Second, 30*time.Second)
	for ctx.Err() == nil {
		if !r.Ready() {
			sleep(ctx, 100*time.Millisecond)
			continue
		}
		out, err := src.Client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
			QueueUrl: aws.String(src.QueueURL), MaxNumberOfMessages: 10, WaitTimeSeconds: int32(wait / time.Second),
		})
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			wait := pause.NextBackOff()
			log.Warn("router: sqs receive", "err", err, "retry_in_ms", wait.Milliseconds())
			sleep(ctx, wait)
			continue
		}
		pause.Reset()
		var done []types.DeleteMessageBatchRequestEntry
		for i, m := range out.Messages {
			body := aws.ToString(m.Body)
			n, err := parseSQSBody([]byte(body))
			if err != nil {
				r.metrics.malformed.Inc()
				log.Error("router: malformed sqs message dropped", "message_id", aws.ToString(m.MessageId), "err", err, "bytes", len(body))
			} else if _, err := r.Ingest(ctx, n); err != nil {
				log.Error("router: sqs message not queued; it comes back after the visibility timeout",
					"message_id", aws.ToString(m.MessageId), "err", err)
				continue
			}
			done = append(done, types.DeleteMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), ReceiptHandle: m.ReceiptHandle})
		}
		if len(done) == 0 {
			continue
		}
		// The deliveries are queued by now: a failed delete only means the
		// message comes again, and its event id deduplicates it.
		res, err := src.Client.DeleteMessageBatch(context.WithoutCancel(ctx), &sqs.DeleteMessageBatchInput{
			QueueUrl: aws.String(src.QueueURL), Entries: done,
		})
		if err != nil {
			log.Warn("router: sqs delete", "err", err)
			continue
		}
		for _, f := range res.Failed {
			log.Warn("router: sqs delete", "entry", aws.ToString(f.Id), "code", aws.ToString(f.Code), "err", aws.ToString(f.Message))
		}
	}
	log.Info("router: sqs polling stopped")
}

// parseSQSBody reads an S3 notification from an SQS message body, also
// when SNS wrapped it ({"Type":"Notification","Message":"<the JSON>"}).
func parseSQSBody(body []byte) (Notification, error) {
	var sns struct {
		Type    string `json:"Type"`
		Message string `json:"Message"`
	}
	if json.Unmarshal(body, &sns) == nil && sns.Type == "Notification" && sns.Message != "" {
		body = []byte(sns.Message)
	}
	n, err := ParseNotification(body)
	if err != nil {
		return n, fmt.Errorf("sqs message: %w", err)
	}
	return n, nil
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}
