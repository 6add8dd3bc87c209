package handlers

import (
	"net/http"

	"github.com/openfaas/faas-provider/types"

	"github.com/segflow/segflow/infra/internal/httpjson"
)

// Version is set at build time with -ldflags.
var Version = "dev"

// MakeInfoHandler serves GET /system/info.
func MakeInfoHandler() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		httpjson.Write(w, http.StatusOK, types.ProviderInfo{
			Name:          "segflow-local",
			Orchestration: "process",
			Version:       &types.VersionInfo{Release: Version, SHA: Version},
		})
	}
}
