package handlers

import (
	"net/http"

	"github.com/segflow/segflow/infra/internal/httpjson"
	"github.com/segflow/segflow/infra/provider"
)

// MakeListHandler serves GET /system/functions.
func MakeListHandler(rt *provider.Runtime) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !namespaceOK(w, r) {
			return
		}
		httpjson.Write(w, http.StatusOK, rt.List())
	}
}
