package router_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/segflow/segflow/infra/router"
	"github.com/segflow/segflow/shared/storage"
)

// countingFront puts an S3 front before MinIO that counts the bucket
// listings and all requests going through it, and returns a client of it.
func (s *stack) countingFront() (client *storage.Client, lists, requests *atomic.Int64) {
	s.t.Helper()
	target, err := url.Parse("http://" + s.minio.Options.Endpoint)
	if err != nil {
		s.t.Fatal(err)
	}
	lists, requests = new(atomic.Int64), new(atomic.Int64)
	proxy := httputil.NewSingleHostReverseProxy(target)
	// The Host header stays the front's: the client signed for it.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		q := r.URL.Query()
		if r.Method == http.MethodGet && strings.Trim(r.URL.Path, "/") == s.bucket &&
			(q.Has("list-type") || q.Has("prefix") || q.Has("delimiter")) {
			lists.Add(1)
		}
		proxy.ServeHTTP(w, r)
	}))
	s.t.Cleanup(srv.Close)
	o := s.minio.Options
	o.Endpoint = strings.TrimPrefix(srv.URL, "http://")
	c, err := storage.New(o)
	if err != nil {
		s.t.Fatal(err)
	}
	return c, lists, requests
}

// counterWith is the value of name's series whose label is value in reg.
func counterWith(t testing.TB, reg *prometheus.Registry, name, label, value string) float64 {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == value {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// waitCounterWith waits until counterWith reaches at least want.
func (s *stack) waitCounterWith(name, label, value string, want float64, within time.Duration) {
	s.t.Helper()
	deadline := time.Now().Add(within)
	for counterWith(s.t, s.metrics, name, label, value) < want {
		if time.Now().After(deadline) {
			s.t.Fatalf("%s{%s=%q} = %v after %v, want %v", name, label, value,
				counterWith(s.t, s.metrics, name, label, value), within, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestRestartCatchUpReadsTheJournalNotTheBucket: with hundreds of objects
// in the bucket, a restarted router queues the writes it missed from the
// journal MinIO wrote, without listing the bucket at all: a catch-up in
// proportion to what it missed, not to the bucket.
func TestRestartCatchUpReadsTheJournalNotTheBucket(t *testing.T) {
	s := newStack(t)
	began := time.Now() // the journal was made by the first router, just before
	front, lists, _ := s.countingFront()
	s.stopRouter()
	s.store = front
	s.startRouter()
	// The first start has no counters saved: it lists, and saves them.
	s.waitCounterWith("segflow_router_catchups_total", "source", "listing", 1, 20*time.Second)
	s.deployNew("up", "upload", nil, nil)
	for i := range 400 {
		s.put(assetSegment(i), nil)
	}
	// A journal vouches only for writes after its creation (the first
	// router's start), less the margin for posts in flight.
	time.Sleep(time.Until(began.Add(6 * time.Second)))
	for i := range 5 {
		s.put(uploadKey("before", i), nil)
	}
	s.waitFor("up", 5, 30*time.Second)
	time.Sleep(3 * time.Second) // the checkpoint moves past these writes
	s.stopRouter()
	for i := range 4 {
		s.put(uploadKey("missed", i), nil)
	}
	lists.Store(0)
	s.startRouter()
	got := s.waitFor("up", 9, 30*time.Second)
	for i := range 4 {
		if !hasSubject(got, uploadKey("missed", i)) {
			t.Errorf("%s never delivered", uploadKey("missed", i))
		}
	}
	if n := lists.Load(); n > 0 {
		t.Errorf("the restart listed the bucket %d times; the journal has what it missed\n%s", n, s.logLines("router:"))
	}
	if n := counterWith(t, s.metrics, "segflow_router_catchups_total", "source", "journal"); n < 1 {
		t.Errorf("no catch-up from the journal after the restart")
	}
}

// TestJournalMinIOFailedToWriteIsNotTrusted: MinIO signs in to the queue
// with a wrong password, so the journal stays empty while the webhook
// works. MinIO counts the failed publishes; the restarted router must not
// trust the journal for what it missed, and lists the bucket instead.
func TestJournalMinIOFailedToWriteIsNotTrusted(t *testing.T) {
	s := newStackWith(t, func(tg *router.MinIOTarget) { tg.NATSPassword = "not-the-password" })
	began := time.Now()
	s.deployNew("up", "upload", nil, nil)
	// Old enough a journal that only MinIO's counters can tell it lacks
	// the writes (see TestRestartCatchUpReadsTheJournalNotTheBucket).
	time.Sleep(time.Until(began.Add(6 * time.Second)))
	s.put(uploadKey("before", 0), nil)
	s.waitFor("up", 1, 30*time.Second)
	time.Sleep(time.Second) // the checkpoint moves past it
	s.stopRouter()
	for i := range 3 {
		s.put(uploadKey("missed", i), nil)
	}
	s.startRouter()
	got := s.waitFor("up", 4, 90*time.Second)
	for i := range 3 {
		if !hasSubject(got, uploadKey("missed", i)) {
			t.Errorf("%s never delivered", uploadKey("missed", i))
		}
	}
	if n := counterWith(t, s.metrics, "segflow_router_catchups_total", "source", "listing"); n < 1 {
		t.Errorf("the restarted router never listed the bucket")
	}
	t.Logf("%s", s.logLines("catching up"))
}

func assetSegment(i int) string { return fmt.Sprintf("assets/big/source/%05d.ts", i) }

func uploadKey(what string, i int) string { return fmt.Sprintf("uploads/%s-%02d.mp4", what, i) }

func hasSubject(rs []rec, subject string) bool {
	for _, r := range rs {
		if r.Subject == subject {
			return true
		}
	}
	return false
}

// logLines are the routers' log lines that contain substr.
func (s *stack) logLines(substr string) string {
	b, _ := os.ReadFile(s.logs)
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
