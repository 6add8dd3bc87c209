package tagging

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
)

func TestHTTPTaggerAsksAModelOverHTTP(t *testing.T) {
	dir := t.TempDir()
	seg := filepath.Join(dir, "seg.ts")
	os.WriteFile(seg, []byte("segment bytes"), 0o644)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if r.Header.Get("Content-Type") != "video/mp2t" || r.Header.Get("X-Segment-Duration") != "4.000" || string(b) != "segment bytes" {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		json.NewEncoder(w).Encode([]Tag{{Kind: "object", Label: "cat", Start: 1, End: 2, Confidence: 0.9}})
	}))
	defer srv.Close()
	res := Run(context.Background(), []Tagger{HTTP{URL: srv.URL}}, Input{Path: seg, Duration: 4, WorkDir: dir})
	if res.Errors != nil || len(res.Tags) != 1 || res.Tags[0].Label != "cat" || res.Tags[0].Source != "http" {
		t.Fatalf("result %+v", res)
	}
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "model not loaded", http.StatusServiceUnavailable)
	}))
	defer down.Close()
	res = Run(context.Background(), []Tagger{HTTP{URL: down.URL}}, Input{Path: seg, Duration: 4, WorkDir: dir})
	if res.Errors["http"] == "" || len(res.Tags) != 0 {
		t.Fatalf("a failing model gave %+v", res)
	}
}
