// Package storage is segflow's small S3 vocabulary on top of minio-go: the
// few verbs the stages use, in minio-go's own shape (context first, required
// arguments positional, options structs with useful zero values). It talks
// to MinIO and to any S3-compatible service.
package storage

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/segflow/segflow/shared/config"
	"github.com/segflow/segflow/shared/retry"
	"github.com/segflow/segflow/shared/tracing"
)

// Options says where the object store is and how to sign in.
type Options struct {
	Endpoint  string // host:port, no scheme
	AccessKey string
	SecretKey string
	Secure    bool   // https
	Region    string // empty lets the client discover it
}

// SecretNames are the secrets that hold a user's S3 keys: the
// function's own, "<user>-s3-access-key" and "<user>-s3-secret-key", or
// the shared "s3-access-key" and "s3-secret-key" for user "".
func SecretNames(user string) (accessKey, secretKey string) {
	if user == "" {
		return "s3-access-key", "s3-secret-key"
	}
	return user + "-s3-access-key", user + "-s3-secret-key"
}

// OptionsFromEnv reads S3_ENDPOINT, S3_SECURE and S3_REGION from the
// environment and user's keys from its secrets (files as OpenFaaS mounts
// them, or the environment: $SPLIT_S3_ACCESS_KEY for user split). When
// user has no keys of its own, the shared ones are used ($S3_ACCESS_KEY),
// as a deployment that gives every function one MinIO user has them.
func OptionsFromEnv(user string) (Options, error) {
	o := Options{
		Endpoint: config.Env("S3_ENDPOINT", "127.0.0.1:9000"),
		Secure:   config.Env("S3_SECURE", "false") == "true",
		Region:   config.Env("S3_REGION", ""),
	}
	ak, sk := SecretNames(user)
	if _, err := config.Secret(ak); err != nil && user != "" {
		ak, sk = SecretNames("")
	}
	var err error
	if o.AccessKey, err = config.Secret(ak); err != nil {
		return o, err
	}
	if o.SecretKey, err = config.Secret(sk); err != nil {
		return o, err
	}
	return o, nil
}

// Client is a thin handle on one S3 endpoint.
type Client struct {
	mc *minio.Client
	o  Options
	// http carries the requests minio-go does not make (ServerMetrics).
	http *http.Client
}

// New makes a client; it does not contact the server.
func New(o Options) (*Client, error) {
	if o.Endpoint == "" {
		return nil, errors.New("storage: endpoint is empty")
	}
	endpoint := strings.TrimPrefix(strings.TrimPrefix(o.Endpoint, "http://"), "https://")
	secure := o.Secure || strings.HasPrefix(o.Endpoint, "https://")
	transport, err := minio.DefaultTransport(secure)
	if err != nil {
		return nil, fmt.Errorf("storage: transport: %w", err)
	}
	mc, err := minio.New(endpoint, &minio.Options{
		Creds:  credentials.NewStaticV4(o.AccessKey, o.SecretKey, ""),
		Secure: secure,
		Region: o.Region,
		// Each S3 request is a span under the caller's (a no-op until a
		// process turns tracing on).
		Transport: tracing.Transport(transport, spanName),
	})
	if err != nil {
		return nil, fmt.Errorf("storage: client for %s: %w", endpoint, err)
	}
	return &Client{mc: mc, o: o, http: &http.Client{Transport: transport, Timeout: 10 * time.Second}}, nil
}

// spanName is "s3 VERB /bucket/key" without the query, which for S3 holds
// signatures and upload ids.
func spanName(r *http.Request) string { return "s3 " + r.Method + " " + r.URL.Path }

// Minio exposes the underlying client for the rare call this package does
// not wrap (bucket notification set-up, for one).
func (c *Client) Minio() *minio.Client { return c.mc }

// EnsureBucket creates bucket unless it exists.
func (c *Client) EnsureBucket(ctx context.Context, bucket string) error {
	ok, err := c.mc.BucketExists(ctx, bucket)
	if err != nil {
		return fmt.Errorf("storage: bucket %s exists: %w", bucket, err)
	}
	if ok {
		return nil
	}
	if err := c.mc.MakeBucket(ctx, bucket, minio.MakeBucketOptions{}); err != nil {
		if code := minio.ToErrorResponse(err).Code; code == "BucketAlreadyOwnedByYou" || code == "BucketAlreadyExists" {
			return nil
		}
		return fmt.Errorf("storage: make bucket %s: %w", bucket, err)
	}
	return nil
}

// PutOptions are the optional parts of a write.
type PutOptions struct {
	ContentType string
	// Metadata is stored as x-amz-meta-* user metadata.
	Metadata map[string]string
	// IfMatch makes the write conditional on the current ETag ("*": the
	// object exists); IfNoneMatch "*" makes it create-only. A failed
	// condition returns an error that IsPreconditionFailed recognises.
	IfMatch, IfNoneMatch string
	// Progress, when set, is read as many bytes as are sent (a progress bar).
	Progress io.Reader
}

// Put writes size bytes from r to bucket/key (size -1 streams in parts).
func (c *Client) Put(ctx context.Context, bucket, key string, r io.Reader, size int64, opts PutOptions) error {
	if err := ValidKey(key); err != nil {
		return err
	}
	// No SHA-256 of every payload for the signature: on plain HTTP minio-go
	// would hash each segment a second time for nothing the server needs
	// (it still checks the MD5/ETag), and media stages write a lot.
	po := minio.PutObjectOptions{ContentType: opts.ContentType, UserMetadata: withTrace(ctx, opts.Metadata), Progress: opts.Progress,
		DisableContentSha256: true}
	if opts.IfMatch != "" {
		po.SetMatchETag(strings.Trim(opts.IfMatch, `"`))
	}
	if opts.IfNoneMatch != "" {
		po.SetMatchETagExcept(strings.Trim(opts.IfNoneMatch, `"`))
	}
	_, err := c.mc.PutObject(ctx, bucket, key, r, size, po)
	if err != nil {
		return fmt.Errorf("storage: put %s/%s: %w", bucket, key, err)
	}
	return nil
}

// withTrace adds the writer's trace context to an object's metadata: the
// bucket notification carries it to the router, so the events an object
// raises continue the trace of whatever wrote it (an upload, a stage).
func withTrace(ctx context.Context, meta map[string]string) map[string]string {
	tc := map[string]string{}
	tracing.Inject(ctx, tc)
	if tc["traceparent"] == "" {
		return meta
	}
	out := make(map[string]string, len(meta)+1)
	for k, v := range meta {
		out[k] = v
	}
	out[TraceMeta] = tc["traceparent"]
	return out
}

// TraceMeta is the user-metadata key holding the writer's W3C traceparent.
const TraceMeta = "Traceparent"

// PutBytes writes a small object held in memory.
func (c *Client) PutBytes(ctx context.Context, bucket, key string, b []byte, opts PutOptions) error {
	return c.Put(ctx, bucket, key, bytes.NewReader(b), int64(len(b)), opts)
}

// PutFile uploads a local file.
func (c *Client) PutFile(ctx context.Context, bucket, key, file string, opts PutOptions) error {
	f, err := os.Open(file)
	if err != nil {
		return fmt.Errorf("storage: put %s/%s: %w", bucket, key, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("storage: put %s/%s: %w", bucket, key, err)
	}
	return c.Put(ctx, bucket, key, f, st.Size(), opts)
}

// Info describes a stored object.
type Info struct {
	Key          string
	Size         int64
	ETag         string
	ContentType  string
	LastModified time.Time
	// Metadata holds the user metadata with the x-amz-meta- prefix removed
	// and the first letter of each word upper-cased, as S3 returns it.
	Metadata map[string]string
}

func infoOf(oi minio.ObjectInfo) Info {
	// Stat gives metadata without the x-amz-meta- prefix; a listing with
	// metadata gives it raw and stripped.
	raw := map[string]string(oi.UserMetadataStripped)
	if len(raw) == 0 {
		raw = oi.UserMetadata
	}
	meta := make(map[string]string, len(raw))
	for k, v := range raw {
		meta[http.CanonicalHeaderKey(strings.TrimPrefix(http.CanonicalHeaderKey(k), "X-Amz-Meta-"))] = v
	}
	return Info{Key: oi.Key, Size: oi.Size, ETag: strings.Trim(oi.ETag, `"`), ContentType: oi.ContentType,
		LastModified: oi.LastModified, Metadata: meta}
}

// Meta returns a user metadata value by name, in any letter case.
func (i Info) Meta(name string) string { return i.Metadata[http.CanonicalHeaderKey(name)] }

// Stat returns an object's size and metadata; ErrNotFound when absent.
func (c *Client) Stat(ctx context.Context, bucket, key string) (Info, error) {
	oi, err := c.mc.StatObject(ctx, bucket, key, minio.StatObjectOptions{})
	if err != nil {
		return Info{}, wrapNotFound(fmt.Sprintf("stat %s/%s", bucket, key), err)
	}
	return infoOf(oi), nil
}

// Get opens an object for reading; the caller closes it.
func (c *Client) Get(ctx context.Context, bucket, key string) (io.ReadCloser, Info, error) {
	// One GET whose headers give the info: minio-go's Object would send a
	// HEAD first to answer Stat, doubling the requests of every status,
	// manifest and playlist read.
	body, oi, _, err := minio.Core{Client: c.mc}.GetObject(ctx, bucket, key, minio.GetObjectOptions{})
	if err != nil {
		return nil, Info{}, wrapNotFound(fmt.Sprintf("get %s/%s", bucket, key), err)
	}
	return body, infoOf(oi), nil
}

// GetBytes reads a whole (small) object. It is one GET, so an object
// replaced meanwhile (a status document, a playlist) is read whole, as
// it was when the GET began.
func (c *Client) GetBytes(ctx context.Context, bucket, key string) ([]byte, error) {
	b, _, err := c.getBytes(ctx, bucket, key)
	return b, err
}

func (c *Client) getBytes(ctx context.Context, bucket, key string) ([]byte, Info, error) {
	rc, info, err := c.Get(ctx, bucket, key)
	if err != nil {
		return nil, info, err
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		return nil, info, fmt.Errorf("storage: read %s/%s: %w", bucket, key, err)
	}
	return b, info, nil
}

// GetFile downloads an object into a local file.
func (c *Client) GetFile(ctx context.Context, bucket, key, file string) (Info, error) {
	rc, info, err := c.Get(ctx, bucket, key)
	if err != nil {
		return Info{}, err
	}
	defer rc.Close()
	f, err := os.Create(file)
	if err != nil {
		return Info{}, fmt.Errorf("storage: get %s/%s: %w", bucket, key, err)
	}
	if _, err := io.Copy(f, rc); err != nil {
		f.Close()
		return Info{}, fmt.Errorf("storage: get %s/%s: %w", bucket, key, err)
	}
	if err := f.Close(); err != nil {
		return Info{}, fmt.Errorf("storage: get %s/%s: %w", bucket, key, err)
	}
	return info, nil
}

// ListOptions narrow a listing.
type ListOptions struct {
	// Recursive lists every key under the prefix instead of one level.
	Recursive bool
	// WithMetadata fetches user metadata with each entry (MinIO extension).
	WithMetadata bool
}

// List returns the objects under prefix in key order.
func (c *Client) List(ctx context.Context, bucket, prefix string, opts ListOptions) ([]Info, error) {
	var out []Info
	for oi := range c.mc.ListObjects(ctx, bucket, minio.ListObjectsOptions{
		Prefix: prefix, Recursive: opts.Recursive, WithMetadata: opts.WithMetadata,
	}) {
		if oi.Err != nil {
			return nil, fmt.Errorf("storage: list %s/%s: %w", bucket, prefix, oi.Err)
		}
		out = append(out, infoOf(oi))
	}
	return out, nil
}

// Remove deletes an object; removing a missing one is not an error.
func (c *Client) Remove(ctx context.Context, bucket, key string) error {
	if err := c.mc.RemoveObject(ctx, bucket, key, minio.RemoveObjectOptions{}); err != nil {
		return fmt.Errorf("storage: remove %s/%s: %w", bucket, key, err)
	}
	return nil
}

// Presign returns a URL that allows method (GET or PUT) on bucket/key
// without credentials until expiry.
func (c *Client) Presign(ctx context.Context, method, bucket, key string, expiry time.Duration) (*url.URL, error) {
	if err := ValidKey(key); err != nil {
		return nil, err
	}
	u, err := c.mc.Presign(ctx, method, bucket, key, expiry, nil)
	if err != nil {
		return nil, fmt.Errorf("storage: presign %s %s/%s: %w", method, bucket, key, err)
	}
	return u, nil
}

// IsPreconditionFailed says whether a conditional write lost its race.
func IsPreconditionFailed(err error) bool {
	var er minio.ErrorResponse
	if errors.As(err, &er) {
		return er.StatusCode == 412 || er.Code == "PreconditionFailed"
	}
	return false
}

// Update replaces a small object by a function of its current content with
// optimistic locking: read it and its ETag, compute, write only if nobody
// wrote in between, else start over. change gets nil when the object does
// not exist and returns nil to leave it as it is. Concurrent updaters
// therefore never lose each other's changes.
func (c *Client) Update(ctx context.Context, bucket, key string, opts PutOptions, change func(old []byte) ([]byte, error)) error {
	return c.UpdateInfo(ctx, bucket, key, opts, func(old []byte, _ Info) ([]byte, error) { return change(old) })
}

// UpdateInfo is Update whose change also gets the current object's Info
// (zero when there is none): state kept in its metadata beside the content.
func (c *Client) UpdateInfo(ctx context.Context, bucket, key string, opts PutOptions, change func(old []byte, info Info) ([]byte, error)) error {
	b := retry.Backoff(10*time.Millisecond, 200*time.Millisecond)
	for attempt := 0; ; attempt++ {
		etag := ""
		old, info, err := c.getBytes(ctx, bucket, key)
		switch {
		case err == nil:
			etag = info.ETag
		case errors.Is(err, ErrNotFound):
			old, info = nil, Info{}
		default:
			return err
		}
		next, err := change(old, info)
		if err != nil || next == nil {
			return err
		}
		o := opts
		if etag != "" {
			o.IfMatch, o.IfNoneMatch = etag, ""
		} else {
			o.IfMatch, o.IfNoneMatch = "", "*"
		}
		err = c.PutBytes(ctx, bucket, key, next, o)
		if err == nil || !IsPreconditionFailed(err) || attempt >= 50 {
			return err
		}
		if !retry.Wait(ctx, b) {
			return ctx.Err()
		}
	}
}

// ErrNotFound is returned (wrapped) for a missing object or bucket.
var ErrNotFound = errors.New("not found")

func wrapNotFound(what string, err error) error {
	switch minio.ToErrorResponse(err).Code {
	case "NoSuchKey", "NoSuchBucket", "NotFound":
		return fmt.Errorf("storage: %s: %w", what, ErrNotFound)
	}
	return fmt.Errorf("storage: %s: %w", what, err)
}

// ValidKey rejects keys that could escape a prefix or confuse a path join on
// the way back to disk: empty, absolute, "." or ".." segments, backslashes,
// control characters.
func ValidKey(key string) error {
	if key == "" || len(key) > 1024 {
		return fmt.Errorf("storage: invalid key %q: empty or longer than 1024 bytes", key)
	}
	if strings.HasPrefix(key, "/") || strings.Contains(key, `\`) {
		return fmt.Errorf("storage: invalid key %q: absolute or backslash", key)
	}
	for _, r := range key {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("storage: invalid key %q: control character", key)
		}
	}
	for _, seg := range strings.Split(key, "/") {
		if seg == "." || seg == ".." {
			return fmt.Errorf("storage: invalid key %q: dot segment", key)
		}
	}
	if path.Clean(key) != strings.TrimSuffix(key, "/") {
		return fmt.Errorf("storage: invalid key %q: not clean", key)
	}
	return nil
}

// PutJSON writes v as an indented JSON document.
func (c *Client) PutJSON(ctx context.Context, bucket, key string, v any, opts PutOptions) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("storage: put %s/%s: %w", bucket, key, err)
	}
	if opts.ContentType == "" {
		opts.ContentType = "application/json"
	}
	return c.PutBytes(ctx, bucket, key, b, opts)
}

// SetPublicRead lets anyone GET objects under prefix (playlists and
// segments for players and CDNs) except those under the except prefixes
// (private assets), while everything else stays private.
func (c *Client) SetPublicRead(ctx context.Context, bucket, prefix string, except ...string) error {
	type statement struct {
		Effect    string              `json:"Effect"`
		Principal map[string][]string `json:"Principal"`
		Action    []string            `json:"Action"`
		Resource  []string            `json:"Resource"`
	}
	anyone := map[string][]string{"AWS": {"*"}}
	arn := func(p string) []string { return []string{"arn:aws:s3:::" + bucket + "/" + p + "*"} }
	st := []statement{{Effect: "Allow", Principal: anyone, Action: []string{"s3:GetObject"}, Resource: arn(prefix)}}
	for _, p := range except {
		st = append(st, statement{Effect: "Deny", Principal: anyone, Action: []string{"s3:GetObject"}, Resource: arn(p)})
	}
	policy, err := json.Marshal(map[string]any{"Version": "2012-10-17", "Statement": st})
	if err != nil {
		return err
	}
	if err := c.mc.SetBucketPolicy(ctx, bucket, string(policy)); err != nil {
		return fmt.Errorf("storage: public read on %s/%s: %w", bucket, prefix, err)
	}
	return nil
}
