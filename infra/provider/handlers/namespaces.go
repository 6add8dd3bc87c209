package handlers

import (
	"net/http"

	"github.com/segflow/segflow/infra/internal/httpjson"
	"github.com/segflow/segflow/infra/provider"
)

// MakeNamespacesHandler serves GET /system/namespaces: one namespace.
func MakeNamespacesHandler() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		httpjson.Write(w, http.StatusOK, []string{provider.Namespace})
	}
}

// namespaceOK refuses a ?namespace= other than the one that exists.
func namespaceOK(w http.ResponseWriter, r *http.Request) bool {
	if ns := r.URL.Query().Get("namespace"); ns != "" && ns != provider.Namespace {
		http.Error(w, "namespace "+ns+" not found", http.StatusBadRequest)
		return false
	}
	return true
}
