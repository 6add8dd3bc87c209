package s3iam_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/segflow/segflow/infra/s3iam"
	"github.com/segflow/segflow/shared/storage"
	"github.com/segflow/segflow/shared/testenv"
)

// A provisioned user can do what its grant says on a real MinIO and
// nothing else; provisioning again rotates its secret.
func TestProvisionedUserHasItsGrantOnly(t *testing.T) {
	m := testenv.StartMinIO(t)
	ctx := context.Background()
	bucket := m.Bucket(t, "media")
	other := m.Bucket(t, "other")
	for _, k := range []string{"uploads/a.mp4", "assets/x/manifest.json", "logos/secret.png"} {
		if err := m.Client.PutBytes(ctx, bucket, k, []byte("root wrote "+k), storage.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.Client.PutBytes(ctx, other, "uploads/b.mp4", []byte("b"), storage.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	admin := s3iam.NewAdmin(m.Options.Endpoint, m.Options.AccessKey, m.Options.SecretKey)
	grant := s3iam.Grant{Read: []string{"uploads/*", "assets/*/manifest.json"}, Write: []string{"assets/*/source/*"}}
	if err := admin.Provision(ctx, bucket, "segflow-split", "first-secret-123", grant); err != nil {
		t.Fatal(err)
	}
	user := func(secret string) *storage.Client {
		c, err := storage.New(storage.Options{Endpoint: m.Options.Endpoint, AccessKey: "segflow-split", SecretKey: secret})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	c := user("first-secret-123")
	big := bytes.Repeat([]byte{7}, 17<<20) // a multipart put
	cases := []struct {
		name string
		do   func() error
		ok   bool
	}{
		{"read an upload", func() error { _, err := c.GetBytes(ctx, bucket, "uploads/a.mp4"); return err }, true},
		{"stat an upload", func() error { _, err := c.Stat(ctx, bucket, "uploads/a.mp4"); return err }, true},
		{"list uploads", func() error { _, err := c.List(ctx, bucket, "uploads/", storage.ListOptions{}); return err }, true},
		{"read a manifest", func() error { _, err := c.GetBytes(ctx, bucket, "assets/x/manifest.json"); return err }, true},
		{"write a source segment", func() error {
			return c.PutBytes(ctx, bucket, "assets/x/source/00000.ts", []byte("ts"), storage.PutOptions{})
		}, true},
		{"write a large source segment", func() error {
			return c.Put(ctx, bucket, "assets/x/source/00001.ts", bytes.NewReader(big), int64(len(big)), storage.PutOptions{})
		}, true},
		{"read a presigned upload", func() error {
			u, err := c.Presign(ctx, http.MethodGet, bucket, "uploads/a.mp4", time.Minute)
			if err != nil {
				return err
			}
			resp, err := http.Get(u.String())
			if err != nil {
				return err
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return errors.New(resp.Status)
			}
			return nil
		}, true},
		{"read a logo", func() error { _, err := c.GetBytes(ctx, bucket, "logos/secret.png"); return err }, false},
		{"list assets", func() error { _, err := c.List(ctx, bucket, "assets/", storage.ListOptions{}); return err }, false},
		{"list the bucket", func() error { _, err := c.List(ctx, bucket, "", storage.ListOptions{}); return err }, false},
		{"write a rendition", func() error {
			return c.PutBytes(ctx, bucket, "assets/x/720p/00000.ts", []byte("ts"), storage.PutOptions{})
		}, false},
		{"overwrite the manifest", func() error {
			return c.PutBytes(ctx, bucket, "assets/x/manifest.json", []byte("{}"), storage.PutOptions{})
		}, false},
		{"write an upload", func() error {
			return c.PutBytes(ctx, bucket, "uploads/evil.mp4", []byte("x"), storage.PutOptions{})
		}, false},
		{"delete an upload", func() error { return c.Remove(ctx, bucket, "uploads/a.mp4") }, false},
		{"read another bucket", func() error { _, err := c.GetBytes(ctx, other, "uploads/b.mp4"); return err }, false},
		{"make a bucket", func() error { return c.EnsureBucket(ctx, "mine") }, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.do()
			switch {
			case tc.ok && err != nil:
				t.Fatalf("refused: %v", err)
			case !tc.ok && err == nil:
				t.Fatal("allowed")
			case !tc.ok && minio.ToErrorResponse(errors.Unwrap(err)).Code != "AccessDenied" && !bytes.Contains([]byte(err.Error()), []byte("Access Denied")):
				t.Fatalf("refused for another reason than access: %v", err)
			}
		})
	}

	t.Run("provisioning again rotates the secret", func(t *testing.T) {
		if err := admin.Provision(ctx, bucket, "segflow-split", "second-secret-456", grant); err != nil {
			t.Fatal(err)
		}
		if _, err := user("first-secret-123").GetBytes(ctx, bucket, "uploads/a.mp4"); err == nil {
			t.Fatal("the old secret still works")
		}
		if _, err := user("second-secret-456").GetBytes(ctx, bucket, "uploads/a.mp4"); err != nil {
			t.Fatalf("the new secret: %v", err)
		}
	})
	t.Run("a wrong root secret is refused", func(t *testing.T) {
		bad := s3iam.NewAdmin(m.Options.Endpoint, m.Options.AccessKey, "not-the-root-secret")
		if err := bad.AddUser(ctx, "intruder", "intruder-secret"); err == nil {
			t.Fatal("a user was added with a wrong root secret")
		}
	})
}

func TestGrantValidate(t *testing.T) {
	for _, tc := range []struct {
		p  string
		ok bool
	}{
		{"uploads/*", true}, {"assets/*/source/*", true},
		{"/etc", false}, {"../other/*", false}, {"a b", false}, {`a"b`, false}, {"a?", false},
	} {
		err := s3iam.Grant{Read: []string{tc.p}}.Validate()
		if (err == nil) != tc.ok {
			t.Errorf("%q: %v, want ok=%v", tc.p, err, tc.ok)
		}
	}
}
