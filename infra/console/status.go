package console

import (
	"errors"
	"net/http"

	"github.com/segflow/segflow/shared/asset"
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
