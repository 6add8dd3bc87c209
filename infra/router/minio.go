package router

import (
	"context"
	"fmt"
	"strings"

	"github.com/minio/minio-go/v7/pkg/notification"

	"github.com/segflow/segflow/shared/storage"
)

// MinIOTarget describes the webhook notification target a MinIO server
// sends bucket events through.
type MinIOTarget struct {
	// ID names the target in MinIO's configuration (letters and digits).
	ID string
	// Endpoint is the router's webhook URL.
	Endpoint string
	// Token is sent as "Authorization: Bearer <token>".
	Token string
	// QueueDir makes MinIO keep undelivered events on disk and retry them,
	// so events raised while the router is down are not lost.
	QueueDir string
}

// Env is the server environment that enables the target.
func (t MinIOTarget) Env() []string {
	id := strings.ToUpper(t.ID)
	env := []string{
		"MINIO_NOTIFY_WEBHOOK_ENABLE_" + id + "=on",
		"MINIO_NOTIFY_WEBHOOK_ENDPOINT_" + id + "=" + t.Endpoint,
		"MINIO_NOTIFY_WEBHOOK_AUTH_TOKEN_" + id + "=" + t.Token,
	}
	if t.QueueDir != "" {
		env = append(env, "MINIO_NOTIFY_WEBHOOK_QUEUE_DIR_"+id+"="+t.QueueDir)
	}
	return env
}

// ARN is the target's ARN in bucket notification configurations.
func (t MinIOTarget) ARN() notification.Arn {
	return notification.NewArn("minio", "sqs", "", strings.ToUpper(t.ID), "webhook")
}

// Subscribe sends the bucket's object-created events to the target,
// replacing any earlier segflow subscription.
func (t MinIOTarget) Subscribe(ctx context.Context, c *storage.Client, bucket string) error {
	cfg := notification.NewConfig(t.ARN())
	cfg.AddEvents(notification.ObjectCreatedAll)
	var nc notification.Configuration
	nc.AddQueue(cfg)
	if err := c.Minio().SetBucketNotification(ctx, bucket, nc); err != nil {
		return fmt.Errorf("subscribe %s to %s: %w", bucket, t.Endpoint, err)
	}
	return nil
}
