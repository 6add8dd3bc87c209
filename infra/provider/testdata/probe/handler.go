// Package function is a test fixture: a function whose behaviour the
// runtime's tests choose by path.
package function

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/segflow/segflow/shared/events"
)

// Handle echoes by default; /crash exits the process, /sleep?ms=N waits,
// /env reports environment and mounted secrets, /pid the process id.
func Handle(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("ce-id") != "" {
		handleEvent(w, r)
		return
	}
	switch r.URL.Path {
	case "/crash":
		os.Exit(3)
	case "/sleep":
		ms, _ := strconv.Atoi(r.URL.Query().Get("ms"))
		time.Sleep(time.Duration(ms) * time.Millisecond)
		io.WriteString(w, "slept")
	case "/env":
		secrets := map[string]string{}
		dir := os.Getenv("SEGFLOW_SECRETS_DIR")
		ents, _ := os.ReadDir(dir)
		for _, e := range ents {
			b, _ := os.ReadFile(filepath.Join(dir, e.Name()))
			secrets[e.Name()] = string(b)
		}
		json.NewEncoder(w).Encode(map[string]any{
			"env": map[string]string{
				"greeting":         os.Getenv("greeting"),
				"SEGFLOW_FUNCTION": os.Getenv("SEGFLOW_FUNCTION"),
				"RUNTIME_WIDE":     os.Getenv("RUNTIME_WIDE"),
				"MINIO_ROOT_USER":  os.Getenv("MINIO_ROOT_USER"),
			},
			"secrets": secrets,
		})
	case "/pid":
		io.WriteString(w, strconv.Itoa(os.Getpid()))
	default:
		os.Stderr.WriteString("probe called " + r.Method + " " + r.URL.Path + "\n")
		w.Header().Set("X-Probe-Method", r.Method)
		w.Header().Set("Content-Type", r.Header.Get("Content-Type"))
		io.Copy(w, r.Body)
	}
}

// handleEvent parses a CloudEvent with the sdk, records it in
// $PROBE_RECORD_DIR/<function>.jsonl and answers as $PROBE_MODE says:
// "ok" (default), "fail-twice" (500 for an event's first two deliveries),
// "unavailable-thrice" (503 for its first three), "always-fail" (500),
// "slow" (sleeps $PROBE_SLEEP_MS first).
func handleEvent(w http.ResponseWriter, r *http.Request) {
	entered := time.Now()
	e, err := events.FromRequest(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if os.Getenv("PROBE_MODE") == "slow" {
		ms, _ := strconv.Atoi(os.Getenv("PROBE_SLEEP_MS"))
		time.Sleep(time.Duration(ms) * time.Millisecond)
	}
	file := filepath.Join(os.Getenv("PROBE_RECORD_DIR"), os.Getenv("SEGFLOW_FUNCTION")+".jsonl")
	seen := 0
	// Only fail-twice and unavailable-thrice read the record back: reading the growing file on
	// every event would make the probe's cost grow with the run and load
	// the benchmark that uses it.
	if m := os.Getenv("PROBE_MODE"); m == "fail-twice" || m == "unavailable-thrice" {
		if b, err := os.ReadFile(file); err == nil {
			seen = strings.Count(string(b), `"id":`+strconv.Quote(e.ID()))
		}
	}
	line, _ := json.Marshal(map[string]any{
		"id": e.ID(), "type": e.Type(), "source": e.Source(), "subject": e.Subject(),
		"attempt": r.Header.Get("X-Segflow-Attempt"), "entered": entered.UnixNano(),
	})
	f, err := os.OpenFile(file, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	f.Write(append(line, '\n'))
	f.Close()
	switch os.Getenv("PROBE_MODE") {
	case "always-fail":
		http.Error(w, "probe: told to fail", http.StatusInternalServerError)
	case "unavailable-thrice":
		if seen < 3 {
			http.Error(w, "probe: storage unavailable", http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "ok")
	case "fail-twice":
		if seen < 2 {
			http.Error(w, "probe: failing attempt "+strconv.Itoa(seen+1), http.StatusInternalServerError)
			return
		}
		io.WriteString(w, "ok")
	default:
		io.WriteString(w, "ok")
	}
}
