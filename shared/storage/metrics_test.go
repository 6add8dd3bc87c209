package storage_test

import (
	"context"
	"strings"
	"testing"

	"github.com/segflow/segflow/shared/storage"
	"github.com/segflow/segflow/shared/testenv"
)

// MinIO answers its cluster metrics to the token ServerMetrics signs, and
// refuses one signed with another secret.
func TestServerMetrics(t *testing.T) {
	m := testenv.StartMinIO(t)
	body, err := m.Client.ServerMetrics(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(body), "minio_s3_requests_total") && !strings.Contains(string(body), "minio_cluster_") {
		t.Errorf("no MinIO metric in the answer: %.300s", body)
	}
	wrong := m.Options
	wrong.SecretKey += "x"
	c, err := storage.New(wrong)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.ServerMetrics(context.Background()); err == nil {
		t.Error("metrics read with a token signed by the wrong secret")
	}
}
