package handlers

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"

	"github.com/gorilla/mux"
	"github.com/openfaas/faas-provider/types"

	"github.com/segflow/segflow/infra/provider"
)

// MakeScaleHandler serves POST /system/scale-function/{name}.
func MakeScaleHandler(rt *provider.Runtime, log *slog.Logger) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		name := mux.Vars(r)["name"]
		var req types.ScaleServiceRequest
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<16))
		if err == nil {
			err = json.Unmarshal(body, &req)
		}
		if err != nil {
			http.Error(w, "invalid scale request: "+err.Error(), http.StatusBadRequest)
			return
		}
		if req.ServiceName != "" && req.ServiceName != name {
			http.Error(w, "serviceName does not match the path", http.StatusBadRequest)
			return
		}
		if err := rt.Scale(name, req.Replicas); err != nil {
			http.Error(w, err.Error(), provider.StatusOf(err))
			return
		}
		log.Info("scaled", "function", name, "replicas", req.Replicas)
		w.WriteHeader(http.StatusAccepted)
	}
}
