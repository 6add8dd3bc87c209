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
// router: through two webhook targets that carry the same events.
//
// MinIO's webhook target is either fast or durable, not both: without a
// queue folder it posts each event at once but drops it when the router is
// down; with one it keeps events on disk but only sends what it holds on a
// 3-second scan. So segflow configures both, "<ID>" direct and "<ID>Q"
// queued, and the router keeps the first copy of each event id and drops
// the second (JetStream's duplicate window): events arrive in milliseconds
// while the router is up, and none are lost while it is down.
type MinIOTarget struct {
	// ID names the targets in MinIO's configuration (letters and digits).
	ID string
	// Endpoint is the router's webhook URL.
	Endpoint string
	// Token is sent as "Authorization: Bearer <token>".
	Token string
	// QueueDir is where the durable target keeps undelivered events; empty
	// configures the direct target only.
	QueueDir string
}

func (t MinIOTarget) ids() []string {
	id := strings.ToUpper(t.ID)
	if t.QueueDir == "" {
		return []string{id}
	}
	return []string{id, id + "Q"}
}

// Env is the server environment that enables the targets.
func (t MinIOTarget) Env() []string {
	var env []string
	for i, id := range t.ids() {
		env = append(env,
			"MINIO_NOTIFY_WEBHOOK_ENABLE_"+id+"=on",
			"MINIO_NOTIFY_WEBHOOK_ENDPOINT_"+id+"="+t.Endpoint,
			"MINIO_NOTIFY_WEBHOOK_AUTH_TOKEN_"+id+"="+t.Token,
		)
		if i == 1 {
			env = append(env, "MINIO_NOTIFY_WEBHOOK_QUEUE_DIR_"+id+"="+t.QueueDir)
		}
	}
	return env
}

// ARNs are the targets' ARNs in bucket notification configurations.
func (t MinIOTarget) ARNs() []notification.Arn {
	var out []notification.Arn
	for _, id := range t.ids() {
		out = append(out, notification.NewArn("minio", "sqs", "", id, "webhook"))
	}
	return out
}

// Subscribe sends the bucket's object-created events to the targets,
// replacing any earlier segflow subscription: only for keys that raise a
// topic (layout.EventFilters), so the status, manifest and playlist
// writes of every stage cost MinIO and the router nothing.
func (t MinIOTarget) Subscribe(ctx context.Context, c *storage.Client, bucket string) error {
	var nc notification.Configuration
	for _, arn := range t.ARNs() {
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
