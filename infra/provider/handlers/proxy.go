package handlers

import (
	"net/http"

	"github.com/gorilla/mux"

	"github.com/segflow/segflow/infra/provider"
)

// MakeProxyHandler serves /function/{name}[/{params}], the name also as
// NAME.NAMESPACE (go-sdk's and faas-cli's form).
func MakeProxyHandler(rt *provider.Runtime) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		v := mux.Vars(r)
		name, err := provider.SplitName(v["name"])
		if err != nil {
			http.Error(w, err.Error(), provider.StatusOf(err))
			return
		}
		rt.Invoke(w, r, name, v["params"])
	}
}
