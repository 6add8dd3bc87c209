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
	"time"
)

// Handle echoes by default; /crash exits the process, /sleep?ms=N waits,
// /env reports environment and mounted secrets, /pid the process id.
func Handle(w http.ResponseWriter, r *http.Request) {
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
