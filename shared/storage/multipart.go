package storage

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
)

// A multipart upload in the hands of a client that holds no credentials
// (a browser): the server starts it, presigns each part, lists what has
// arrived (to resume after a reload) and completes it.

// Part is one uploaded part.
type Part struct {
	Number int    `json:"number"`
	ETag   string `json:"etag"`
	Size   int64  `json:"size"`
}

// NewMultipart starts a multipart upload of bucket/key and returns its id.
func (c *Client) NewMultipart(ctx context.Context, bucket, key string, opts PutOptions) (string, error) {
	if err := ValidKey(key); err != nil {
		return "", err
	}
	id, err := minio.Core{Client: c.mc}.NewMultipartUpload(ctx, bucket, key,
		minio.PutObjectOptions{ContentType: opts.ContentType, UserMetadata: withTrace(ctx, opts.Metadata)})
	if err != nil {
		return "", fmt.Errorf("storage: start upload %s/%s: %w", bucket, key, err)
	}
	return id, nil
}

// PresignPart returns a URL that PUTs part number n of the upload without
// credentials until expiry.
func (c *Client) PresignPart(ctx context.Context, bucket, key, uploadID string, n int, expiry time.Duration) (*url.URL, error) {
	if err := ValidKey(key); err != nil {
		return nil, err
	}
	if n < 1 || n > 10000 {
		return nil, fmt.Errorf("storage: part number %d outside 1..10000", n)
	}
	q := url.Values{"partNumber": {strconv.Itoa(n)}, "uploadId": {uploadID}}
	u, err := c.mc.Presign(ctx, "PUT", bucket, key, expiry, q)
	if err != nil {
		return nil, fmt.Errorf("storage: presign part %d of %s/%s: %w", n, bucket, key, err)
	}
	return u, nil
}

// Parts lists the parts of the upload that have arrived, in order.
func (c *Client) Parts(ctx context.Context, bucket, key, uploadID string) ([]Part, error) {
	core := minio.Core{Client: c.mc}
	var out []Part
	marker := 0
	for {
		res, err := core.ListObjectParts(ctx, bucket, key, uploadID, marker, 1000)
		if err != nil {
			return nil, fmt.Errorf("storage: parts of %s/%s: %w", bucket, key, err)
		}
		for _, p := range res.ObjectParts {
			out = append(out, Part{Number: p.PartNumber, ETag: strings.Trim(p.ETag, `"`), Size: p.Size})
		}
		if !res.IsTruncated {
			return out, nil
		}
		marker = res.NextPartNumberMarker
	}
}

// ErrSizeMismatch: an upload's parts do not add up to the size it was to
// have.
var ErrSizeMismatch = errors.New("size mismatch")

// CompleteMultipart joins every uploaded part into the object and returns
// its ETag, when the parts add up to size bytes (ErrSizeMismatch else). The
// parts are the server's own list, so a client cannot name parts it did
// not send, nor send more (or less) than the upload declared.
func (c *Client) CompleteMultipart(ctx context.Context, bucket, key, uploadID string, size int64) (string, error) {
	parts, err := c.Parts(ctx, bucket, key, uploadID)
	if err != nil {
		return "", err
	}
	if len(parts) == 0 {
		return "", fmt.Errorf("storage: complete %s/%s: no parts uploaded", bucket, key)
	}
	var got int64
	for _, p := range parts {
		got += p.Size
	}
	if got != size {
		return "", fmt.Errorf("storage: complete %s/%s: parts add up to %d bytes, %d were declared: %w", bucket, key, got, size, ErrSizeMismatch)
	}
	sort.Slice(parts, func(i, j int) bool { return parts[i].Number < parts[j].Number })
	cp := make([]minio.CompletePart, len(parts))
	for i, p := range parts {
		cp[i] = minio.CompletePart{PartNumber: p.Number, ETag: p.ETag}
	}
	info, err := minio.Core{Client: c.mc}.CompleteMultipartUpload(ctx, bucket, key, uploadID, cp, minio.PutObjectOptions{})
	if err != nil {
		return "", fmt.Errorf("storage: complete %s/%s: %w", bucket, key, err)
	}
	return strings.Trim(info.ETag, `"`), nil
}

// AbortMultipart drops an upload and its parts.
func (c *Client) AbortMultipart(ctx context.Context, bucket, key, uploadID string) error {
	if err := (minio.Core{Client: c.mc}).AbortMultipartUpload(ctx, bucket, key, uploadID); err != nil {
		return fmt.Errorf("storage: abort %s/%s: %w", bucket, key, err)
	}
	return nil
}
