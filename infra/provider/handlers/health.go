package handlers

import (
	"net/http"

	"github.com/segflow/segflow/shared/telemetry"
)

// MakeHealthHandler serves /healthz; check reports a dependency that is down.
func MakeHealthHandler(check func() error) http.HandlerFunc {
	return telemetry.HealthHandler(check)
}
