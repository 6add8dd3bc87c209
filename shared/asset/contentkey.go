package asset

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"fmt"

	"github.com/segflow/segflow/shared/layout"
	"github.com/segflow/segflow/shared/storage"
)

// ContentKeySize is an AES-128 key's length.
const ContentKeySize = 16

// EnsureContentKey returns asset id's content key, making it first if
// there is none: created only if absent, so a split that runs again (a
// retried or duplicated event) keeps the key the segments already made
// were encrypted with.
func EnsureContentKey(ctx context.Context, c *storage.Client, bucket, id string, meta map[string]string) ([]byte, error) {
	key := make([]byte, ContentKeySize)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("content key of %s: %w", id, err)
	}
	err := c.PutBytes(ctx, bucket, layout.Asset(id).ContentKey(), key,
		storage.PutOptions{ContentType: "application/octet-stream", Metadata: meta, IfNoneMatch: "*"})
	if storage.IsPreconditionFailed(err) {
		return ReadContentKey(ctx, c, bucket, id)
	}
	if err != nil {
		return nil, fmt.Errorf("content key of %s: %w", id, err)
	}
	return key, nil
}

// ReadContentKey reads asset id's content key.
func ReadContentKey(ctx context.Context, c *storage.Client, bucket, id string) ([]byte, error) {
	key, err := c.GetBytes(ctx, bucket, layout.Asset(id).ContentKey())
	if err != nil {
		return nil, fmt.Errorf("content key of %s: %w", id, err)
	}
	if len(key) != ContentKeySize {
		return nil, fmt.Errorf("content key of %s: %d bytes, want %d", id, len(key), ContentKeySize)
	}
	return key, nil
}

// KeyID is the key ID of asset id's content key, as cbcs init segments
// (tenc, pssh), the DASH manifest and Clear Key license requests name it.
// It is public, so it is derived from the id rather than stored: every
// stage that needs it gets the same one without another read.
func KeyID(id string) []byte { return derive("segflow key id", id) }

// ConstantIV is the initialization vector of every cbcs sample of asset
// id (cbcs uses one constant IV per track, written in the clear in tenc);
// derived like KeyID, so a re-encoded segment comes out byte-identical.
func ConstantIV(id string) []byte { return derive("segflow cbcs iv", id) }

func derive(purpose, id string) []byte {
	sum := sha256.Sum256([]byte(purpose + "\x00" + id))
	return sum[:16]
}
