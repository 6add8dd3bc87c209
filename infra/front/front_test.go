package front_test

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/segflow/segflow/infra/front"
)

// TestFrontSkipsADeadBackend: with one of two servers gone, every request
// through the front reaches the other; with both up, both get requests.
func TestFrontSkipsADeadBackend(t *testing.T) {
	var backends []*httptest.Server
	for _, name := range []string{"a", "b"} {
		backends = append(backends, httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, name)
		})))
	}
	addr := func(s *httptest.Server) string { return strings.TrimPrefix(s.URL, "http://") }
	f, err := front.Open("127.0.0.1:0", []string{addr(backends[0]), addr(backends[1])}, slog.Default())
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	get := func() string {
		// A connection per request: the front picks a backend per connection.
		c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
		resp, err := c.Get("http://" + f.Addr() + "/")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	seen := map[string]int{}
	for range 10 {
		seen[get()]++
	}
	if seen["a"] == 0 || seen["b"] == 0 {
		t.Fatalf("both up: %v, want both to answer", seen)
	}
	backends[0].Close()
	seen = map[string]int{}
	for range 10 {
		seen[get()]++
	}
	if seen["b"] != 10 {
		t.Fatalf("a dead: %v, want every request answered by b", seen)
	}
	backends[1].Close()
}
