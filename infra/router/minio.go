package router

import (
	"context"
	"fmt"
	"strings"

	"github.com/minio/minio-go/v7/pkg/notification"

	"github.com/segflow/segflow/shared/layout"
	"github.com/segflow/segflow/shared/storage"
)

// MinIOTarget describes how a MinIO server sends bucket events to the
// router: a webhook target, which posts each event as soon as its write
// is done, and, with NATSAddress, a NATS JetStream target that MinIO
// publishes the same events to, the journal (journal.go). What the
// webhook drops while the router is down or refusing, the router's
// catch-up reads back from the journal, or finds in the bucket when the
// journal cannot vouch for the window (catchup.go).
type MinIOTarget struct {
	// ID names the targets in MinIO's configuration (letters and digits).
	ID string
	// Endpoint is the router's webhook URL.
	Endpoint string
	// Token is sent as "Authorization: Bearer <token>".
	Token string
	// NATSAddress is the router's queue as MinIO reaches it (host:port;
	// "" for no journal), with the NATS user MinIO signs in as.
	NATSAddress, NATSUser, NATSPassword string
}

// Env is the server environment that enables the targets.
func (t MinIOTarget) Env() []string {
	id := strings.ToUpper(t.ID)
	env := []string{
		"MINIO_NOTIFY_WEBHOOK_ENABLE_" + id + "=on",
		"MINIO_NOTIFY_WEBHOOK_ENDPOINT_" + id + "=" + t.Endpoint,
		"MINIO_NOTIFY_WEBHOOK_AUTH_TOKEN_" + id + "=" + t.Token,
	}
	if t.NATSAddress != "" {
		env = append(env,
			"MINIO_NOTIFY_NATS_ENABLE_"+id+"=on",
			"MINIO_NOTIFY_NATS_ADDRESS_"+id+"="+t.NATSAddress,
			"MINIO_NOTIFY_NATS_SUBJECT_"+id+"="+journalSubject,
			"MINIO_NOTIFY_NATS_USERNAME_"+id+"="+t.NATSUser,
			"MINIO_NOTIFY_NATS_PASSWORD_"+id+"="+t.NATSPassword,
			// JetStream: each publish is acknowledged by the stream, and
			// a failed one counts in MinIO's failed events.
			"MINIO_NOTIFY_NATS_JETSTREAM_"+id+"=on",
		)
	}
	return env
}

// ARN is the webhook target's ARN in bucket notification configurations.
func (t MinIOTarget) ARN() notification.Arn {
	return notification.NewArn("minio", "sqs", "", strings.ToUpper(t.ID), "webhook")
}

// JournalARN is the NATS target's ARN.
func (t MinIOTarget) JournalARN() notification.Arn {
	return notification.NewArn("minio", "sqs", "", strings.ToUpper(t.ID), journalARNResource)
}

// Subscribe sends the bucket's object-created events to the targets,
// replacing any earlier segflow subscription: only for keys that raise a
// topic (layout.EventFilters), so the status, manifest and playlist
// writes of every stage cost MinIO and the router nothing.
func (t MinIOTarget) Subscribe(ctx context.Context, c *storage.Client, bucket string) error {
	arns := []notification.Arn{t.ARN()}
	if t.NATSAddress != "" {
		arns = append(arns, t.JournalARN())
	}
	var nc notification.Configuration
	for _, arn := range arns {
		for _, f := range layout.EventFilters() {
			cfg := notification.NewConfig(arn)
			cfg.AddEvents(notification.ObjectCreatedAll)
			cfg.AddFilterPrefix(f.Prefix)
			if f.Suffix != "" {
				cfg.AddFilterSuffix(f.Suffix)
			}
			nc.AddQueue(cfg)
		}
	}
	if err := c.Minio().SetBucketNotification(ctx, bucket, nc); err != nil {
		return fmt.Errorf("subscribe %s to %s: %w", bucket, t.Endpoint, err)
	}
	return nil
}
