package router

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/segflow/segflow/shared/events"
	"github.com/segflow/segflow/shared/layout"
)

// Notification is the body S3 (through SQS) and MinIO (through its webhook
// target) send for bucket events: a list of records. MinIO adds EventName
// and Key at the top level; they are not needed.
type Notification struct {
	EventName string   `json:"EventName,omitempty"`
	Key       string   `json:"Key,omitempty"`
	Records   []Record `json:"Records"`
	// Event is set on S3's test message (s3:TestEvent) sent when a
	// notification is first configured.
	Event string `json:"Event,omitempty"`
}

// Record is one S3 event record (event message structure version 2.x).
type Record struct {
	EventVersion string    `json:"eventVersion"`
	EventSource  string    `json:"eventSource"`
	AWSRegion    string    `json:"awsRegion"`
	EventTime    time.Time `json:"eventTime"`
	EventName    string    `json:"eventName"`
	S3           struct {
		Bucket struct {
			Name string `json:"name"`
			ARN  string `json:"arn,omitempty"`
		} `json:"bucket"`
		Object struct {
			Key          string            `json:"key"`
			Size         int64             `json:"size,omitempty"`
			ETag         string            `json:"eTag,omitempty"`
			ContentType  string            `json:"contentType,omitempty"`
			UserMetadata map[string]string `json:"userMetadata,omitempty"`
			VersionID    string            `json:"versionId,omitempty"`
			Sequencer    string            `json:"sequencer"`
		} `json:"object"`
	} `json:"s3"`
}

// ParseNotification decodes a notification body. A body with no records
// and no test event is malformed.
func ParseNotification(body []byte) (Notification, error) {
	var n Notification
	if err := json.Unmarshal(body, &n); err != nil {
		return n, fmt.Errorf("s3 notification: %w", err)
	}
	if len(n.Records) == 0 && n.Event != "s3:TestEvent" {
		return n, fmt.Errorf("s3 notification: no records")
	}
	for i, r := range n.Records {
		if r.S3.Bucket.Name == "" || r.S3.Object.Key == "" || r.EventName == "" {
			return n, fmt.Errorf("s3 notification: record %d lacks bucket, key or event name", i)
		}
	}
	return n, nil
}

// Key is the record's object key, URL-decoded as S3 encodes it ('+' is a
// space in AWS's encoding; MinIO uses %20, which decodes the same).
func (r Record) Key() (string, error) {
	k, err := url.QueryUnescape(r.S3.Object.Key)
	if err != nil {
		return "", fmt.Errorf("record key %q: %w", r.S3.Object.Key, err)
	}
	return k, nil
}

// minioEventSource is MinIO's eventSource; S3's is "aws:s3".
const minioEventSource = "minio:s3"

// ID identifies the event: the same write notified twice has the same id,
// two writes of one key differ by their sequencer. MinIO's sequencer is
// the object's modification time in hex nanoseconds; the id keeps it to
// the millisecond, the precision of a listing's LastModified, so a write
// the catch-up finds in a listing has the id its webhook event has.
func (r Record) ID() string {
	seq := r.S3.Object.Sequencer
	switch {
	case seq == "":
		seq = r.S3.Object.ETag + "-" + r.EventTime.UTC().Format(time.RFC3339Nano)
	case r.EventSource == minioEventSource:
		if ns, err := strconv.ParseInt(seq, 16, 64); err == nil {
			seq = fmt.Sprintf("%X", ns/int64(time.Millisecond))
		}
	}
	return r.S3.Bucket.Name + "/" + r.S3.Object.Key + "@" + seq
}

// Created says whether the record is an object-created event.
func (r Record) Created() bool { return strings.Contains(r.EventName, "ObjectCreated:") }

// Producer is the function that wrote the object, from its user metadata.
func (r Record) Producer() string { return r.Meta(layout.ProducerMeta) }

// Meta is one user-metadata value of the object (name case-insensitive,
// with or without x-amz-meta-).
func (r Record) Meta(name string) string {
	name = strings.ToLower(name)
	for k, v := range r.S3.Object.UserMetadata {
		if strings.TrimPrefix(strings.ToLower(k), "x-amz-meta-") == name {
			return v
		}
	}
	return ""
}

// CloudEvent converts the record: id from the record, source the bucket,
// subject the key, a type per event kind, data the record itself.
func (r Record) CloudEvent() (events.Event, error) {
	key, err := r.Key()
	if err != nil {
		return events.Event{}, err
	}
	typ := events.TypeObjectCreated
	if !r.Created() {
		typ = events.TypeObjectRemoved
	}
	e, err := events.New(r.ID(), typ, r.S3.Bucket.Name, key, r)
	if err != nil {
		return e, err
	}
	if !r.EventTime.IsZero() {
		e.SetTime(r.EventTime)
	}
	return e, nil
}
