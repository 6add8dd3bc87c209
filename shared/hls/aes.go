package hls

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"fmt"
)

// KeyURI is what an encrypted asset's media playlists name as the key
// (EXT-X-KEY URI): relative, so it resolves under the URL the player was
// given, which only the playback route (/play/<token>/<id>/) answers with
// the key; the bucket's public copy of the playlist leads nowhere.
const KeyURI = "key"

// LicenseURI is where, beside KeyURI, an EME Clear Key player asks for
// the key of a cbcs asset: a license request (JSON key IDs) answered
// with a JSON Web Key set. Players are configured with it (hls.js
// drmSystems, dash.js protection data); the playlists name the key ID.
const LicenseURI = "license"

// EncryptSegment encrypts a whole media segment as HLS METHOD=AES-128 says
// (RFC 8216 5.2): AES-128-CBC with PKCS7 padding and, the playlist naming
// no IV, the segment's media sequence number as the IV. The same bytes
// every time: a repeated event rewrites the same segment.
func EncryptSegment(plain, key []byte, sequence int) ([]byte, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("encrypt segment %d: %w", sequence, err)
	}
	pad := aes.BlockSize - len(plain)%aes.BlockSize
	out := append(append([]byte(nil), plain...), bytes.Repeat([]byte{byte(pad)}, pad)...)
	cipher.NewCBCEncrypter(block, sequenceIV(sequence)).CryptBlocks(out, out)
	return out, nil
}

// DecryptSegment undoes EncryptSegment, as a player does.
func DecryptSegment(enc, key []byte, sequence int) ([]byte, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("decrypt segment %d: %w", sequence, err)
	}
	if len(enc) == 0 || len(enc)%aes.BlockSize != 0 {
		return nil, fmt.Errorf("decrypt segment %d: %d bytes is no whole number of blocks", sequence, len(enc))
	}
	out := make([]byte, len(enc))
	cipher.NewCBCDecrypter(block, sequenceIV(sequence)).CryptBlocks(out, enc)
	pad := int(out[len(out)-1])
	if pad == 0 || pad > aes.BlockSize || !bytes.Equal(out[len(out)-pad:], bytes.Repeat([]byte{byte(pad)}, pad)) {
		return nil, fmt.Errorf("decrypt segment %d: bad padding (wrong key?)", sequence)
	}
	return out[:len(out)-pad], nil
}

// sequenceIV is the 128-bit big-endian media sequence number.
func sequenceIV(sequence int) []byte {
	iv := make([]byte, aes.BlockSize)
	binary.BigEndian.PutUint64(iv[8:], uint64(sequence))
	return iv
}
