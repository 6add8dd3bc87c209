package handlers

import (
	"net/http"
	"runtime"
	"runtime/debug"

	"github.com/openfaas/faas-provider/types"

	"github.com/segflow/segflow/infra/internal/httpjson"
)

// Version and Commit are set at build time with -ldflags -X (scripts/up.sh
// does); a build without them reports "dev" and the VCS revision Go
// stamped, if any.
var (
	Version = "dev"
	Commit  = ""
)

// GatewayInfo is /system/info as the OpenFaaS gateway answers it (the
// provider's own document nested under "provider"), the shape faas-cli,
// go-sdk and the certifier decode.
type GatewayInfo struct {
	Provider *types.ProviderInfo `json:"provider"`
	Version  *types.VersionInfo  `json:"version"`
	Arch     string              `json:"arch"`
}

// MakeInfoHandler serves GET /system/info. The local runtime is provider
// and gateway in one process, so both carry the same version.
func MakeInfoHandler() http.HandlerFunc {
	v := buildVersion()
	info := GatewayInfo{
		Provider: &types.ProviderInfo{Name: "segflow-local", Orchestration: "process", Version: &v},
		Version:  &v,
		Arch:     runtime.GOARCH,
	}
	return func(w http.ResponseWriter, r *http.Request) {
		httpjson.Write(w, http.StatusOK, info)
	}
}

// buildVersion is the release and the commit the binary was built from.
func buildVersion() types.VersionInfo {
	v := types.VersionInfo{Release: Version, SHA: Commit}
	if v.SHA != "" {
		return v
	}
	v.SHA = "unknown"
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				v.SHA = s.Value
			}
		}
	}
	return v
}
