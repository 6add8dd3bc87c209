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
// router: one webhook target, which posts each event as soon as its write
// is done. What it drops while the router is down or refusing, the
// router's catch-up finds in the bucket (catchup.go).
type MinIOTarget struct {
	// ID names the target in MinIO's configuration (letters and digits).
	ID string
	// Endpoint is the router's webhook URL.
	Endpoint string
	// Token is sent as "Authorization: Bearer <token>".
	Token string
}

// Env is the server environment that enables the target.
func (t MinIOTarget) Env() []string {
	id := strings.ToUpper(t.ID)
	return []string{
		"MINIO_NOTIFY_WEBHOOK_ENABLE_" + id + "=on",
		"MINIO_NOTIFY_WEBHOOK_ENDPOINT_" + id + "=" + t.Endpoint,
		"MINIO_NOTIFY_WEBHOOK_AUTH_TOKEN_" + id + "=" + t.Token,
	}
}

// ARN is the target's ARN in bucket notification configurations.
func (t MinIOTarget) ARN() notification.Arn {
	return notification.NewArn("minio", "sqs", "", strings.ToUpper(t.ID), "webhook")
}

// Subscribe sends the bucket's object-created events to the targets,
// replacing any earlier segflow subscription: only for keys that raise a
// topic (layout.EventFilters), so the status, manifest and playlist
// writes of every stage cost MinIO and the router nothing.
func (t MinIOTarget) Subscribe(ctx context.Context, c *storage.Client, bucket string) error {
	var nc notification.Configuration
	for _, f := range layout.EventFilters() {
		cfg := notification.NewConfig(t.ARN())
		cfg.AddEvents(notification.ObjectCreatedAll)
		cfg.AddFilterPrefix(f.Prefix)
		if f.Suffix != "" {
			cfg.AddFilterSuffix(f.Suffix)
		}
		nc.AddQueue(cfg)
	}
	if err := c.Minio().SetBucketNotification(ctx, bucket, nc); err != nil {
		return fmt.Errorf("subscribe %s to %s: %w", bucket, t.Endpoint, err)
	}
	return nil
}
