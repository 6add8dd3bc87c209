package handlers

import (
	"net/http"

	"github.com/segflow/segflow/infra/local"
)

// MakeListHandler serves GET /system/functions.
func MakeListHandler(rt *local.Runtime) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !namespaceOK(w, r) {
			return
		}
		writeJSON(w, http.StatusOK, rt.List())
	}
}
