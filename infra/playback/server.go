package playback

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/segflow/segflow/infra/internal/httpjson"
	"github.com/segflow/segflow/infra/s3iam"
	"github.com/segflow/segflow/shared/asset"
	"github.com/segflow/segflow/shared/config"
	"github.com/segflow/segflow/shared/hls"
	"github.com/segflow/segflow/shared/layout"
	"github.com/segflow/segflow/shared/storage"
)

// Server hands out asset URLs and serves private and encrypted assets'
// files, and encrypted ones' keys, to players with a valid token.
type Server struct {
	Signer *Signer
	// Store reads the bucket, signed in as a user that may read assets
	// and content keys and nothing else (StorageGrant).
	Store  *storage.Client
	Bucket string
	// Public is where the bucket serves public assets (http://host:9000/media).
	Public string
	// Gateway is this server's base URL (http://127.0.0.1:8080).
	Gateway string
	// TTL is how long a URL from Base stays valid.
	TTL time.Duration
	Log *slog.Logger
	// client fetches from the bucket; nil uses a default with timeouts.
	client *http.Client
	// encrypted remembers, per asset id, the encryption its manifest
	// asks for (an asset's options never change once split wrote them),
	// so listings do not read every manifest every time.
	encrypted sync.Map
}

// StorageGrant is what the playback route reads: assets (the private ones
// for their files; every asset's manifest, to know an encrypted one) and
// content keys.
func StorageGrant() s3iam.Grant {
	return s3iam.Grant{Read: []string{layout.AssetsPrefix + "*", layout.KeysPrefix + "*"}}
}

// Base is the URL asset id's files are under, ending in '/': the bucket's
// assets/<id>/ for a public asset, and for a private or encrypted one the
// gateway's /play/<token>/<id>/, valid for ttl (s.TTL when 0).
func (s *Server) Base(id string, ttl time.Duration) string {
	if ttl <= 0 {
		ttl = s.TTL
	}
	// Callers (catalog listings, the console) hold no request context
	// here; one manifest read per asset, once, is bounded instead.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return s.baseUntil(ctx, id, time.Now().Add(ttl))
}

func (s *Server) baseUntil(ctx context.Context, id string, exp time.Time) string {
	if !layout.Private(id) && !s.isEncrypted(ctx, id) {
		return strings.TrimRight(s.Public, "/") + "/" + layout.Asset(id).Prefix()
	}
	return s.playURL(id, exp)
}

// isEncrypted says whether public asset id is encrypted: its files are in
// the open but its key is not, so players come through the route. An
// asset whose manifest cannot be read (not split yet) counts as clear
// and is asked again next time.
func (s *Server) isEncrypted(ctx context.Context, id string) bool {
	return s.encryption(ctx, id) != ""
}

// encryption is asset id's encryption scheme (asset.EncryptionAES128,
// asset.EncryptionCBCS), "" for a clear asset or one not split yet.
func (s *Server) encryption(ctx context.Context, id string) string {
	if v, ok := s.encrypted.Load(id); ok {
		return v.(string)
	}
	m, err := asset.ReadManifest(ctx, s.Store, s.Bucket, id)
	if err != nil {
		return ""
	}
	s.encrypted.Store(id, m.Options.Encryption)
	return m.Options.Encryption
}

// playURL is the route's base for asset id, signed until exp.
func (s *Server) playURL(id string, exp time.Time) string {
	return strings.TrimRight(s.Gateway, "/") + "/play/" + s.Signer.Token(id, exp) + "/" + id + "/"
}

// playable are the kinds of file a player (or a page showing an asset)
// asks for; the manifest, status and per-stage documents stay unserved.
var playable = map[string]bool{".m3u8": true, ".mpd": true, ".ts": true, ".m4s": true, ".mp4": true, ".aac": true,
	".vtt": true, ".jpg": true, ".png": true, ".webp": true}

// Handler serves GET and HEAD /play/<token>/<id>/<file...> to anyone
// with a token (an encrypted asset's key as <file> "key", which is what
// its playlists' relative EXT-X-KEY URI resolves to), POST
// /play/<token>/<id>/license (a cbcs asset's key for EME Clear Key), and GET
// /api/play/<id>?ttl= (issue) and /api/play/live/<stream>?ttl=
// (issueStream), which the caller puts behind the gateway's auth.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /play/{token}/{id}/{file...}", s.serve)
	mux.HandleFunc("POST /play/{token}/{id}/"+hls.LicenseURI, s.license)
	mux.HandleFunc("GET /api/play/{id}", s.issue)
	mux.HandleFunc("GET /api/play/live/{stream}", s.issueStream)
	mux.HandleFunc("OPTIONS /play/", func(w http.ResponseWriter, r *http.Request) {
		cors(w.Header())
		w.Header().Set("Access-Control-Allow-Methods", "GET, HEAD, POST")
		w.Header().Set("Access-Control-Allow-Headers", "Range, Content-Type")
		w.WriteHeader(http.StatusNoContent)
	})
	return mux
}

func cors(h http.Header) {
	// The token is the credential, so any page may play with it; nothing
	// here reads cookies or basic auth.
	h.Set("Access-Control-Allow-Origin", "*")
	h.Set("Access-Control-Expose-Headers", "Content-Length, Content-Range")
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	cors(w.Header())
	id, file := r.PathValue("id"), r.PathValue("file")
	if strings.Contains(id, "/") {
		http.Error(w, "no such asset", http.StatusNotFound)
		return
	}
	exp, err := s.Signer.Verify(r.PathValue("token"), id, time.Now())
	if err != nil {
		// Forbidden either way; the body says which, for the one who
		// shares a link that has run out.
		http.Error(w, err.Error(), http.StatusForbidden)
		return
	}
	key := layout.Asset(id).Prefix() + file
	switch {
	case file == hls.KeyURI:
		// The key never reaches a cache: each player fetches it with a
		// token of its own.
		key = layout.Asset(id).ContentKey()
		w.Header().Set("Cache-Control", "no-store")
	case file == "" || path.Clean("/"+file) != "/"+file || !playable[path.Ext(file)]:
		http.Error(w, "no such file", http.StatusNotFound)
		return
	}
	if storage.ValidKey(key) != nil {
		http.Error(w, "no such file", http.StatusNotFound)
		return
	}
	s.proxy(w, r, key, exp)
}

// proxy fetches key with a presigned URL (the player's Range and
// conditional headers go along) and streams the answer back.
func (s *Server) proxy(w http.ResponseWriter, r *http.Request, key string, exp time.Time) {
	u, err := s.Store.Presign(r.Context(), r.Method, s.Bucket, key, time.Minute)
	if err != nil {
		http.Error(w, "storage: "+err.Error(), http.StatusBadGateway)
		return
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, r.Method, u.String(), nil)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	for _, h := range []string{"Range", "If-Range", "If-None-Match", "If-Modified-Since"} {
		if v := r.Header.Get(h); v != "" {
			req.Header.Set(h, v)
		}
	}
	c := s.client
	if c == nil {
		c = &http.Client{Timeout: 5 * time.Minute}
	}
	resp, err := c.Do(req)
	if err != nil {
		http.Error(w, "storage: "+err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotFound:
		http.Error(w, "no such file", http.StatusNotFound)
		return
	case resp.StatusCode >= 400 && resp.StatusCode != http.StatusRequestedRangeNotSatisfiable:
		if s.Log != nil {
			s.Log.Error("playback: storage refused", "key", key, "status", resp.StatusCode)
		}
		http.Error(w, "storage: "+resp.Status, http.StatusBadGateway)
		return
	}
	for _, h := range []string{"Content-Type", "Content-Length", "Content-Range", "Accept-Ranges", "ETag", "Last-Modified"} {
		if v := resp.Header.Get(h); v != "" {
			w.Header().Set(h, v)
		}
	}
	// Caches may keep it no longer than the token lives.
	if w.Header().Get("Cache-Control") == "" {
		maxAge := max(0, int(time.Until(exp).Seconds()))
		w.Header().Set("Cache-Control", "private, max-age="+strconv.Itoa(maxAge))
	}
	w.WriteHeader(resp.StatusCode)
	if r.Method != http.MethodHead {
		_, _ = io.Copy(w, resp.Body)
	}
}

// MaxTTL bounds what IssueHandler signs: a link that never ends is a
// public asset by another name.
const MaxTTL = 7 * 24 * time.Hour

// ttl is the request's ?ttl= (s.TTL when none); false after answering 400.
func (s *Server) ttl(w http.ResponseWriter, r *http.Request) (time.Duration, bool) {
	v := r.URL.Query().Get("ttl")
	if v == "" {
		return s.TTL, true
	}
	d, err := config.ParseDuration(v)
	if err != nil || d <= 0 || d > MaxTTL {
		httpjson.Error(w, http.StatusBadRequest, fmt.Errorf("ttl %q: want a duration up to %s", v, MaxTTL))
		return 0, false
	}
	return d, true
}

// StreamToken is a token that lets WebRTC (WHEP) viewers into live
// stream name until it expires, ttl from now (s.TTL when 0).
func (s *Server) StreamToken(name string, ttl time.Duration) (string, time.Time) {
	if ttl <= 0 {
		ttl = s.TTL
	}
	exp := time.Now().Add(ttl).Truncate(time.Second).UTC()
	return s.Signer.Token(StreamSubject(name), exp), exp
}

// issueStream answers GET /api/play/live/{stream}?ttl=2h with the
// stream's WHEP endpoint on the gateway and a token for it, which a
// private stream asks for (Authorization: Bearer) and a public one
// ignores.
func (s *Server) issueStream(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("stream")
	if storage.ValidKey(layout.Channel(name).Master()) != nil || strings.ContainsAny(name, "/\\") {
		httpjson.Error(w, http.StatusBadRequest, fmt.Errorf("stream %q", name))
		return
	}
	ttl, ok := s.ttl(w, r)
	if !ok {
		return
	}
	token, exp := s.StreamToken(name, ttl)
	httpjson.Write(w, http.StatusOK, struct {
		WHEP    string    `json:"whep"`
		Token   string    `json:"token"`
		Expires time.Time `json:"expires"`
	}{strings.TrimRight(s.Gateway, "/") + "/whep/" + name, token, exp})
}

// issue answers GET /api/play/{id}?ttl=2h with the asset's master
// playlist URL, when it stops working (never, for a public asset) and, for
// a cbcs asset, its license URL.
func (s *Server) issue(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if id == "" || strings.ContainsAny(id, "/\\") || storage.ValidKey(layout.Asset(id).Master()) != nil {
		httpjson.Error(w, http.StatusBadRequest, fmt.Errorf("asset id %q", id))
		return
	}
	ttl, ok := s.ttl(w, r)
	if !ok {
		return
	}
	exp := time.Now().Add(ttl).Truncate(time.Second).UTC()
	base := s.baseUntil(r.Context(), id, exp)
	out := struct {
		URL     string     `json:"url"`
		Expires *time.Time `json:"expires,omitempty"`
		// License is where EME Clear Key players get a cbcs asset's key
		// (hls.js drmSystems licenseUrl, dash.js protData serverURL).
		License string `json:"license,omitempty"`
	}{URL: base + "master.m3u8"}
	if layout.Private(id) || s.isEncrypted(r.Context(), id) {
		out.Expires = &exp
	}
	if s.encryption(r.Context(), id) == asset.EncryptionCBCS {
		out.License = base + hls.LicenseURI
	}
	httpjson.Write(w, http.StatusOK, out)
}
