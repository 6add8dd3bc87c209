package handlers

import (
	"io"
	"log/slog"
	"net/http"

	"github.com/gorilla/mux"

	"github.com/segflow/segflow/infra/provider"
)

// maxAsyncBody bounds what one queued call may carry.
const maxAsyncBody = 4 << 20

// MakeAsyncHandler serves /async-function/{name}[/{params}]: it queues the
// call durably and answers 202 with X-Call-Id; the result goes to
// X-Callback-Url when given.
func MakeAsyncHandler(rt *provider.Runtime, q *provider.AsyncQueue, log *slog.Logger) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		v := mux.Vars(r)
		name, err := provider.SplitName(v["name"])
		if err == nil {
			_, err = rt.Status(name)
		}
		if err != nil {
			http.Error(w, err.Error(), provider.StatusOf(err))
			return
		}
		body, err := io.ReadAll(io.LimitReader(r.Body, maxAsyncBody+1))
		if err != nil {
			http.Error(w, "read body: "+err.Error(), http.StatusBadRequest)
			return
		}
		if len(body) > maxAsyncBody {
			http.Error(w, "body over 4 MiB: put media in the bucket and send its key", http.StatusRequestEntityTooLarge)
			return
		}
		if cb := r.Header.Get("X-Callback-Url"); cb != "" {
			if err := q.CheckCallback(r.Context(), cb); err != nil {
				log.Warn("async call refused", "function", name, "err", err)
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
		}
		hdr := r.Header.Clone()
		hdr.Del("Authorization")
		id, err := q.Enqueue(r.Context(), provider.AsyncCall{
			ID:          r.Header.Get("X-Call-Id"),
			Function:    name,
			Method:      r.Method,
			Path:        v["params"],
			Query:       r.URL.RawQuery,
			Header:      hdr,
			Body:        body,
			CallbackURL: r.Header.Get("X-Callback-Url"),
		})
		if err != nil {
			log.Error("enqueue", "function", name, "err", err)
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("X-Call-Id", id)
		w.WriteHeader(http.StatusAccepted)
	}
}
