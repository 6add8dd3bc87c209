package telemetry

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestScrapeSum(t *testing.T) {
	s, err := ParseScrape(strings.NewReader(`# TYPE seg_total counter
seg_total{stream="a"} 3
seg_total{stream="b"} 4
# TYPE failed counter
failed{target_name="nats",target_id="X"} 2
failed{target_name="webhook",target_id="X"} 5
`))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"seg_total", nil, 7},
		{"seg_total", map[string]string{"stream": "b"}, 4},
		{"failed", map[string]string{"target_name": "nats"}, 2},
		{"failed", map[string]string{"target_name": "nats", "target_id": "Y"}, 0},
		{"absent", nil, 0},
	} {
		if got := s.Sum(tc.name, tc.labels); got != tc.want {
			t.Errorf("Sum(%s, %v) = %v, want %v", tc.name, tc.labels, got, tc.want)
		}
	}
	if !s.Has("failed") || s.Has("absent") {
		t.Error("Has")
	}
}

func TestGetScrape(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/metrics" {
			http.NotFound(w, r)
			return
		}
		io.WriteString(w, "# TYPE seg_total counter\nseg_total{stream=\"a\"} 2\nseg_total{stream=\"b\"} 3\n")
	}))
	defer srv.Close()
	s, err := GetScrape(context.Background(), srv.URL+"/metrics")
	if err != nil || s.Sum("seg_total", nil) != 5 {
		t.Fatalf("GetScrape: %v, sum %v; want 5", err, s.Sum("seg_total", nil))
	}
	if _, err := GetScrape(context.Background(), srv.URL+"/nothing"); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("a 404 read as %v; want an error naming it", err)
	}
}
