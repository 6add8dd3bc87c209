package handlers

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"

	"github.com/openfaas/faas-provider/types"

	"github.com/segflow/segflow/infra/internal/httpjson"
	"github.com/segflow/segflow/infra/provider"
)

// MakeSecretHandler serves /system/secrets: GET lists names (never values),
// POST creates, PUT updates, DELETE removes.
func MakeSecretHandler(rt *provider.Runtime, log *slog.Logger) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !namespaceOK(w, r) {
			return
		}
		if r.Method == http.MethodGet {
			names, err := rt.SecretNames()
			if err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			out := make([]types.Secret, 0, len(names))
			for _, n := range names {
				out = append(out, types.Secret{Name: n, Namespace: provider.Namespace})
			}
			httpjson.Write(w, http.StatusOK, out)
			return
		}
		var s types.Secret
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err == nil {
			err = json.Unmarshal(body, &s)
		}
		if err != nil || s.Name == "" {
			http.Error(w, "invalid secret request: name is required", http.StatusBadRequest)
			return
		}
		value := s.RawValue
		if len(value) == 0 {
			value = []byte(s.Value)
		}
		switch r.Method {
		case http.MethodPost:
			err = rt.PutSecret(s.Name, value, true)
		case http.MethodPut:
			err = rt.PutSecret(s.Name, value, false)
		case http.MethodDelete:
			err = rt.DeleteSecret(s.Name)
		default:
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		switch {
		case provider.IsSecretExists(err):
			http.Error(w, err.Error(), http.StatusConflict)
		case provider.IsSecretNotFound(err):
			http.Error(w, err.Error(), http.StatusNotFound)
		case err != nil:
			http.Error(w, err.Error(), http.StatusBadRequest)
		default:
			log.Info("secret changed", "secret", s.Name, "method", r.Method)
			w.WriteHeader(http.StatusOK)
		}
	}
}
