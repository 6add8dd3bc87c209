package router_test

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/segflow/segflow/infra/router"
)

// sqsQueue speaks the SQS JSON protocol (AmazonSQS.* targets) for one
// queue, with receipt handles and a visibility timeout, so that the real
// aws-sdk-go-v2 client runs against it. No SQS server is installable on
// this machine (goaws and sqslite only speak the query protocol, which
// the current SDK no longer sends).
type sqsQueue struct {
	mu       sync.Mutex
	seq      int
	messages []*sqsMessage
	deleted  int
}

type sqsMessage struct {
	id, body, receipt string
	visibleAt         time.Time
}

func md5hex(s string) string { h := md5.Sum([]byte(s)); return hex.EncodeToString(h[:]) }

func (q *sqsQueue) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	action := strings.TrimPrefix(r.Header.Get("X-Amz-Target"), "AmazonSQS.")
	if !strings.HasPrefix(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256 ") {
		http.Error(w, `{"__type":"com.amazonaws.sqs#MissingAuthenticationToken"}`, 400)
		return
	}
	var in struct {
		QueueUrl, MessageBody string
		MaxNumberOfMessages   int
		WaitTimeSeconds       int
		Entries               []struct{ Id, ReceiptHandle string }
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		http.Error(w, err.Error(), 400)
		return
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.0")
	enc := json.NewEncoder(w)
	switch action {
	case "SendMessage":
		q.mu.Lock()
		q.seq++
		m := &sqsMessage{id: fmt.Sprintf("m-%d", q.seq), body: in.MessageBody}
		q.messages = append(q.messages, m)
		q.mu.Unlock()
		_ = enc.Encode(map[string]string{"MessageId": m.id, "MD5OfMessageBody": md5hex(m.body)})
	case "ReceiveMessage":
		deadline := time.Now().Add(time.Duration(in.WaitTimeSeconds) * time.Second)
		for {
			var out []map[string]string
			q.mu.Lock()
			now := time.Now()
			for _, m := range q.messages {
				if len(out) < max(in.MaxNumberOfMessages, 1) && !now.Before(m.visibleAt) {
					q.seq++
					m.receipt = fmt.Sprintf("r-%d", q.seq)
					m.visibleAt = now.Add(30 * time.Second)
					out = append(out, map[string]string{"MessageId": m.id, "ReceiptHandle": m.receipt, "MD5OfBody": md5hex(m.body), "Body": m.body})
				}
			}
			q.mu.Unlock()
			if len(out) > 0 || !time.Now().Before(deadline) || r.Context().Err() != nil {
				_ = enc.Encode(map[string]any{"Messages": out})
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	case "DeleteMessageBatch":
		var ok []map[string]string
		q.mu.Lock()
		for _, e := range in.Entries {
			for i, m := range q.messages {
				if m.receipt == e.ReceiptHandle {
					q.messages = append(q.messages[:i], q.messages[i+1:]...)
					q.deleted++
					break
				}
			}
			ok = append(ok, map[string]string{"Id": e.Id})
		}
		q.mu.Unlock()
		_ = enc.Encode(map[string]any{"Successful": ok, "Failed": []any{}})
	default:
		w.WriteHeader(400)
		_ = enc.Encode(map[string]string{"__type": "com.amazonaws.sqs#InvalidAction", "message": action})
	}
}

func (q *sqsQueue) counts() (left, deleted int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.messages), q.deleted
}

// s3Body is an S3 notification as AWS sends it to SQS.
func s3Body(bucket, key, seq string) string {
	return fmt.Sprintf(`{"Records":[{"eventVersion":"2.1","eventSource":"aws:s3","awsRegion":"eu-west-1",
"eventTime":"2026-11-25T10:00:00.000Z","eventName":"ObjectCreated:Put","userIdentity":{"principalId":"AWS:X"},
"requestParameters":{"sourceIPAddress":"10.0.0.1"},"responseElements":{"x-amz-request-id":"R","x-amz-id-2":"I"},
"s3":{"s3SchemaVersion":"1.0","configurationId":"segflow","bucket":{"name":%q,"ownerIdentity":{"principalId":"A"},"arn":"arn:aws:s3:::%s"},
"object":{"key":%q,"size":1024,"eTag":"d41d8cd98f00b204e9800998ecf8427e","sequencer":%q}}}]}`, bucket, bucket, key, seq)
}

func TestSQSSource(t *testing.T) {
	s := newStack(t)
	s.deployNew("onupload", "upload", nil, nil)
	q := &sqsQueue{}
	srv := httptest.NewServer(q)
	defer srv.Close()
	client := sqs.New(sqs.Options{Region: "eu-west-1", BaseEndpoint: aws.String(srv.URL),
		Credentials: credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", "")})
	queueURL := srv.URL + "/123456789012/segflow-events"
	// A router that polls the queue from Open until Close.
	s.stopRouter()
	s.sqs = &router.SQSSource{Client: client, QueueURL: queueURL, Wait: time.Second}
	s.startRouter()

	send := func(body string) {
		t.Helper()
		if _, err := client.SendMessage(context.Background(), &sqs.SendMessageInput{QueueUrl: aws.String(queueURL), MessageBody: aws.String(body)}); err != nil {
			t.Fatal(err)
		}
	}
	snsWrapped, _ := json.Marshal(map[string]string{"Type": "Notification", "TopicArn": "arn:aws:sns:eu-west-1:1:s3",
		"Message": s3Body("media", "uploads/via+sns.mp4", "0002")})
	for _, body := range []string{
		s3Body("media", "uploads/film+one.mp4", "0001"), // S3 encodes a space as '+'
		string(snsWrapped),
		s3Body("media", "uploads/film+one.mp4", "0001"),      // S3 sent it twice: delivered once
		s3Body("media", "assets/x/thumbs/00000.jpg", "0003"), // nobody subscribes
		`{"Service":"Amazon S3","Event":"s3:TestEvent","Time":"2026-11-25T10:00:00Z","Bucket":"media"}`,
		`not json at all`,
	} {
		send(body)
	}
	s.waitFor("onupload", 2, 20*time.Second)
	deadline := time.Now().Add(10 * time.Second)
	for {
		left, deleted := q.counts()
		if left == 0 && deleted == 6 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("queue: %d left, %d deleted; want every message deleted", left, deleted)
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond) // room for a duplicate to show up
	got := s.received("onupload")
	if subj := subjects(got); len(got) != 2 || subj[0] != "uploads/film one.mp4" || subj[1] != "uploads/via sns.mp4" {
		t.Fatalf("onupload received %+v", got)
	}
	for _, r := range got {
		if r.Source != "media" || r.Type == "" || !strings.HasPrefix(r.ID, "media/uploads/") {
			t.Fatalf("event %+v", r)
		}
	}
}
