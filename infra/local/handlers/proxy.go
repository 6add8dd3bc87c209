package handlers

import (
	"net/http"

	"github.com/gorilla/mux"

	"github.com/segflow/segflow/infra/local"
)

// MakeProxyHandler serves /function/{name}[/{params}].
func MakeProxyHandler(rt *local.Runtime) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		v := mux.Vars(r)
		rt.Invoke(w, r, v["name"], v["params"])
	}
}
