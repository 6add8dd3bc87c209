package console

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/segflow/segflow/infra/internal/httpjson"
	"github.com/segflow/segflow/shared/asset"
	"github.com/segflow/segflow/shared/layout"
	"github.com/segflow/segflow/shared/storage"
	"github.com/segflow/segflow/shared/tagging"
)

// status serves an asset's status.json (the stage grid's source); 404
// until split has written one.
func (c *Console) status(w http.ResponseWriter, r *http.Request) {
	s, err := asset.ReadStatus(r.Context(), c.Store, c.Bucket, r.PathValue("id"))
	switch {
	case errors.Is(err, storage.ErrNotFound):
		httpjson.Error(w, http.StatusNotFound, err)
	case err != nil:
		httpjson.Error(w, http.StatusBadGateway, err)
	default:
		httpjson.Write(w, http.StatusOK, s)
	}
}

// media gives the browser the URLs of an asset's playable objects, so the
// pages never spell out the bucket layout themselves.
func (c *Console) media(w http.ResponseWriter, r *http.Request) {
	a := layout.Asset(r.PathValue("id"))
	base := strings.TrimRight(c.MediaBase, "/") + "/"
	httpjson.Write(w, http.StatusOK, map[string]string{
		"master":     base + a.Master(),
		"storyboard": base + a.Thumb("storyboard.vtt"),
		"poster":     base + a.Thumb("poster.jpg"),
		"tags":       base + a.Tags(-1),
	})
}

// tags serves what aitag merged for the asset (tags/asset.json) and the
// asset's duration, for the timeline. Before aitag has run, or for an asset
// that failed, that is an empty list, not an error.
func (c *Console) tags(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	out := struct {
		Duration float64       `json:"duration"`
		Tags     []tagging.Tag `json:"tags"`
	}{Tags: []tagging.Tag{}}
	if m, err := asset.ReadManifest(r.Context(), c.Store, c.Bucket, id); err == nil {
		out.Duration = m.Duration
	} else if !errors.Is(err, storage.ErrNotFound) {
		httpjson.Error(w, http.StatusBadGateway, err)
		return
	}
	b, err := c.Store.GetBytes(r.Context(), c.Bucket, layout.Asset(id).Tags(-1))
	switch {
	case errors.Is(err, storage.ErrNotFound):
	case err != nil:
		httpjson.Error(w, http.StatusBadGateway, err)
		return
	default:
		var merged struct {
			Tags []tagging.Tag `json:"tags"`
		}
		if err := json.Unmarshal(b, &merged); err != nil {
			httpjson.Error(w, http.StatusBadGateway, fmt.Errorf("tags of %s: %w", id, err))
			return
		}
		if merged.Tags != nil {
			out.Tags = merged.Tags
		}
	}
	httpjson.Write(w, http.StatusOK, out)
}
