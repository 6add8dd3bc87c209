package storage_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/segflow/segflow/shared/storage"
	"github.com/segflow/segflow/shared/testenv"
)

func TestStorageAgainstMinIO(t *testing.T) {
	m := testenv.StartMinIO(t)
	ctx := context.Background()
	c := m.Client
	bucket := m.Bucket(t, "media")
	// A second EnsureBucket is a no-op, not an error.
	if err := c.EnsureBucket(ctx, bucket); err != nil {
		t.Fatalf("EnsureBucket twice: %v", err)
	}

	body := []byte("segment bytes")
	if err := c.PutBytes(ctx, bucket, "assets/a1/source/0.ts", body, storage.PutOptions{
		ContentType: "video/mp2t", Metadata: map[string]string{"segment-index": "0", "duration": "4.000"},
	}); err != nil {
		t.Fatal(err)
	}
	if err := c.PutBytes(ctx, bucket, "assets/a1/source/1.ts", []byte("x"), storage.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := c.PutBytes(ctx, bucket, "uploads/other.mp4", []byte("y"), storage.PutOptions{}); err != nil {
		t.Fatal(err)
	}

	t.Run("stat has metadata", func(t *testing.T) {
		info, err := c.Stat(ctx, bucket, "assets/a1/source/0.ts")
		if err != nil {
			t.Fatal(err)
		}
		if info.Size != int64(len(body)) || info.ContentType != "video/mp2t" {
			t.Fatalf("info = %+v", info)
		}
		if info.Metadata["Segment-Index"] != "0" || info.Metadata["Duration"] != "4.000" {
			t.Fatalf("metadata = %v", info.Metadata)
		}
	})
	t.Run("get round trip", func(t *testing.T) {
		got, err := c.GetBytes(ctx, bucket, "assets/a1/source/0.ts")
		if err != nil || !bytes.Equal(got, body) {
			t.Fatalf("GetBytes = %q, %v", got, err)
		}
		f := filepath.Join(t.TempDir(), "seg.ts")
		info, err := c.GetFile(ctx, bucket, "assets/a1/source/0.ts", f)
		if err != nil {
			t.Fatal(err)
		}
		if b, _ := os.ReadFile(f); !bytes.Equal(b, body) {
			t.Fatalf("GetFile wrote %q", b)
		}
		// The info comes from the GET's own headers, as Stat's does.
		st, _ := c.Stat(ctx, bucket, "assets/a1/source/0.ts")
		if info.Size != int64(len(body)) || info.ETag == "" || info.ETag != st.ETag || info.ContentType != "video/mp2t" ||
			info.Meta("segment-index") != "0" || info.Meta("Duration") != "4.000" {
			t.Fatalf("GetFile info = %+v, stat %+v", info, st)
		}
	})
	t.Run("missing is ErrNotFound", func(t *testing.T) {
		_, err := c.Stat(ctx, bucket, "assets/none")
		if !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("Stat missing = %v", err)
		}
		_, err = c.GetBytes(ctx, bucket, "assets/none")
		if !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("Get missing = %v", err)
		}
	})
	t.Run("list by prefix", func(t *testing.T) {
		got, err := c.List(ctx, bucket, "assets/a1/", storage.ListOptions{Recursive: true})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 || got[0].Key != "assets/a1/source/0.ts" || got[1].Key != "assets/a1/source/1.ts" {
			t.Fatalf("List = %+v", got)
		}
		withMeta, err := c.List(ctx, bucket, "assets/a1/", storage.ListOptions{Recursive: true, WithMetadata: true})
		if err != nil {
			t.Fatal(err)
		}
		if withMeta[0].Meta("segment-index") != "0" || withMeta[0].Meta("Duration") != "4.000" {
			t.Fatalf("listed metadata = %v", withMeta[0].Metadata)
		}
	})
	t.Run("presigned get and put need no credentials", func(t *testing.T) {
		u, err := c.Presign(ctx, http.MethodPut, bucket, "uploads/presigned.bin", time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		req, _ := http.NewRequest(http.MethodPut, u.String(), bytes.NewReader([]byte("hello")))
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("presigned PUT: %v %v", err, resp)
		}
		resp.Body.Close()
		u, err = c.Presign(ctx, http.MethodGet, bucket, "uploads/presigned.bin", time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		resp, err = http.Get(u.String())
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) != "hello" {
			t.Fatalf("presigned GET = %q", b)
		}
	})
	t.Run("public read covers only the prefix", func(t *testing.T) {
		if err := c.SetPublicRead(ctx, bucket, "assets/", "assets/private_"); err != nil {
			t.Fatal(err)
		}
		if err := c.PutBytes(ctx, bucket, "assets/private_a2/720p.m3u8", []byte("#EXTM3U"), storage.PutOptions{}); err != nil {
			t.Fatal(err)
		}
		for key, want := range map[string]int{"assets/a1/source/0.ts": 200, "uploads/other.mp4": 403, "assets/private_a2/720p.m3u8": 403} {
			resp, err := http.Get("http://" + m.Options.Endpoint + "/" + bucket + "/" + key)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != want {
				t.Errorf("anonymous GET %s = %d, want %d", key, resp.StatusCode, want)
			}
		}
	})
	t.Run("remove", func(t *testing.T) {
		if err := c.Remove(ctx, bucket, "uploads/other.mp4"); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Stat(ctx, bucket, "uploads/other.mp4"); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("after remove: %v", err)
		}
	})
	t.Run("hostile keys are refused before any request", func(t *testing.T) {
		for _, k := range []string{"../etc/passwd", "assets/../../x", "/abs", "a\\b", "", "a/./b", "bad\x00"} {
			if err := c.PutBytes(ctx, bucket, k, []byte("x"), storage.PutOptions{}); err == nil {
				t.Errorf("PutBytes(%q) accepted", k)
			}
		}
	})
	t.Run("wrong credentials fail clearly", func(t *testing.T) {
		bad := m.Options
		bad.SecretKey = "wrong-secret"
		bc, err := storage.New(bad)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := bc.Stat(ctx, bucket, "assets/a1/source/0.ts"); err == nil {
			t.Fatal("stat with a wrong secret succeeded")
		}
	})
}

func TestValidKey(t *testing.T) {
	tests := []struct {
		key string
		ok  bool
	}{
		{"uploads/film.mp4", true},
		{"assets/id/source/00001.ts", true},
		{"uploads/with space.mov", true},
		{"../x", false},
		{"a/../b", false},
		{"a//b", false},
		{"/a", false},
		{"", false},
	}
	for _, tc := range tests {
		if err := storage.ValidKey(tc.key); (err == nil) != tc.ok {
			t.Errorf("ValidKey(%q) = %v, want ok=%v", tc.key, err, tc.ok)
		}
	}
}

// TestUpdateConcurrent has many writers append to one JSON list through
// Update at once; optimistic locking must keep every append.
func TestUpdateConcurrent(t *testing.T) {
	m := testenv.StartMinIO(t)
	ctx := context.Background()
	bucket := m.Bucket(t, "media")
	const writers = 12
	errs := make(chan error, writers)
	for i := 0; i < writers; i++ {
		go func(i int) {
			errs <- m.Client.Update(ctx, bucket, "assets/a/status.json", storage.PutOptions{ContentType: "application/json"},
				func(old []byte) ([]byte, error) {
					var list []int
					if old != nil {
						if err := json.Unmarshal(old, &list); err != nil {
							return nil, err
						}
					}
					return json.Marshal(append(list, i))
				})
		}(i)
	}
	for i := 0; i < writers; i++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	b, err := m.Client.GetBytes(ctx, bucket, "assets/a/status.json")
	if err != nil {
		t.Fatal(err)
	}
	var list []int
	json.Unmarshal(b, &list)
	sort.Ints(list)
	if len(list) != writers {
		t.Fatalf("kept %d of %d updates: %v", len(list), writers, list)
	}
	// A change that returns nil writes nothing.
	info, _ := m.Client.Stat(ctx, bucket, "assets/a/status.json")
	if err := m.Client.Update(ctx, bucket, "assets/a/status.json", storage.PutOptions{}, func([]byte) ([]byte, error) { return nil, nil }); err != nil {
		t.Fatal(err)
	}
	if after, _ := m.Client.Stat(ctx, bucket, "assets/a/status.json"); after.ETag != info.ETag {
		t.Fatal("a no-op update rewrote the object")
	}
	// A stale ETag loses.
	err = m.Client.PutBytes(ctx, bucket, "assets/a/status.json", []byte("[]"), storage.PutOptions{IfMatch: "0123"})
	if !storage.IsPreconditionFailed(err) {
		t.Fatalf("stale If-Match: %v", err)
	}
}
