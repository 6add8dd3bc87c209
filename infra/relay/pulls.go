package relay

import (
	"encoding/json"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"slices"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"

	"github.com/segflow/segflow/infra/relay/publish"
	"github.com/segflow/segflow/infra/relay/pull"
)

// pullsPoll is how often the pulls file is looked at for changes.
const pullsPoll = 2 * time.Second

// watchPulls keeps one puller per source of the pulls file, starting and
// stopping them as lines come and go, until the relay closes.
func (r *Relay) watchPulls(path string) {
	defer r.pullsDone.Done()
	var mod time.Time
	var size int64 = -1
	tick := time.NewTicker(pullsPoll)
	defer tick.Stop()
	for {
		fi, err := os.Stat(path)
		switch {
		case err == nil && (fi.ModTime() != mod || fi.Size() != size):
			mod, size = fi.ModTime(), fi.Size()
			r.loadPulls(path)
		case os.IsNotExist(err) && size != -1:
			mod, size = time.Time{}, -1
			r.loadPulls(path)
		}
		select {
		case <-r.pullsStop:
			r.setPulls(nil)
			return
		case <-tick.C:
		}
	}
}

func (r *Relay) loadPulls(path string) {
	srcs, err := pull.LoadFile(path)
	if err != nil {
		// A broken file changes nothing: the pulls running go on.
		r.log.Error("relay: pulls file", "err", err.Error())
		return
	}
	r.setPulls(srcs)
}

// setPulls makes the running pulls those of srcs: a source whose URL
// changed restarts.
func (r *Relay) setPulls(srcs []pull.Source) {
	want := map[string]pull.Source{}
	for _, s := range srcs {
		want[s.Name] = s
	}
	r.pullsMu.Lock()
	defer r.pullsMu.Unlock()
	for name, p := range r.pulls {
		if s, ok := want[name]; !ok || s != p.Source() {
			p.Stop()
			delete(r.pulls, name)
			r.log.Info("relay: pull stopped", "stream", name)
		}
	}
	for name, s := range want {
		if _, ok := r.pulls[name]; !ok {
			r.pulls[name] = pull.Start(s, pullHost{protocolHost{r, "pull"}})
			r.log.Info("relay: pull started", "stream", name)
		}
	}
}

// Pulls is the state of every pull, by stream name.
func (r *Relay) Pulls() []pull.Status {
	r.pullsMu.Lock()
	defer r.pullsMu.Unlock()
	out := make([]pull.Status, 0, len(r.pulls))
	for _, name := range slices.Sorted(maps.Keys(r.pulls)) {
		out = append(out, r.pulls[name].Status())
	}
	return out
}

// PullsHandler serves Pulls as JSON (GET), for `segflow pull list`.
func (r *Relay) PullsHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(r.Pulls())
	})
}

// pullHost is the relay as a pull sees it: the stream's name is its key
// (the pulls file, which only the operator writes, is the authority), and
// nothing is backed off.
type pullHost struct{ h protocolHost }

func (p pullHost) Admit(net.Addr) time.Duration { return 0 }

func (p pullHost) Claim(name string, _ net.Addr) (string, error) {
	if err := p.h.r.claim(name); err != nil {
		p.h.Refused("busy")
		return "", err
	}
	return name, nil
}

func (p pullHost) Release(name string) { p.h.Release(name) }

func (p pullHost) Start(name string, sps []byte, audio *mpeg4audio.AudioSpecificConfig) (publish.Stream, error) {
	return p.h.Start(name, sps, audio)
}

func (p pullHost) Refused(reason string) { p.h.Refused(reason) }

func (p pullHost) Logger() *slog.Logger { return p.h.Logger() }
