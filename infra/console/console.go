// Package console is segflow's web console, served by the gateway at /ui:
// drag-and-drop upload straight to the bucket (presigned multipart,
// resumable), the asset list with a live per-segment stage grid, the dead
// letters with replay, an hls.js player with scrub previews, captions and
// tags on the timeline, tag search that seeks the player, and a Go live
// page that publishes the browser's camera over WHIP.
//
// The pages are embedded in the segflow binary; hls.js comes from npm
// (web/package.json) and is copied into web/static/vendor by
// scripts/setup.sh, so nobody builds the console by hand.
package console

import (
	"embed"
	"io/fs"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/segflow/segflow/infra/internal/httpjson"
	"github.com/segflow/segflow/shared/storage"
)

//go:embed web/static
var static embed.FS

// Console serves the UI and the small API its pages call.
type Console struct {
	Store  *storage.Client
	Bucket string
	// MediaBase is where the browser reads the bucket's public assets/
	// objects (playlists, segments, sprites, tags): http://host:9000/media.
	MediaBase string
	// AssetBase is the URL an asset's files are under for the browser,
	// ending in '/' (playback.Server.Base): MediaBase's assets/<id>/ for a
	// public asset, a signed gateway URL for a private one.
	AssetBase func(id string) string
	// WHIPURL is the relay's WHIP endpoint the Go live page publishes to:
	// a path on the gateway (/whip) or another origin's URL. Empty: the
	// page says there is none.
	WHIPURL string
	// WHEPURL is where live streams are watched over WebRTC: the WHEP
	// endpoints' base (/whep: /whep/<stream>). Empty: HLS only.
	WHEPURL string
	// WHEPToken is a token for a private stream's WHEP endpoint
	// (playback.Server.StreamToken); nil: private streams play over HLS
	// only.
	WHEPToken func(stream string) string
	// PartSize is the multipart part size (default 8 MiB; S3's minimum is
	// 5 MiB for every part but the last).
	PartSize int64
	// URLExpiry is how long a presigned part URL stays valid (default 1 h).
	URLExpiry time.Duration
	// ClaimExpiry is how long a claim on an upload key holds without the
	// upload completing (default 24 h, when MinIO drops stale multipart
	// uploads): after it the name is free again.
	ClaimExpiry time.Duration
}

// Handler serves everything under /ui/. The caller puts it behind the
// gateway's basic auth: the console can upload and replay dead letters.
func (c *Console) Handler() http.Handler {
	mux := http.NewServeMux()
	files, _ := fs.Sub(static, "web/static")
	mux.Handle("GET /ui/", http.StripPrefix("/ui/", noCache(http.FileServerFS(files))))
	mux.HandleFunc("GET /ui/api/config", c.config)
	mux.HandleFunc("POST /ui/api/uploads", c.createUpload)
	mux.HandleFunc("GET /ui/api/uploads/parts", c.listParts)
	mux.HandleFunc("POST /ui/api/uploads/sign", c.signPart)
	mux.HandleFunc("POST /ui/api/uploads/complete", c.completeUpload)
	mux.HandleFunc("GET /ui/api/status/{id}", c.status)
	mux.HandleFunc("GET /ui/api/media/{id}", c.media)
	mux.HandleFunc("GET /ui/api/tags/{id}", c.tags)
	return c.securityHeaders(mux)
}

// securityHeaders keeps the console's pages from being framed (clickjacking
// a replay button), from running any script but its own, and from sending
// its URLs to other sites. The player and the uploads talk to the bucket at
// MediaBase's origin; hls.js runs its demuxer in a blob: worker and plays
// through a blob: MediaSource URL.
func (c *Console) securityHeaders(next http.Handler) http.Handler {
	media, whip := origin(c.MediaBase), origin(c.WHIPURL)
	if whip == media {
		whip = ""
	}
	if whep := origin(c.WHEPURL); whep != media && whep != whip {
		whip += whep
	}
	csp := "default-src 'self'; script-src 'self'; style-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; " +
		"frame-ancestors 'none'; img-src 'self' data: blob:" + media + "; media-src 'self' blob:" + media +
		"; connect-src 'self'" + media + whip + "; worker-src 'self' blob:"
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", csp)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		next.ServeHTTP(w, r)
	})
}

// origin is a URL's " scheme://host" for a CSP source list; "" for a
// path or nothing.
func origin(raw string) string {
	if u, err := url.Parse(raw); err == nil && u.Host != "" {
		return " " + u.Scheme + "://" + u.Host
	}
	return ""
}

// noCache makes browsers revalidate the pages, so a new segflow binary's
// console is what they run.
func noCache(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.URL.Path, "vendor/") {
			w.Header().Set("Cache-Control", "no-cache")
		}
		next.ServeHTTP(w, r)
	})
}

// config tells the pages where media is.
func (c *Console) config(w http.ResponseWriter, r *http.Request) {
	httpjson.Write(w, http.StatusOK, map[string]any{"mediaBase": strings.TrimRight(c.MediaBase, "/"), "bucket": c.Bucket, "whip": c.WHIPURL})
}

func putOptions(contentType string) storage.PutOptions {
	if contentType == "" {
		contentType = "application/octet-stream"
	}
	return storage.PutOptions{ContentType: contentType}
}
