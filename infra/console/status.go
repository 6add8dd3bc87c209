package console

import (
	"errors"
	"net/http"

	"strings"

	"github.com/segflow/segflow/shared/asset"
	"github.com/segflow/segflow/shared/layout"
	"github.com/segflow/segflow/shared/storage"
)

// status serves an asset's status.json (the stage grid's source); 404
// until split has written one.
func (c *Console) status(w http.ResponseWriter, r *http.Request) {
	s, err := asset.ReadStatus(r.Context(), c.Store, c.Bucket, r.PathValue("id"))
	switch {
	case errors.Is(err, storage.ErrNotFound):
		writeError(w, http.StatusNotFound, err)
	case err != nil:
		writeError(w, http.StatusBadGateway, err)
	default:
		writeJSON(w, http.StatusOK, s)
	}
}

// media gives the browser the URLs of an asset's playable objects, so the
// pages never spell out the bucket layout themselves.
func (c *Console) media(w http.ResponseWriter, r *http.Request) {
	a := layout.Asset(r.PathValue("id"))
	base := strings.TrimRight(c.MediaBase, "/") + "/"
	writeJSON(w, http.StatusOK, map[string]string{
		"master":     base + a.Master(),
		"storyboard": base + a.Thumb("storyboard.vtt"),
		"poster":     base + a.Thumb("poster.jpg"),
		"tags":       base + a.Tags(-1),
	})
}
