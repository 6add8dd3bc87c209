package playback_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/segflow/segflow/infra/playback"
	"github.com/segflow/segflow/infra/s3iam"
	"github.com/segflow/segflow/shared/asset"
	"github.com/segflow/segflow/shared/hls"
	"github.com/segflow/segflow/shared/layout"
	"github.com/segflow/segflow/shared/storage"
	"github.com/segflow/segflow/shared/testenv"
)

func TestToken(t *testing.T) {
	s, err := playback.NewSigner([]byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	other, _ := playback.NewSigner([]byte("another key, just as long as it"))
	now := time.Unix(1_800_000_000, 0)
	tok := s.Token("private_a-1", now.Add(time.Hour))
	flip := []byte(tok)
	flip[len(flip)-1] ^= 1
	for _, tc := range []struct {
		name, token, id string
		at              time.Time
		want            error
	}{
		{"valid", tok, "private_a-1", now, nil},
		{"just before expiry", tok, "private_a-1", now.Add(time.Hour - time.Second), nil},
		{"expired", tok, "private_a-1", now.Add(time.Hour), playback.ErrExpired},
		{"other asset", tok, "private_b-2", now, playback.ErrBadToken},
		{"tampered", string(flip), "private_a-1", now, playback.ErrBadToken},
		{"other key", other.Token("private_a-1", now.Add(time.Hour)), "private_a-1", now, playback.ErrBadToken},
		{"garbage", "!!!", "private_a-1", now, playback.ErrBadToken},
		{"empty", "", "private_a-1", now, playback.ErrBadToken},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := s.Verify(tc.token, tc.id, tc.at); err != tc.want {
				t.Fatalf("Verify = %v, want %v", err, tc.want)
			}
		})
	}
	// The expiry is under the MAC: moving it later breaks the token.
	b := []byte(tok)
	b[9] ^= 'A' ^ 'B'
	if _, err := s.Verify(string(b), "private_a-1", now); err != playback.ErrBadToken {
		t.Fatalf("a token with its expiry changed: %v", err)
	}
	if _, err := playback.NewSigner([]byte("short")); err == nil {
		t.Fatal("a 5-byte key was taken")
	}
}

// A private asset's files reach a player only through a valid token, and
// only those files; the bucket itself refuses them to anonymous players.
func TestServePrivateAsset(t *testing.T) {
	m := testenv.StartMinIO(t)
	ctx := context.Background()
	bucket := m.Bucket(t, "media")
	if err := m.Client.SetPublicRead(ctx, bucket, layout.AssetsPrefix, layout.AssetsPrefix+layout.PrivateIDPrefix); err != nil {
		t.Fatal(err)
	}
	id := layout.AssetID(layout.PrivateUploadsPrefix+"talk.mp4", "e1")
	pub := layout.AssetID(layout.UploadsPrefix+"talk.mp4", "e1")
	enc := layout.AssetID(layout.UploadsPrefix+"secret.mp4", "e2") // public, encrypted
	a := layout.Asset(id)
	seg := strings.Repeat("0123456789", 1000)
	files := map[string]string{
		a.Master():                     "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\n720p.m3u8\n",
		a.Rendition("720p", 0, ".ts"):  seg,
		a.Manifest():                   `{"id":"secret"}`,
		layout.Asset(pub).Master():     "#EXTM3U\n",
		layout.Asset(enc).Manifest():   `{"id":"` + enc + `","options":{"encryption":"aes-128"}}`,
		layout.Asset(enc).ContentKey(): "0123456789abcdef",
		"uploads/private/talk.mp4":     "source",
	}
	for k, v := range files {
		if err := m.Client.PutBytes(ctx, bucket, k, []byte(v), storage.PutOptions{ContentType: "application/vnd.apple.mpegurl"}); err != nil {
			t.Fatal(err)
		}
	}
	admin := s3iam.NewAdmin(m.Options.Endpoint, m.Options.AccessKey, m.Options.SecretKey)
	if err := admin.Provision(ctx, bucket, "segflow-playback", "playback-secret-1", playback.StorageGrant()); err != nil {
		t.Fatal(err)
	}
	store, err := storage.New(storage.Options{Endpoint: m.Options.Endpoint, AccessKey: "segflow-playback", SecretKey: "playback-secret-1"})
	if err != nil {
		t.Fatal(err)
	}
	signer, _ := playback.NewSigner([]byte("0123456789abcdef0123456789abcdef"))
	s := &playback.Server{Signer: signer, Store: store, Bucket: bucket, Public: "http://" + m.Options.Endpoint + "/" + bucket, TTL: time.Hour}
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	s.Gateway = srv.URL

	get := func(u string, h ...string) (int, string, http.Header) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, u, nil)
		for i := 0; i+1 < len(h); i += 2 {
			req.Header.Set(h[i], h[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), resp.Header
	}
	if code, _, _ := get("http://" + m.Options.Endpoint + "/" + bucket + "/" + a.Master()); code != http.StatusForbidden {
		t.Fatalf("anonymous GET of a private playlist from the bucket = %d, want 403", code)
	}
	if code, _, _ := get(s.Base(pub, 0) + "master.m3u8"); code != http.StatusOK {
		t.Fatalf("public asset at %s = %d", s.Base(pub, 0), code)
	}
	base := s.Base(id, 0)
	if !strings.HasPrefix(base, srv.URL+"/play/") {
		t.Fatalf("private base %q is not the gateway's /play/", base)
	}
	code, body, h := get(base + "master.m3u8")
	if code != http.StatusOK || body != files[a.Master()] || h.Get("Access-Control-Allow-Origin") != "*" || !strings.HasPrefix(h.Get("Cache-Control"), "private, max-age=") {
		t.Fatalf("master through the token = %d %q %v", code, body, h)
	}
	// The playlist's relative URIs resolve under the same token.
	if code, body, _ := get(base + "720p/00000.ts"); code != http.StatusOK || body != seg {
		t.Fatalf("segment = %d (%d bytes)", code, len(body))
	}
	if code, body, h := get(base+"720p/00000.ts", "Range", "bytes=10-19"); code != http.StatusPartialContent || body != "0123456789" || h.Get("Content-Range") == "" {
		t.Fatalf("range = %d %q %v", code, body, h)
	}
	t.Run("issue stream token", func(t *testing.T) {
		code, body, _ := get(srv.URL + "/api/play/live/vip?ttl=2m")
		var out struct {
			WHEP, Token string
			Expires     time.Time
		}
		if err := json.Unmarshal([]byte(body), &out); code != http.StatusOK || err != nil || out.WHEP != srv.URL+"/whep/vip" {
			t.Fatalf("stream token = %d %s", code, body)
		}
		if exp, err := signer.Verify(out.Token, playback.StreamSubject("vip"), time.Now()); err != nil || !exp.Equal(out.Expires) || time.Until(exp) > 2*time.Minute {
			t.Errorf("stream token %q: expires %v (%v), answer says %v", out.Token, exp, err, out.Expires)
		}
		if _, err := signer.Verify(out.Token, "vip", time.Now()); err == nil {
			t.Error("a stream's token passes for an asset of the same name")
		}
		for _, q := range []string{"live/vip?ttl=30d", "live/Bad%2Fname"} {
			if code, _, _ := get(srv.URL + "/api/play/" + q); code != http.StatusBadRequest && code != http.StatusNotFound {
				t.Errorf("issue %s = %d, want 400", q, code)
			}
		}
	})
	t.Run("issue", func(t *testing.T) {
		code, body, _ := get(srv.URL + "/api/play/" + id + "?ttl=90s")
		var out struct {
			URL     string
			Expires time.Time
		}
		if err := json.Unmarshal([]byte(body), &out); code != http.StatusOK || err != nil {
			t.Fatalf("issue = %d %s", code, body)
		}
		if d := time.Until(out.Expires); d < 80*time.Second || d > 91*time.Second {
			t.Fatalf("expires in %s, want 90s", d)
		}
		if code, body, _ := get(out.URL); code != http.StatusOK || body != files[a.Master()] {
			t.Fatalf("issued URL %s = %d", out.URL, code)
		}
		for _, q := range []string{"?ttl=30d", "?ttl=-1s", "?ttl=soon", "?ttl=200h"} {
			if code, _, _ := get(srv.URL + "/api/play/" + id + q); code != http.StatusBadRequest {
				t.Errorf("issue%s = %d, want 400", q, code)
			}
		}
		if code, body, _ := get(srv.URL + "/api/play/" + pub); code != http.StatusOK || strings.Contains(body, "expires") || !strings.Contains(body, m.Options.Endpoint) {
			t.Errorf("public asset's URL = %d %s", code, body)
		}
		// An encrypted public asset is played through the route, which
		// alone hands out its key: no-store, and only under a valid token.
		code, body, _ = get(srv.URL + "/api/play/" + enc + "?ttl=60s")
		if err := json.Unmarshal([]byte(body), &out); code != http.StatusOK || err != nil || !strings.HasPrefix(out.URL, srv.URL+"/play/") || out.Expires.IsZero() {
			t.Fatalf("encrypted asset's URL = %d %s", code, body)
		}
		if b := s.Base(enc, 0); !strings.HasPrefix(b, srv.URL+"/play/") {
			t.Errorf("encrypted asset's base for listings = %s, want the route's", b)
		}
		keyURL := strings.TrimSuffix(out.URL, "master.m3u8") + "key"
		if code, body, h := get(keyURL); code != http.StatusOK || body != "0123456789abcdef" || h.Get("Cache-Control") != "no-store" {
			t.Errorf("key = %d %q %v", code, body, h)
		}
		if code, _, _ := get(srv.URL + "/play/" + signer.Token(enc, time.Now().Add(-time.Second)) + "/" + enc + "/key"); code != http.StatusForbidden {
			t.Errorf("key with an expired token = %d, want 403", code)
		}
		if code, _, _ := get(srv.URL + "/play/" + signer.Token(pub, time.Now().Add(time.Hour)) + "/" + enc + "/key"); code != http.StatusForbidden {
			t.Errorf("key with another asset's token = %d, want 403", code)
		}
		if code, _, _ := get("http://" + m.Options.Endpoint + "/" + bucket + "/" + layout.Asset(enc).ContentKey()); code != http.StatusForbidden {
			t.Errorf("anonymous GET of the key from the bucket = %d, want 403", code)
		}
		// The same key for EME Clear Key (a cbcs asset's players): a JSON
		// Web Key set answering the CDM's request, for this asset's key ID
		// only.
		license := strings.TrimSuffix(out.URL, "master.m3u8") + hls.LicenseURI
		kid := base64.RawURLEncoding.EncodeToString(asset.KeyID(enc))
		post := func(url, body string) (int, string, http.Header) {
			resp, err := http.Post(url, "application/octet-stream", strings.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			return resp.StatusCode, string(b), resp.Header
		}
		code, body, h := post(license, `{"kids":["`+kid+`"],"type":"temporary"}`)
		var set struct {
			Keys []struct{ Kty, KID, K string }
			Type string
		}
		if err := json.Unmarshal([]byte(body), &set); code != http.StatusOK || err != nil || len(set.Keys) != 1 ||
			set.Keys[0].KID != kid || set.Keys[0].Kty != "oct" || set.Type != "temporary" || h.Get("Cache-Control") != "no-store" {
			t.Fatalf("license = %d %s %v", code, body, h)
		}
		if k, err := base64.RawURLEncoding.DecodeString(set.Keys[0].K); err != nil || string(k) != "0123456789abcdef" {
			t.Errorf("license key %q (%v)", set.Keys[0].K, err)
		}
		for _, tc := range []struct {
			name, url, body string
			want            int
		}{
			{"another asset's key ID", license, `{"kids":["` + base64.RawURLEncoding.EncodeToString(asset.KeyID(pub)) + `"]}`, http.StatusNotFound},
			{"not a license request", license, `kids=all`, http.StatusBadRequest},
			{"no key IDs", license, `{"kids":[]}`, http.StatusBadRequest},
			{"an expired token", srv.URL + "/play/" + signer.Token(enc, time.Now().Add(-time.Second)) + "/" + enc + "/license", `{"kids":["` + kid + `"]}`, http.StatusForbidden},
			{"a clear asset", srv.URL + "/play/" + signer.Token(pub, time.Now().Add(time.Hour)) + "/" + pub + "/license",
				`{"kids":["` + base64.RawURLEncoding.EncodeToString(asset.KeyID(pub)) + `"]}`, http.StatusNotFound},
			{"a huge body", license, `{"kids":["` + strings.Repeat("A", 8<<10) + `"]}`, http.StatusBadRequest},
		} {
			if code, body, _ := post(tc.url, tc.body); code != tc.want {
				t.Errorf("license with %s = %d %q, want %d", tc.name, code, body, tc.want)
			}
		}
	})
	tok := strings.Split(strings.TrimPrefix(base, srv.URL+"/play/"), "/")[0]
	expired := srv.URL + "/play/" + signer.Token(id, time.Now().Add(-time.Second)) + "/" + id + "/master.m3u8"
	for _, tc := range []struct {
		name, url string
		want      int
	}{
		{"expired token", expired, http.StatusForbidden},
		{"token of another asset", srv.URL + "/play/" + signer.Token("private_other-1", time.Now().Add(time.Hour)) + "/" + id + "/master.m3u8", http.StatusForbidden},
		{"no token", srv.URL + "/play/" + id + "/master.m3u8", http.StatusForbidden},
		{"the manifest", base + "manifest.json", http.StatusNotFound},
		{"a missing file", base + "1080p/00009.ts", http.StatusNotFound},
		{"out of the asset", base + "..%2F..%2Fuploads%2Fprivate%2Ftalk.mp4", http.StatusNotFound},
		// Public files are public anyway; an encrypted public asset is
		// played this way, for its key.
		{"public asset by token", srv.URL + "/play/" + signer.Token(pub, time.Now().Add(time.Hour)) + "/" + pub + "/master.m3u8", http.StatusOK},
		{"the key of an asset that has none", base + "key", http.StatusNotFound},
		{"a key by another name", base + "..%2F..%2Fkeys%2F" + enc, http.StatusNotFound},
		{"token in another asset's path", srv.URL + "/play/" + tok + "/private_other-1/master.m3u8", http.StatusForbidden},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if code, body, _ := get(tc.url); code != tc.want {
				t.Fatalf("%s = %d %q, want %d", tc.url, code, body, tc.want)
			}
		})
	}
}
