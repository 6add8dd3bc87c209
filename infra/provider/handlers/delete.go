package handlers

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"

	"github.com/openfaas/faas-provider/types"

	"github.com/segflow/segflow/infra/provider"
)

// MakeDeleteHandler serves DELETE /system/functions.
func MakeDeleteHandler(rt *provider.Runtime, log *slog.Logger) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var req types.DeleteFunctionRequest
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<16))
		if err == nil {
			err = json.Unmarshal(body, &req)
		}
		if err != nil || req.FunctionName == "" {
			http.Error(w, "invalid delete request: functionName is required", http.StatusBadRequest)
			return
		}
		if err := rt.Delete(req.FunctionName); err != nil {
			http.Error(w, err.Error(), provider.StatusOf(err))
			return
		}
		log.Info("deleted", "function", req.FunctionName)
		w.WriteHeader(http.StatusAccepted)
	}
}
