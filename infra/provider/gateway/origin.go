package gateway

import (
	"mime"
	"net/http"
	"net/url"
	"strings"
)

// sameOriginWrites refuses what a page on another site could make a
// browser send with the gateway's cached basic-auth credentials: a
// state-changing request (POST, PUT, PATCH, DELETE) to /system/ or /ui/
// whose Origin (or Sec-Fetch-Site) names another site, or whose body is not
// JSON (an HTML form can post text/plain or form data cross-site without a
// preflight; it cannot post application/json). Clients that are not
// browsers (faas-cli, go-sdk, curl) send no Origin and JSON bodies, and
// pass. /function/ calls need no credentials, so CSRF gains nothing there.
func sameOriginWrites(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !stateChanging(r) {
			next.ServeHTTP(w, r)
			return
		}
		if o := r.Header.Get("Origin"); o != "" && !sameHost(o, r.Host) {
			http.Error(w, "cross-origin request refused: Origin "+o+" is not this gateway", http.StatusForbidden)
			return
		}
		if r.Header.Get("Sec-Fetch-Site") == "cross-site" {
			http.Error(w, "cross-site request refused", http.StatusForbidden)
			return
		}
		if r.ContentLength != 0 {
			mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
			if mt != "application/json" {
				http.Error(w, "a request body must be application/json", http.StatusUnsupportedMediaType)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

func stateChanging(r *http.Request) bool {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return false
	}
	return strings.HasPrefix(r.URL.Path, "/system/") || strings.HasPrefix(r.URL.Path, "/ui/")
}

// sameHost says whether an Origin header names host (host[:port]).
func sameHost(origin, host string) bool {
	u, err := url.Parse(origin)
	return err == nil && u.Host != "" && strings.EqualFold(u.Host, host)
}
