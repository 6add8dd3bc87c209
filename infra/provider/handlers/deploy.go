// Package handlers holds the OpenFaaS provider REST handlers of the local
// runtime, one verb per file as faasd lays them out. Each factory takes the
// runtime as its one dependency.
package handlers

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"

	"github.com/openfaas/faas-provider/types"

	"github.com/segflow/segflow/infra/provider"
)

// MakeDeployHandler serves POST /system/functions.
func MakeDeployHandler(rt *provider.Runtime, log *slog.Logger) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		dep, ok := decodeDeployment(w, r)
		if !ok {
			return
		}
		if err := rt.Deploy(r.Context(), dep); err != nil {
			log.Error("deploy", "function", dep.Service, "err", err)
			http.Error(w, err.Error(), provider.StatusOf(err))
			return
		}
		log.Info("deployed", "function", dep.Service, "image", dep.Image)
		w.WriteHeader(http.StatusAccepted)
	}
}

func decodeDeployment(w http.ResponseWriter, r *http.Request) (types.FunctionDeployment, bool) {
	var dep types.FunctionDeployment
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err == nil {
		err = json.Unmarshal(body, &dep)
	}
	if err != nil {
		http.Error(w, "invalid deployment request: "+err.Error(), http.StatusBadRequest)
		return dep, false
	}
	if err := provider.ValidateDeployment(dep); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return dep, false
	}
	return dep, true
}
