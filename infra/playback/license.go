package playback

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"time"

	"github.com/segflow/segflow/shared/asset"
)

// maxLicenseRequest bounds a license request's body: a Clear Key request
// names a handful of key IDs in a few hundred bytes.
const maxLicenseRequest = 4 << 10

// license answers an EME Clear Key license request for a cbcs asset
// (POST /play/<token>/<id>/license, hls.LicenseURI): the request is the
// CDM's message, {"kids":["<base64url key ID>"],"type":"temporary"}; the
// answer is a JSON Web Key set with the asset's content key under its key
// ID (W3C EME 9.1.3-9.1.4). Key IDs that are not the asset's get nothing:
// a token for one asset never yields another asset's key.
func (s *Server) license(w http.ResponseWriter, r *http.Request) {
	cors(w.Header())
	w.Header().Set("Cache-Control", "no-store")
	id := r.PathValue("id")
	if _, err := s.Signer.Verify(r.PathValue("token"), id, time.Now()); err != nil {
		http.Error(w, err.Error(), http.StatusForbidden)
		return
	}
	var req struct {
		KIDs []string `json:"kids"`
		Type string   `json:"type"`
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxLicenseRequest+1))
	if err == nil && len(body) > maxLicenseRequest {
		err = errors.New("request too large")
	}
	if err == nil {
		err = json.Unmarshal(body, &req)
	}
	if err != nil || len(req.KIDs) == 0 {
		http.Error(w, "license request: want {\"kids\":[...]} (EME Clear Key)", http.StatusBadRequest)
		return
	}
	kid := base64.RawURLEncoding.EncodeToString(asset.KeyID(id))
	if !slices.Contains(req.KIDs, kid) {
		http.Error(w, "no such key", http.StatusNotFound)
		return
	}
	key, err := asset.ReadContentKey(r.Context(), s.Store, s.Bucket, id)
	if err != nil {
		// No key: the asset is clear, or not there.
		http.Error(w, "no such key", http.StatusNotFound)
		return
	}
	keys := []jwk{{Kty: "oct", KID: kid, K: base64.RawURLEncoding.EncodeToString(key)}}
	typ := req.Type
	if typ == "" {
		typ = "temporary"
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(struct {
		Keys []jwk  `json:"keys"`
		Type string `json:"type"`
	}{keys, typ})
}

// jwk is one symmetric key of a JSON Web Key set (RFC 7517), base64url
// without padding, as EME Clear Key wants it.
type jwk struct {
	Kty string `json:"kty"`
	KID string `json:"kid"`
	K   string `json:"k"`
}
