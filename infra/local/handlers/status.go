package handlers

import (
	"net/http"

	"github.com/gorilla/mux"

	"github.com/segflow/segflow/infra/internal/httpjson"
	"github.com/segflow/segflow/infra/local"
)

// MakeStatusHandler serves GET /system/function/{name}.
func MakeStatusHandler(rt *local.Runtime) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !namespaceOK(w, r) {
			return
		}
		st, err := rt.Status(mux.Vars(r)["name"])
		if err != nil {
			http.Error(w, err.Error(), local.StatusOf(err))
			return
		}
		httpjson.Write(w, http.StatusOK, st)
	}
}
