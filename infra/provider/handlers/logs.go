package handlers

import (
	"net/http"
	"time"

	"github.com/openfaas/faas-provider/logs"

	"github.com/segflow/segflow/infra/provider"
)

// MakeLogHandler serves GET /system/logs with faas-provider's streaming
// handler over the runtime's per-function log files. A function that does
// not exist is a 404, not an empty stream.
func MakeLogHandler(rt *provider.Runtime) http.HandlerFunc {
	stream := logs.NewLogHandlerFunc(rt.Logs(), 30*time.Minute)
	return func(w http.ResponseWriter, r *http.Request) {
		if !namespaceOK(w, r) {
			return
		}
		if name := r.URL.Query().Get("name"); name != "" {
			if _, err := rt.Status(name); err != nil {
				http.Error(w, err.Error(), provider.StatusOf(err))
				return
			}
		}
		stream(w, r)
	}
}
