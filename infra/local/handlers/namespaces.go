package handlers

import (
	"encoding/json"
	"net/http"

	"github.com/segflow/segflow/infra/local"
)

// MakeNamespacesHandler serves GET /system/namespaces: one namespace.
func MakeNamespacesHandler() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, []string{local.Namespace})
	}
}

// namespaceOK refuses a ?namespace= other than the one that exists.
func namespaceOK(w http.ResponseWriter, r *http.Request) bool {
	if ns := r.URL.Query().Get("namespace"); ns != "" && ns != local.Namespace {
		http.Error(w, "namespace "+ns+" not found", http.StatusBadRequest)
		return false
	}
	return true
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
