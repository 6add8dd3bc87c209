package router

import (
	"crypto/subtle"
	"io"
	"net/http"
	"strings"
	"time"
)

// maxNotification bounds a webhook body; MinIO sends one record a request.
const maxNotification = 1 << 20

// WebhookHandler takes MinIO's webhook notifications. MinIO gets its 200
// only once every delivery is in JetStream; after a 5xx the catch-up finds
// the write in the bucket.
func (r *Router) WebhookHandler() http.HandlerFunc {
	return func(w http.ResponseWriter, req *http.Request) {
		if !r.authorized(req) {
			r.metrics.unauthorized.Inc()
			r.log.Warn("router: webhook refused: bad or missing token", "remote", req.RemoteAddr)
			w.Header().Set("WWW-Authenticate", `Bearer realm="segflow-router"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		if req.Method != http.MethodPost {
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		body, err := io.ReadAll(io.LimitReader(req.Body, maxNotification+1))
		if err != nil || len(body) > maxNotification {
			http.Error(w, "body unreadable or over 1 MiB", http.StatusBadRequest)
			return
		}
		n, err := ParseNotification(body)
		if err != nil {
			r.metrics.malformed.Inc()
			r.log.Error("router: malformed notification", "err", err, "bytes", len(body))
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		// MinIO drops what it cannot post, so a refusal also marks the
		// bucket for a catch-up.
		if !r.Ready() {
			r.refuse()
			http.Error(w, "subscriptions not loaded yet", http.StatusServiceUnavailable)
			return
		}
		if _, err := r.Ingest(req.Context(), n); err != nil {
			r.refuse()
			r.journalDoubted.Store(true)
			r.log.Error("router: queue", "err", err)
			http.Error(w, "queue unavailable", http.StatusServiceUnavailable)
			return
		}
		for _, rec := range n.Records {
			r.taken(rec.EventTime)
		}
		w.WriteHeader(http.StatusOK)
	}
}

// refuse counts a notification MinIO will drop and marks the bucket for
// a catch-up.
func (r *Router) refuse() {
	r.metrics.refused.Inc()
	r.missed.Store(true)
}

// taken records that MinIO's event of time t is queued.
func (r *Router) taken(t time.Time) {
	ns := t.UnixNano()
	for {
		old := r.newestTaken.Load()
		if ns <= old || r.newestTaken.CompareAndSwap(old, ns) {
			return
		}
	}
}

func (r *Router) authorized(req *http.Request) bool {
	if r.cfg.Token == "" {
		return false // a router without a token accepts nobody
	}
	h := req.Header.Get("Authorization")
	tok, ok := strings.CutPrefix(h, "Bearer ")
	return ok && subtle.ConstantTimeCompare([]byte(tok), []byte(r.cfg.Token)) == 1
}
