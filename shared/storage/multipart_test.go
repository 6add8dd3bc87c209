package storage_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/segflow/segflow/shared/storage"
	"github.com/segflow/segflow/shared/testenv"
)

// TestPresignedMultipart uploads the way the console's browser does:
// parts PUT to presigned URLs by a client without credentials, from
// another origin, one part resumed after the "reload", then completed from
// the server's own part list.
func TestPresignedMultipart(t *testing.T) {
	m := testenv.StartMinIO(t)
	ctx := context.Background()
	c := m.Client
	bucket := m.Bucket(t, "media")
	key := "uploads/big clip.mp4"
	body := make([]byte, 5<<20+12345)
	for i := range body {
		body[i] = byte(i * 7)
	}
	parts := [][]byte{body[:5<<20], body[5<<20:]}

	id, err := c.NewMultipart(ctx, bucket, key, storageOpts("video/mp4"))
	if err != nil {
		t.Fatal(err)
	}
	put := func(n int) {
		t.Helper()
		u, err := c.PresignPart(ctx, bucket, key, id, n, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		// A browser sends a preflight first: MinIO must allow the page's origin.
		pre, _ := http.NewRequest(http.MethodOptions, u.String(), nil)
		pre.Header.Set("Origin", "http://127.0.0.1:8080")
		pre.Header.Set("Access-Control-Request-Method", "PUT")
		resp, err := http.DefaultClient.Do(pre)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.Header.Get("Access-Control-Allow-Origin") == "" {
			t.Fatalf("preflight: %d, no Access-Control-Allow-Origin", resp.StatusCode)
		}
		req, _ := http.NewRequest(http.MethodPut, u.String(), bytes.NewReader(parts[n-1]))
		req.Header.Set("Origin", "http://127.0.0.1:8080")
		resp, err = http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Header.Get("Access-Control-Allow-Origin") == "" {
			t.Fatalf("part %d: %d %v", n, resp.StatusCode, resp.Header)
		}
	}
	put(1)
	got, err := c.Parts(ctx, bucket, key, id)
	if err != nil || len(got) != 1 || got[0].Number != 1 || got[0].Size != 5<<20 {
		t.Fatalf("after part 1: %+v %v", got, err)
	}
	if _, err := c.PresignPart(ctx, bucket, key, id, 0, time.Minute); err == nil {
		t.Fatal("part 0 presigned")
	}
	put(2)
	if _, err := c.CompleteMultipart(ctx, bucket, key, id, int64(len(body))+1); !errors.Is(err, storage.ErrSizeMismatch) {
		t.Fatalf("completed with a size the parts do not add up to: %v", err)
	}
	etag, err := c.CompleteMultipart(ctx, bucket, key, id, int64(len(body)))
	if err != nil {
		t.Fatal(err)
	}
	info, err := c.Stat(ctx, bucket, key)
	if err != nil || info.ETag != etag || info.Size != int64(len(body)) || info.ContentType != "video/mp4" {
		t.Fatalf("stat %+v (etag %s) %v", info, etag, err)
	}
	back, err := c.GetBytes(ctx, bucket, key)
	if err != nil || !bytes.Equal(back, body) {
		t.Fatalf("read back %d bytes, %v", len(back), err)
	}
	// Nothing uploaded: completing fails with a reason, abort cleans up.
	id2, err := c.NewMultipart(ctx, bucket, "uploads/empty.mp4", storageOpts(""))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.CompleteMultipart(ctx, bucket, "uploads/empty.mp4", id2, 0); err == nil {
		t.Fatal("completed an upload with no parts")
	}
	if err := c.AbortMultipart(ctx, bucket, "uploads/empty.mp4", id2); err != nil {
		t.Fatal(err)
	}
}

func storageOpts(ctype string) storage.PutOptions { return storage.PutOptions{ContentType: ctype} }
