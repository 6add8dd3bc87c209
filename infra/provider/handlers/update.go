package handlers

import (
	"errors"
	"log/slog"
	"net/http"

	"github.com/segflow/segflow/infra/provider"
)

// MakeUpdateHandler serves PUT /system/functions; 404 when the function
// does not exist, which is faas-cli's cue to POST a deploy instead.
func MakeUpdateHandler(rt *provider.Runtime, log *slog.Logger) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		dep, ok := decodeDeployment(w, r)
		if !ok {
			return
		}
		if err := rt.Update(r.Context(), dep); err != nil {
			if errors.Is(err, provider.ErrNotFound) {
				// faas-cli's deploy asks for an update first; 404 sends it to POST.
				log.Info("update of a function not deployed yet", "function", dep.Service)
			} else {
				log.Error("update", "function", dep.Service, "err", err)
			}
			http.Error(w, err.Error(), provider.StatusOf(err))
			return
		}
		log.Info("updated", "function", dep.Service, "image", dep.Image)
		w.WriteHeader(http.StatusAccepted)
	}
}
