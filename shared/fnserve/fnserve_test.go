package fnserve

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestServeRoutesAndPanics(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	handle := func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/panic" {
			panic("boom")
		}
		b, _ := io.ReadAll(r.Body)
		w.Write([]byte("echo:" + string(b)))
	}
	go func() { done <- Serve(ctx, l, handle, slog.New(slog.NewJSONHandler(io.Discard, nil))) }()
	base := "http://" + l.Addr().String()

	tests := []struct {
		path, body string
		code       int
		contains   string
	}{
		{"/", "hi", 200, "echo:hi"},
		{"/healthz", "", 200, "OK"},
		{"/_/health", "", 200, "OK"},
		{"/panic", "", 500, "internal error"},
		{"/", "after-panic", 200, "echo:after-panic"},
		{"/metrics", "", 200, `function_http_requests_total{code="500"} 1`},
	}
	for _, tc := range tests {
		resp, err := http.Post(base+tc.path, "text/plain", strings.NewReader(tc.body))
		if err != nil {
			t.Fatalf("%s: %v", tc.path, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.code || !strings.Contains(string(b), tc.contains) {
			t.Errorf("%s: %d %q, want %d containing %q", tc.path, resp.StatusCode, b, tc.code, tc.contains)
		}
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve returned %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return after cancel")
	}
}
