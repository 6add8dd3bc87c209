package catalog

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/segflow/segflow/infra/internal/httpjson"
	"github.com/segflow/segflow/shared/layout"
)

// Watch keeps the index in step with the bucket, syncing every interval
// in the background until Close.
func (c *Catalog) Watch(every time.Duration, log *slog.Logger) {
	ctx, cancel := context.WithCancel(context.Background())
	c.stopWatch = cancel
	c.watching.Go(func() { c.watch(ctx, every, log) })
}

func (c *Catalog) watch(ctx context.Context, every time.Duration, log *slog.Logger) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if n, err := c.Sync(ctx); err != nil && ctx.Err() == nil {
			log.Warn("catalog sync", "err", err)
		} else if n > 0 {
			log.Info("catalog indexed", "assets", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// API serves the catalog on the gateway:
//
//	GET /api/assets            assets, newest first, a page at a time (?limit=, default
//	                           100; Link: <...>; rel="next" names the next page)
//	GET /api/assets/<id>       one asset with its tags and playback URL
//	GET /api/search?q=...      hits: asset, time range, snippet, playback URL at that time
type API struct {
	Catalog *Catalog
	// MediaBase is where players fetch the bucket's objects from
	// (http://host:9000/media).
	MediaBase string
	// AssetBase, when set, is the URL an asset's files are under, ending in
	// '/' (playback.Server.Base: signed URLs for private assets).
	AssetBase func(id string) string
}

// Playback is the master playlist URL of an asset.
func (a *API) Playback(id string) string {
	if a.AssetBase != nil {
		return a.AssetBase(id) + "master.m3u8"
	}
	return strings.TrimRight(a.MediaBase, "/") + "/" + layout.Asset(id).Master()
}

// Handler routes /api/.
func (a *API) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/assets", func(w http.ResponseWriter, r *http.Request) {
		limit, _ := strconv.Atoi(r.URL.Query().Get("limit"))
		list, next, err := a.Catalog.Assets(r.Context(), AssetsPage{Limit: limit, After: r.URL.Query().Get("after")})
		if errors.Is(err, ErrBadCursor) {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		if next != "" {
			// The next page, as GitHub's API links it.
			u := url.URL{Path: "/api/assets", RawQuery: url.Values{"limit": {strconv.Itoa(len(list))}, "after": {next}}.Encode()}
			w.Header().Set("Link", "<"+u.String()+`>; rel="next"`)
		}
		type item struct {
			Asset
			Playback string `json:"playback"`
		}
		out := make([]item, 0, len(list))
		for _, as := range list {
			out = append(out, item{as, a.Playback(as.ID)})
		}
		httpjson.Write(w, http.StatusOK, out)
	})
	mux.HandleFunc("GET /api/assets/{id}", func(w http.ResponseWriter, r *http.Request) {
		d, err := a.Catalog.Get(r.Context(), r.PathValue("id"))
		if errors.Is(err, ErrNotFound) {
			http.Error(w, err.Error(), http.StatusNotFound)
			return
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		httpjson.Write(w, http.StatusOK, struct {
			*Detail
			Playback string `json:"playback"`
		}{d, a.Playback(d.ID)})
	})
	mux.HandleFunc("GET /api/search", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query().Get("q")
		if strings.TrimSpace(q) == "" {
			http.Error(w, "q is required", http.StatusBadRequest)
			return
		}
		limit, _ := strconv.Atoi(r.URL.Query().Get("limit"))
		hits, err := a.Catalog.Search(r.Context(), q, limit)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		type result struct {
			Hit
			Playback string `json:"playback"`
		}
		out := make([]result, 0, len(hits))
		for _, h := range hits {
			// A media fragment: players that honour #t start there.
			out = append(out, result{h, fmt.Sprintf("%s#t=%.3f", a.Playback(h.Asset), h.Start)})
		}
		httpjson.Write(w, http.StatusOK, out)
	})
	return mux
}
