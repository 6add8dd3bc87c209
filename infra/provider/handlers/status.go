package handlers

import (
	"net/http"

	"github.com/gorilla/mux"

	"github.com/segflow/segflow/infra/internal/httpjson"
	"github.com/segflow/segflow/infra/provider"
)

// MakeStatusHandler serves GET /system/function/{name}.
func MakeStatusHandler(rt *provider.Runtime) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !namespaceOK(w, r) {
			return
		}
		st, err := rt.Status(mux.Vars(r)["name"])
		if err != nil {
			http.Error(w, err.Error(), provider.StatusOf(err))
			return
		}
		httpjson.Write(w, http.StatusOK, st)
	}
}
