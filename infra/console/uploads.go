package console

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"path"
	"regexp"
	"strings"
	"time"

	"github.com/segflow/segflow/infra/internal/httpjson"
	"github.com/segflow/segflow/shared/layout"
	"github.com/segflow/segflow/shared/storage"
)

// The browser uploads straight to the bucket: the console starts a
// multipart upload, presigns each part, lists the parts that arrived (so a
// reloaded page resumes where it stopped) and completes it. The bytes never
// pass through the gateway.

const (
	maxUpload  = 5 << 40 // S3's object size limit
	maxRequest = 1 << 16 // a console API request body
)

// uploadRef names an upload in progress.
type uploadRef struct {
	Key      string `json:"key"`
	UploadID string `json:"uploadId"`
}

func (u uploadRef) check() error {
	if !strings.HasPrefix(u.Key, layout.UploadsPrefix) || u.UploadID == "" {
		return errors.New("key under " + layout.UploadsPrefix + " and uploadId are required")
	}
	return nil
}

type newUpload struct {
	Name string `json:"name"`
	Size int64  `json:"size"`
	Type string `json:"type"`
	// Private puts it under uploads/private/: a private asset, played
	// through signed, expiring URLs only.
	Private bool `json:"private"`
}

type uploadPlan struct {
	uploadRef
	PartSize int64 `json:"partSize"`
	Parts    int   `json:"parts"`
}

func (c *Console) partSize() int64 {
	if c.PartSize >= 5<<20 {
		return c.PartSize
	}
	return 8 << 20
}

func (c *Console) expiry() time.Duration {
	if c.URLExpiry > 0 {
		return c.URLExpiry
	}
	return time.Hour
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9._ -]+`)

// uploadKey keeps a file name readable but safe as a key: no folders, no
// control characters, no leading dots.
const maxNameBytes = 255

func uploadKey(name string, private bool) (string, error) {
	base := strings.TrimLeft(unsafeName.ReplaceAllString(path.Base(strings.ReplaceAll(name, `\`, "/")), "_"), ". ")
	if base == "" || base == "_" {
		return "", fmt.Errorf("file name %q has nothing usable", name)
	}
	// What file systems allow; MinIO's key limit (1024) must not be what
	// refuses it, with a 502, after the claim.
	if len(base) > maxNameBytes {
		return "", fmt.Errorf("file name of %d bytes: at most %d", len(base), maxNameBytes)
	}
	if private {
		return layout.PrivateUploadsPrefix + base, nil
	}
	return layout.UploadsPrefix + base, nil
}

func (c *Console) createUpload(w http.ResponseWriter, r *http.Request) {
	var in newUpload
	if !httpjson.Read(w, r, maxRequest, "upload", &in) {
		return
	}
	if in.Size <= 0 || in.Size > maxUpload {
		httpjson.Error(w, http.StatusBadRequest, fmt.Errorf("upload %q: size %d outside 1..5 TiB", in.Name, in.Size))
		return
	}
	key, err := uploadKey(in.Name, in.Private)
	if err != nil {
		httpjson.Error(w, http.StatusBadRequest, err)
		return
	}
	if key, err = c.freeKey(r.Context(), key, in.Size); err != nil {
		httpjson.Error(w, http.StatusBadGateway, err)
		return
	}
	ps := c.partSize()
	for (in.Size+ps-1)/ps > 10000 {
		ps *= 2
	}
	id, err := c.Store.NewMultipart(r.Context(), c.Bucket, key, putOptions(in.Type))
	if err != nil {
		httpjson.Error(w, http.StatusBadGateway, err)
		return
	}
	httpjson.Write(w, http.StatusOK, uploadPlan{uploadRef{key, id}, ps, int((in.Size + ps - 1) / ps)})
}

// freeKey keeps a second file of the same name from replacing the first
// upload: it takes "name-2.ext", "name-3.ext", ... while the key is taken.
// A key is taken once its object exists or once an upload claimed it: the
// claim is a create-only marker under reservedPrefix (a key the bucket
// announces to no one), so two uploads of one name started at once, or
// one started while another is still going up, get different keys.
func (c *Console) freeKey(ctx context.Context, key string, size int64) (string, error) {
	ext := path.Ext(key)
	base := strings.TrimSuffix(key, ext)
	for n := 1; n <= 1000; n++ {
		k := key
		if n > 1 {
			k = fmt.Sprintf("%s-%d%s", base, n, ext)
		}
		_, err := c.Store.Stat(ctx, c.Bucket, k)
		if err == nil {
			continue
		}
		if !errors.Is(err, storage.ErrNotFound) {
			return "", err
		}
		ok, err := c.claim(ctx, k, size)
		if err != nil {
			return "", fmt.Errorf("claim %s: %w", k, err)
		}
		if ok {
			return k, nil
		}
	}
	return "", fmt.Errorf("upload %s: a thousand files of that name already", key)
}

// claim takes key for one upload: a new claim, or one older than the
// claim expiry whose upload never completed (the page was closed). Each
// claim's body is unique, so its ETag is too: of two uploads taking over
// one expired claim, only the first write on its ETag succeeds.
func (c *Console) claim(ctx context.Context, key string, size int64) (bool, error) {
	body, err := json.Marshal(claimRecord{At: time.Now().UTC(), Nonce: rand.Int64(), Size: size})
	if err != nil {
		return false, err
	}
	marker := reservedPrefix + key
	err = c.Store.PutBytes(ctx, c.Bucket, marker, body, storage.PutOptions{IfNoneMatch: "*"})
	if !storage.IsPreconditionFailed(err) {
		return err == nil, err
	}
	held, err := c.Store.Stat(ctx, c.Bucket, marker)
	if errors.Is(err, storage.ErrNotFound) {
		return false, nil // released meanwhile: the next name is as good
	}
	if err != nil || time.Since(held.LastModified) < c.claimExpiry() {
		return false, err
	}
	err = c.Store.PutBytes(ctx, c.Bucket, marker, body, storage.PutOptions{IfMatch: held.ETag})
	if storage.IsPreconditionFailed(err) {
		return false, nil
	}
	return err == nil, err
}

func (c *Console) claimExpiry() time.Duration {
	if c.ClaimExpiry > 0 {
		return c.ClaimExpiry
	}
	return 24 * time.Hour
}

// claimRecord is a claim's body: unique (At, Nonce), and the size the
// upload declared, which its parts must add up to.
type claimRecord struct {
	At    time.Time `json:"at"`
	Nonce int64     `json:"nonce"`
	Size  int64     `json:"size"`
}

// declaredSize is the size the upload declared when it claimed its key:
// its parts must add up to it, or a page (or anyone holding the presigned
// part URLs) could send far more than it announced.
func (c *Console) declaredSize(ctx context.Context, key string) (int64, error) {
	b, err := c.Store.GetBytes(ctx, c.Bucket, reservedPrefix+key)
	if err != nil {
		return 0, fmt.Errorf("upload %s: its claim: %w", key, err)
	}
	var claimed claimRecord
	if err := json.Unmarshal(b, &claimed); err != nil {
		return 0, fmt.Errorf("upload %s: its claim: %w", key, err)
	}
	return claimed.Size, nil
}

// reservedPrefix holds the console's claims on upload keys.
const reservedPrefix = "console/claimed/"

func (c *Console) listParts(w http.ResponseWriter, r *http.Request) {
	ref := uploadRef{Key: r.URL.Query().Get("key"), UploadID: r.URL.Query().Get("uploadId")}
	if err := ref.check(); err != nil {
		httpjson.Error(w, http.StatusBadRequest, err)
		return
	}
	parts, err := c.Store.Parts(r.Context(), c.Bucket, ref.Key, ref.UploadID)
	if err != nil {
		// An upload that was completed or aborted is gone: the page starts over.
		httpjson.Error(w, http.StatusNotFound, err)
		return
	}
	httpjson.Write(w, http.StatusOK, parts)
}

func (c *Console) signPart(w http.ResponseWriter, r *http.Request) {
	var in struct {
		uploadRef
		Part int `json:"part"`
	}
	if !httpjson.Read(w, r, maxRequest, "sign", &in) {
		return
	}
	if err := in.check(); err != nil {
		httpjson.Error(w, http.StatusBadRequest, err)
		return
	}
	u, err := c.Store.PresignPart(r.Context(), c.Bucket, in.Key, in.UploadID, in.Part, c.expiry())
	if err != nil {
		httpjson.Error(w, http.StatusBadRequest, err)
		return
	}
	httpjson.Write(w, http.StatusOK, map[string]string{"url": u.String()})
}

func (c *Console) completeUpload(w http.ResponseWriter, r *http.Request) {
	var in uploadRef
	if !httpjson.Read(w, r, maxRequest, "complete", &in) {
		return
	}
	if err := in.check(); err != nil {
		httpjson.Error(w, http.StatusBadRequest, err)
		return
	}
	size, err := c.declaredSize(r.Context(), in.Key)
	if err != nil {
		code := http.StatusBadRequest
		if errors.Is(err, storage.ErrNotFound) {
			code = http.StatusNotFound // no such upload (no claim on its key)
		}
		httpjson.Error(w, code, err)
		return
	}
	etag, err := c.Store.CompleteMultipart(r.Context(), c.Bucket, in.Key, in.UploadID, size)
	if errors.Is(err, storage.ErrSizeMismatch) {
		httpjson.Error(w, http.StatusBadRequest, err)
		return
	}
	if err != nil {
		httpjson.Error(w, http.StatusBadGateway, err)
		return
	}
	// The asset id is what split will name the asset: the page follows it.
	httpjson.Write(w, http.StatusOK, map[string]string{"key": in.Key, "asset": layout.AssetID(in.Key, etag)})
}
