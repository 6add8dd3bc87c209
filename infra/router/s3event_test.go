package router

import (
	"testing"

	"github.com/segflow/segflow/shared/events"
)

// A record as MinIO's webhook target sends it.
const minioBody = `{"EventName":"s3:ObjectCreated:Put","Key":"media/uploads/my film.mp4","Records":[{"eventVersion":"2.0","eventSource":"minio:s3","awsRegion":"","eventTime":"2026-11-25T10:00:00.123Z","eventName":"s3:ObjectCreated:Put","userIdentity":{"principalId":"segflow"},"requestParameters":{"principalId":"segflow","region":"","sourceIPAddress":"127.0.0.1"},"responseElements":{"x-amz-id-2":"dd9025bab4ad464b049177c95eb6ebf374d3b3fd1af9251148b658df7ac2e3e8","x-amz-request-id":"1830A0E2E2C1A0F6"},"s3":{"s3SchemaVersion":"1.0","configurationId":"Config","bucket":{"name":"media","ownerIdentity":{"principalId":"segflow"},"arn":"arn:aws:s3:::media"},"object":{"key":"uploads%2Fmy+film.mp4","size":1024,"eTag":"0b5a","contentType":"video/mp4","userMetadata":{"X-Amz-Meta-Segflow-Producer":"split","content-type":"video/mp4"},"sequencer":"1830A0E2E2F7E0A4"}},"source":{"host":"127.0.0.1","port":"","userAgent":"MinIO (linux; amd64) minio-go/v7.4.1"}}]}`

// A record as S3 delivers it through SQS.
const sqsBody = `{"Records":[{"eventVersion":"2.1","eventSource":"aws:s3","awsRegion":"eu-west-1","eventTime":"2026-11-25T10:00:00.000Z","eventName":"ObjectCreated:CompleteMultipartUpload","userIdentity":{"principalId":"AWS:AIDA"},"s3":{"s3SchemaVersion":"1.0","configurationId":"segflow","bucket":{"name":"prod-media","arn":"arn:aws:s3:::prod-media"},"object":{"key":"assets/a1/source/00002.ts","size":5,"eTag":"e1","sequencer":"0062E99A88DC407460"}}}]}`

func TestParseNotification(t *testing.T) {
	tests := []struct {
		name, body           string
		wantErr              bool
		id, key, producer, t string
	}{
		{"minio webhook", minioBody, false, "media/uploads%2Fmy+film.mp4@195D710B87B", "uploads/my film.mp4", "split", events.TypeObjectCreated},
		{"s3 via sqs", sqsBody, false, "prod-media/assets/a1/source/00002.ts@0062E99A88DC407460", "assets/a1/source/00002.ts", "", events.TypeObjectCreated},
		{"not json", "{nope", true, "", "", "", ""},
		{"no records", `{"Records":[]}`, true, "", "", "", ""},
		{"record without key", `{"Records":[{"eventName":"s3:ObjectCreated:Put","s3":{"bucket":{"name":"b"},"object":{}}}]}`, true, "", "", "", ""},
		{"bad escape", `{"Records":[{"eventName":"s3:ObjectCreated:Put","s3":{"bucket":{"name":"b"},"object":{"key":"%zz"}}}]}`, false, "", "", "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n, err := ParseNotification([]byte(tc.body))
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v", err)
			}
			if err != nil {
				return
			}
			r := n.Records[0]
			e, err := r.CloudEvent()
			if tc.key == "" {
				if err == nil {
					t.Fatal("undecodable key accepted")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if e.ID() != tc.id || e.Subject() != tc.key || e.Type() != tc.t || e.Source() != r.S3.Bucket.Name || r.Producer() != tc.producer {
				t.Fatalf("event %v producer %q", e, r.Producer())
			}
			var back Record
			if err := e.DataAs(&back); err != nil || back.S3.Object.Sequencer != r.S3.Object.Sequencer {
				t.Fatalf("data does not carry the record: %v", err)
			}
		})
	}
	if n, err := ParseNotification([]byte(`{"Service":"Amazon S3","Event":"s3:TestEvent","Bucket":"b"}`)); err != nil || len(n.Records) != 0 {
		t.Fatalf("test event: %v", err)
	}
}
