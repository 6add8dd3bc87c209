package handlers

import (
	"net/http"
	"time"

	"github.com/openfaas/faas-provider/logs"

	"github.com/segflow/segflow/infra/local"
)

// MakeLogHandler serves GET /system/logs with faas-provider's streaming
// handler over the runtime's per-function log files.
func MakeLogHandler(rt *local.Runtime) http.HandlerFunc {
	return logs.NewLogHandlerFunc(rt.Logs(), 30*time.Minute)
}
