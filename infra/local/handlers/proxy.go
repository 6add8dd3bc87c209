package handlers

import (
	"net/http"

	"github.com/gorilla/mux"

	"github.com/segflow/segflow/infra/local"
)

// MakeProxyHandler serves /function/{name}[/{params}], the name also as
// NAME.NAMESPACE (go-sdk's and faas-cli's form).
func MakeProxyHandler(rt *local.Runtime) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		v := mux.Vars(r)
		name, err := local.SplitName(v["name"])
		if err != nil {
			http.Error(w, err.Error(), local.StatusOf(err))
			return
		}
		rt.Invoke(w, r, name, v["params"])
	}
}
