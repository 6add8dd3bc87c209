// Package playback lets players fetch private assets, whose objects the
// bucket does not serve anonymously, through signed, expiring URLs:
//
//	GET /play/<token>/<asset id>/master.m3u8
//
// The token sits in the path, not the query, so the relative URIs in the
// playlists (720p.m3u8, 720p/00000.ts) resolve under the same token and no
// playlist needs rewriting.
package playback

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"time"
)

// Signer makes and checks tokens with one secret key.
type Signer struct {
	key []byte
}

// NewSigner returns a signer; key should hold 32 random bytes or more.
func NewSigner(key []byte) (*Signer, error) {
	if len(key) < 16 {
		return nil, errors.New("playback: signing key shorter than 16 bytes")
	}
	return &Signer{key: append([]byte(nil), key...)}, nil
}

// Errors of Verify.
var (
	ErrBadToken = errors.New("playback: token is not valid for this asset")
	ErrExpired  = errors.New("playback: token expired")
)

const macSize = 16

// Token is valid for asset id until exp: base64url(exp seconds, 8 bytes
// big-endian | the first 16 bytes of HMAC-SHA256 over id and exp).
func (s *Signer) Token(id string, exp time.Time) string {
	var b [8 + macSize]byte
	binary.BigEndian.PutUint64(b[:8], uint64(exp.Unix()))
	copy(b[8:], s.mac(id, b[:8]))
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// Verify checks that token was made for id and has not expired at now;
// it returns the expiry.
func (s *Signer) Verify(token, id string, now time.Time) (time.Time, error) {
	b, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil || len(b) != 8+macSize {
		return time.Time{}, ErrBadToken
	}
	if !hmac.Equal(b[8:], s.mac(id, b[:8])) {
		return time.Time{}, ErrBadToken
	}
	exp := time.Unix(int64(binary.BigEndian.Uint64(b[:8])), 0)
	if !now.Before(exp) {
		return exp, ErrExpired
	}
	return exp, nil
}

func (s *Signer) mac(id string, exp []byte) []byte {
	h := hmac.New(sha256.New, s.key)
	h.Write([]byte("segflow-play\x00"))
	h.Write([]byte(id))
	h.Write([]byte{0})
	h.Write(exp)
	return h.Sum(nil)[:macSize]
}

// StreamSubject is what a live stream's WebRTC (WHEP) tokens are made
// for: Token(StreamSubject(name), exp) lets its viewers in until exp. No
// asset id holds a '/', so no asset token passes for a stream's.
func StreamSubject(stream string) string { return "live/" + stream }
