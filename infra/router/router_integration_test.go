package router_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/nats-io/nats.go"
	"github.com/openfaas/faas-provider/types"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/segflow/segflow/infra/gwclient"
	"github.com/segflow/segflow/infra/internal/testgw"
	"github.com/segflow/segflow/infra/internal/testqueue"
	"github.com/segflow/segflow/infra/queue"
	"github.com/segflow/segflow/infra/router"
	"github.com/segflow/segflow/shared/asset"
	"github.com/segflow/segflow/shared/events"
	"github.com/segflow/segflow/shared/layout"
	"github.com/segflow/segflow/shared/storage"
	"github.com/segflow/segflow/shared/telemetry"
	"github.com/segflow/segflow/shared/testenv"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testgw.Cleanup()
	os.Exit(code)
}

const token = "router-test-token"

// stack is MinIO + gateway + NATS + a router serving MinIO's webhook.
type stack struct {
	t     testing.TB
	minio *testenv.MinIO
	gw    *testgw.GW
	nats  *queue.Server
	addr  string // router's listen address
	// held is addr's listener from newStack until the first router
	// serves on it: a port only found free could be taken meanwhile by
	// what starts in between (MinIO, the gateway, NATS).
	held    net.Listener
	rt      *router.Router
	srv     *http.Server
	records string               // where probe functions record the events they get
	metrics *prometheus.Registry // the current router's
	bucket  string
	sqs     *router.SQSSource // polled by the routers opened after it is set
	// replicas of the routers' streams: 3 on a queue cluster.
	replicas int
	logs     string // the routers' log lines, as segflow's logger writes them
	// store is the routers' storage client (nil: MinIO's own).
	store  *storage.Client
	target router.MinIOTarget // MinIO's notification targets
}

// natsUsers are the test queue's users: the router, MinIO writing the
// journal, and a forger (any other component with access to the queue).
var natsUsers = map[string]string{"router": "router-pw", "minio": "minio-pw", "forger": "forger-pw"}

func newStack(t testing.TB) *stack { return newStackWith(t, nil) }

// newStackWith is newStack with MinIO's notification targets changed by
// edit first (nil: as segflow up configures them).
func newStackWith(t testing.TB, edit func(*router.MinIOTarget)) *stack {
	held, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &stack{t: t, addr: held.Addr().String(), held: held, records: t.TempDir(), bucket: "media"}
	s.logs = filepath.Join(t.TempDir(), "router.log")
	// MinIO reaches the queue over TCP to write the journal.
	ns, err := queue.Open(queue.Options{StoreDir: t.TempDir(), Users: natsUsers})
	if err != nil {
		t.Fatal(err)
	}
	s.nats = ns
	t.Cleanup(func() { s.nats.Close() })
	target := router.MinIOTarget{ID: "segflow", Endpoint: "http://" + s.addr + "/events", Token: token,
		NATSAddress: strings.TrimPrefix(ns.ClientURL(), "nats://"), NATSUser: "minio", NATSPassword: natsUsers["minio"]}
	if edit != nil {
		edit(&target)
	}
	s.target = target
	s.minio = testenv.StartMinIO(t, target.Env()...)
	s.minio.Bucket(t, s.bucket)
	if err := target.Subscribe(context.Background(), s.minio.Client, s.bucket); err != nil {
		t.Fatal(err)
	}
	s.gw = testgw.Start(t)
	s.startRouter()
	t.Cleanup(s.stopRouter)
	return s
}

func (s *stack) startRouter() {
	s.t.Helper()
	nc, err := s.nats.Connect("router")
	if err != nil {
		s.t.Fatal(err)
	}
	s.openRouter(nc)
}

func (s *stack) openRouter(nc *nats.Conn) {
	s.t.Helper()
	var err error
	s.metrics = prometheus.NewRegistry()
	logs, err := os.OpenFile(s.logs, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(func() { logs.Close() })
	s.rt, err = router.Open(context.Background(), s.routerConfig(nc, logs, s.metrics))
	if err != nil {
		s.t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/events", s.rt.WebhookHandler())
	mux.Handle("/deadletters", s.rt.DeadLettersHandler())
	l := s.held
	if s.held = nil; l == nil {
		if l, err = net.Listen("tcp", s.addr); err != nil {
			s.t.Fatal(err)
		}
	}
	s.srv = &http.Server{Handler: mux}
	go s.srv.Serve(l)
}

func (s *stack) routerConfig(nc *nats.Conn, logs *os.File, reg prometheus.Registerer) router.Config {
	store := s.store
	if store == nil {
		store = s.minio.Client
	}
	return router.Config{
		Logger: telemetry.NewLogger(logs, "router"),
		NATS:   nc, Gateway: gwclient.New(s.gw.URL, s.gw.User, s.gw.Password), Token: token,
		Storage: store, CatchUpBucket: s.bucket, CatchUpEvery: 200 * time.Millisecond, Refresh: 200 * time.Millisecond,
		BackoffBase: 50 * time.Millisecond, BackoffMax: 500 * time.Millisecond, Registerer: reg,
		// Far below a queue's wait in these tests: a delivery the router
		// holds must stay its own however long it waits.
		AckWait: time.Second, SQS: s.sqs, Replicas: s.replicas,
	}
}

// secondRouter opens another router on the same queue, as a second
// replica would be: it takes deliveries from the same consumers, and
// MinIO posts to the first only (a Service would send each post to one).
// Its counters are in the registry returned.
func (s *stack) secondRouter() (*router.Router, *prometheus.Registry) {
	s.t.Helper()
	return s.secondRouterTo(s.gw.URL)
}

// secondRouterTo is secondRouter delivering to the gateway at gatewayURL.
func (s *stack) secondRouterTo(gatewayURL string) (*router.Router, *prometheus.Registry) {
	s.t.Helper()
	nc, err := s.nats.Connect("router")
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(nc.Close)
	logs, err := os.OpenFile(s.logs, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(func() { logs.Close() })
	reg := prometheus.NewRegistry()
	cfg := s.routerConfig(nc, logs, reg)
	cfg.Gateway = gwclient.New(gatewayURL, s.gw.User, s.gw.Password)
	rt, err := router.Open(context.Background(), cfg)
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(rt.Close)
	return rt, reg
}

func (s *stack) stopRouter() {
	if s.srv == nil {
		return
	}
	s.srv.Close()
	s.rt.Close()
	s.srv = nil
}

// deploy updates a probe subscribed to topic (PUT, as faas-cli does).
func (s *stack) deploy(name, topic string, env map[string]string, ann map[string]string) {
	s.t.Helper()
	s.gw.MustDo(202, "PUT", "/system/functions", s.probe(name, topic, env, ann))
}

func (s *stack) probe(name, topic string, env map[string]string, ann map[string]string) types.FunctionDeployment {
	if env == nil {
		env = map[string]string{}
	}
	env["PROBE_RECORD_DIR"] = s.records
	dep := testgw.ProbeDeployment(name, nil, env)
	(*dep.Annotations)["topic"] = topic
	for k, v := range ann {
		(*dep.Annotations)[k] = v
	}
	return dep
}

func (s *stack) deployNew(name, topic string, env map[string]string, ann map[string]string) {
	s.t.Helper()
	s.gw.MustDo(202, "POST", "/system/functions", s.probe(name, topic, env, ann))
	// The router picks subscriptions up on its next refresh.
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		first := strings.TrimSpace(strings.Split(topic, ",")[0])
		for _, f := range s.rt.Subscribers(first) {
			if f == name {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.t.Fatalf("router did not subscribe %s to %s", name, topic)
}

func (s *stack) put(key string, meta map[string]string) {
	s.t.Helper()
	if err := s.minio.Client.PutBytes(context.Background(), s.bucket, key, []byte("data of "+key),
		storage.PutOptions{Metadata: meta}); err != nil {
		s.t.Fatal(err)
	}
}

type rec struct {
	ID, Type, Source, Subject, Attempt string
	Entered                            int64
}

func (s *stack) received(fn string) []rec {
	f, err := os.Open(filepath.Join(s.records, fn+".jsonl"))
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []rec
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var r rec
		if json.Unmarshal(sc.Bytes(), &r) == nil {
			out = append(out, r)
		}
	}
	return out
}

// waitFor polls until fn has received n deliveries.
func (s *stack) waitFor(fn string, n int, within time.Duration) []rec {
	s.t.Helper()
	deadline := time.Now().Add(within)
	file := filepath.Join(s.records, fn+".jsonl")
	for time.Now().Before(deadline) {
		// Count lines while waiting and parse once: parsing the whole
		// record on every poll took CPU from the stack the benchmark times.
		if b, err := os.ReadFile(file); err == nil && bytes.Count(b, []byte{'\n'}) >= n {
			if got := s.received(fn); len(got) >= n {
				return got
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.t.Fatalf("%s received %d deliveries, want %d\ngateway log:\n%s", fn, len(s.received(fn)), n, testgw.Tail(s.gw.Log(), 3000))
	return nil
}

// waitDrained returns once each function's deliveries are all answered
// for good (none queued, none in flight): what it received by then is
// all it can receive of what was queued, so a count checked after this
// proves "no second copy" without a waiting window.
func (s *stack) waitDrained(fns ...string) {
	s.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for _, fn := range fns {
		for {
			n, err := s.rt.Backlog(context.Background(), fn)
			if err == nil && n == 0 {
				break
			}
			if time.Now().After(deadline) {
				s.t.Fatalf("%s's deliveries never drained: %d left (%v)", fn, n, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

func subjects(rs []rec) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.Subject)
	}
	sort.Strings(out)
	return out
}

func TestEventsReachSubscribersExactlyOnce(t *testing.T) {
	s := newStack(t)
	s.deployNew("onupload", "upload", nil, nil)
	s.deployNew("onsegment", "segment.source, segment.marked", nil, nil)

	var uploads, segs []string
	for i := 0; i < 10; i++ {
		k := fmt.Sprintf("uploads/clip %d.mp4", i)
		uploads = append(uploads, k)
		s.put(k, nil)
	}
	for i := 0; i < 3; i++ {
		k := fmt.Sprintf("assets/a1/source/%05d.ts", i)
		segs = append(segs, k)
		s.put(k, nil)
	}
	segs = append(segs, "assets/a1/marked/00000.ts")
	s.put("assets/a1/marked/00000.ts", nil)
	// Nobody subscribes to these.
	s.put("other/file.bin", nil)
	s.put("assets/a1/thumbs/00000.jpg", nil)
	s.put("assets/a1/720p/00000.ts", nil)
	// A function's own output never comes back to it.
	s.put("assets/a1/source/00009.ts", map[string]string{"Segflow-Producer": "onsegment"})

	s.waitFor("onupload", 10, 20*time.Second)
	s.waitFor("onsegment", 4, 20*time.Second)
	s.waitDrained("onupload", "onsegment")
	gotU, gotS := s.received("onupload"), s.received("onsegment")

	sort.Strings(uploads)
	sort.Strings(segs)
	if got := subjects(gotU); strings.Join(got, ",") != strings.Join(uploads, ",") {
		t.Errorf("onupload got %v, want each of %v once", got, uploads)
	}
	if got := subjects(gotS); strings.Join(got, ",") != strings.Join(segs, ",") {
		t.Errorf("onsegment got %v, want each of %v once", got, segs)
	}
	ids := map[string]bool{}
	for _, r := range append(gotU, gotS...) {
		if ids[r.ID] {
			t.Errorf("event %s delivered twice", r.ID)
		}
		ids[r.ID] = true
		if r.Source != "media" || r.Type != "io.segflow.object.created" || r.Attempt != "1" {
			t.Errorf("event %+v", r)
		}
	}
}

// The router's line about a delivery carries the trace of the write that
// raised the event (its Traceparent metadata), so a shipped log line
// leads to the trace; an object written outside any trace gives a line
// without one (this process installs no tracer that would start one).
func TestDeliveryLinesCarryTheirTrace(t *testing.T) {
	s := newStack(t)
	s.deployNew("onupload", "upload", nil, nil)
	const traceID, spanID = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	s.put("uploads/traced.mp4", map[string]string{storage.TraceMeta: "00-" + traceID + "-" + spanID + "-01"})
	s.put("uploads/untraced.mp4", nil)
	s.waitFor("onupload", 2, 20*time.Second)
	s.waitDrained("onupload")
	found := map[string]map[string]any{}
	for deadline := time.Now().Add(5 * time.Second); len(found) < 2 && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		raw, err := os.ReadFile(s.logs)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range bytes.Split(raw, []byte("\n")) {
			var l map[string]any
			if json.Unmarshal(line, &l) != nil || l["msg"] != "router: delivered" {
				continue
			}
			for _, key := range []string{"uploads/traced.mp4", "uploads/untraced.mp4"} {
				if id, _ := l["delivery_id"].(string); strings.Contains(id, "/"+url.QueryEscape(key)+"@") {
					found[key] = l
				}
			}
		}
	}
	traced, untraced := found["uploads/traced.mp4"], found["uploads/untraced.mp4"]
	if traced == nil || untraced == nil {
		raw, _ := os.ReadFile(s.logs)
		t.Fatalf("no delivered line for each upload: %v\n%s", found, raw)
	}
	if traced["trace_id"] != traceID || traced["span_id"] != spanID {
		t.Errorf("traced upload's line has trace_id %v span_id %v, want the writer's %s %s", traced["trace_id"], traced["span_id"], traceID, spanID)
	}
	if _, ok := untraced["trace_id"]; ok {
		t.Errorf("untraced upload's line has a trace_id: %v", untraced)
	}
}

// A delivery that waits for a free slot is still the router's: JetStream
// must not hand it out a second time however long the queue ahead of it
// takes. (A 60 s upload's last segments wait ~40 s for one of three
// transcodes; each redelivery was a segment transcoded twice.)
func TestQueuedDeliveriesAreNotHandedOutTwice(t *testing.T) {
	s := newStack(t)
	s.deployNew("slowseg", "segment.source", map[string]string{"PROBE_MODE": "slow", "PROBE_SLEEP_MS": "400"},
		map[string]string{router.AnnotationConcurrency: "1"})
	const n = 8 // 3.2 s of work one at a time, against a 1 s AckWait
	for i := range n {
		s.put(fmt.Sprintf("assets/q1/source/%05d.ts", i), nil)
	}
	s.waitFor("slowseg", n, 30*time.Second)
	s.waitDrained("slowseg")
	s.checkEachOnceFirstTime("slowseg", n)
}

// A viewer waits on a file's first segment (for the master playlist) and
// on every live segment; a backlog of later segments of a file must not
// hold them up, while that backlog keeps its own order.
func TestFirstAndLiveSegmentsJumpTheQueue(t *testing.T) {
	s := newStack(t)
	s.deployNew("oneatatime", "segment.source", map[string]string{"PROBE_MODE": "slow", "PROBE_SLEEP_MS": "300"},
		map[string]string{router.AnnotationConcurrency: "1"})
	const backlog = 8 // 2.4 s of work, one at a time
	var later []string
	for i := 1; i <= backlog; i++ {
		k := fmt.Sprintf("assets/older/source/%05d.ts", i)
		later = append(later, k)
		s.put(k, nil)
	}
	s.waitFor("oneatatime", 1, 20*time.Second)
	first, live := "assets/newer/source/00000.ts", "assets/channel/source/00042.ts"
	s.put(first, nil)
	s.put(live, map[string]string{"Segment-Wallclock": time.Now().UTC().Format(time.RFC3339Nano)})
	got := s.waitFor("oneatatime", backlog+2, 30*time.Second)
	var order []string
	for _, r := range got {
		order = append(order, r.Subject)
	}
	// The backlog's first segment was in the function when they were
	// written, and its second may have started meanwhile.
	for _, k := range []string{first, live} {
		if i := slices.Index(order, k); i < 0 || i > 3 {
			t.Errorf("%s delivered at %d: it waited behind the backlog: %v", k, i, order)
		}
	}
	// The backlog goes in the order MinIO posted it, and MinIO posts from
	// two workers, so two neighbours may swap (seen in CI once each post
	// also waited on a second target); no segment may move further.
	rest := slices.DeleteFunc(slices.Clone(order), func(k string) bool { return k == first || k == live })
	if len(rest) != len(later) {
		t.Fatalf("backlog delivered %v, want %v", rest, later)
	}
	for i, k := range rest {
		if j := slices.Index(later, k); j < i-1 || j > i+1 {
			t.Errorf("the backlog out of order: %s (written %d.) delivered %d.: %v", k, j+1, i+1, rest)
		}
	}
	// Nor does an urgent one wait for the call running when it came: one
	// worker beyond the concurrency of 1 serves urgent deliveries alone,
	// so two calls ran at once, and one of each such pair was urgent.
	const sleep = 300 * time.Millisecond
	beside := 0
	for i, a := range got {
		for _, b := range got[i+1:] {
			if a.Entered < b.Entered+sleep.Nanoseconds() && b.Entered < a.Entered+sleep.Nanoseconds() {
				beside++
				if !slices.Contains([]string{first, live}, a.Subject) && !slices.Contains([]string{first, live}, b.Subject) {
					t.Errorf("%s and %s ran at once, neither urgent", a.Subject, b.Subject)
				}
			}
		}
	}
	if beside == 0 {
		t.Errorf("no urgent delivery ran beside the call in flight when it came: %v", order)
	}
}

// checkEachOnceFirstTime: fn got n events, each once and as attempt 1.
func (s *stack) checkEachOnceFirstTime(fn string, n int) {
	s.t.Helper()
	got := s.received(fn)
	seen := map[string]int{}
	for _, r := range got {
		seen[r.Subject]++
		if r.Attempt != "1" {
			s.t.Errorf("%s delivered as attempt %s", r.Subject, r.Attempt)
		}
	}
	if len(got) != n || len(seen) != n {
		s.t.Errorf("%d deliveries of %d events, want each of %d once: %v", len(got), len(seen), n, seen)
	}
}

// A function at its limit answers 429. That says nothing about the event:
// the router waits and sends it again without using an attempt, so with
// one attempt allowed every event still arrives once and none is
// dead-lettered.
func TestBusyFunctionCostsNoAttempts(t *testing.T) {
	s := newStack(t)
	s.deployNew("narrow", "segment.source", map[string]string{"PROBE_MODE": "slow", "PROBE_SLEEP_MS": "300", "max_inflight": "1"},
		map[string]string{router.AnnotationConcurrency: "3", router.AnnotationMaxAttempts: "1"})
	const n = 6
	for i := range n {
		s.put(fmt.Sprintf("assets/b1/source/%05d.ts", i), nil)
	}
	s.waitFor("narrow", n, 30*time.Second)
	s.waitDrained("narrow")
	s.checkEachOnceFirstTime("narrow", n)
	if dl := s.deadLetters(); len(dl) != 0 {
		t.Errorf("dead letters: %+v", dl)
	}
	if s.counter("segflow_router_busy_total") == 0 {
		t.Error("no 429 was met: the test did not load the function past its limit")
	}
}

// TestUnavailableFunctionCostsNoAttempts: a function that answers 503
// (a stage whose storage is out of reach) is waited out like a busy one:
// with one attempt allowed, every event is delivered at its first
// attempt after three 503s, and none is dead-lettered.
func TestUnavailableFunctionCostsNoAttempts(t *testing.T) {
	s := newStack(t)
	s.deployNew("nostorage", "upload", map[string]string{"PROBE_MODE": "unavailable-thrice"},
		map[string]string{router.AnnotationMaxAttempts: "1"})
	const n = 3
	for i := range n {
		s.put(fmt.Sprintf("uploads/u%d.mp4", i), nil)
	}
	got := s.waitFor("nostorage", 4*n, 30*time.Second)
	s.waitDrained("nostorage")
	for _, r := range got {
		if r.Attempt != "1" {
			t.Errorf("%s came as attempt %s: a 503 spent an attempt", r.Subject, r.Attempt)
		}
	}
	if dl := s.deadLetters(); len(dl) != 0 {
		t.Errorf("dead letters: %+v", dl)
	}
	if n := s.counter("segflow_router_busy_total"); n < 3*3 {
		t.Errorf("%v deliveries waited out, want the 9 answered 503", n)
	}
}

// An upload whose key no function can take (a control character, which
// cannot travel in a CloudEvent header) fails its asset on the spot with
// the reason; it is neither retried nor dead-lettered.
func TestInvalidUploadKeyFailsItsAsset(t *testing.T) {
	s := newStack(t)
	s.deployNew("takesuploads", "upload", nil, nil)
	key := "uploads/evil\x01name.mp4"
	// As any S3 client can: segflow's own client refuses such a key.
	up, err := s.minio.Client.Minio().PutObject(context.Background(), s.bucket, key, strings.NewReader("data"), 4, minio.PutObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s.put("uploads/fine.mp4", nil)
	s.waitFor("takesuploads", 1, 20*time.Second)
	id := layout.AssetID(key, up.ETag)
	deadline := time.Now().Add(10 * time.Second)
	var st *asset.Status
	for time.Now().Before(deadline) {
		if st, err = asset.ReadStatus(context.Background(), s.minio.Client, s.bucket, id); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if st == nil || st.State != asset.StateFailed || !strings.Contains(st.Stages["split"].Error, "control character") {
		t.Fatalf("status of %s = %+v, %v; want failed with the reason", id, st, err)
	}
	s.waitDrained("takesuploads")
	if got := s.received("takesuploads"); len(got) != 1 || got[0].Subject != "uploads/fine.mp4" {
		t.Errorf("deliveries = %+v, want only the valid upload", got)
	}
	if dl := s.deadLetters(); len(dl) != 0 {
		t.Errorf("dead letters: %+v", dl)
	}
}

func TestRetryThenSuccessAndDeadLetterReplay(t *testing.T) {
	s := newStack(t)
	s.deployNew("flaky", "upload", map[string]string{"PROBE_MODE": "fail-twice"}, nil)
	s.deployNew("broken", "segment.source", map[string]string{"PROBE_MODE": "always-fail"},
		map[string]string{"com.segflow.max-attempts": "3"})

	s.put("uploads/a.mp4", nil)
	s.waitFor("flaky", 3, 20*time.Second)
	s.waitDrained("flaky")
	if got := s.received("flaky"); len(got) != 3 || got[2].Attempt != "3" || got[0].ID != got[2].ID {
		t.Fatalf("flaky deliveries = %+v, want attempts 1..3 of one event", got)
	}

	s.put("assets/a2/source/00000.ts", nil)
	s.waitFor("broken", 3, 20*time.Second)
	var dls []router.DeadLetter
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) && len(dls) == 0 {
		dls = s.deadLetters()
		time.Sleep(50 * time.Millisecond)
	}
	if len(dls) != 1 || dls[0].Function != "broken" || dls[0].Attempts != 3 || !strings.Contains(dls[0].Error, "told to fail") {
		t.Fatalf("dead letters = %+v", dls)
	}
	if b, err := s.minio.Client.GetBytes(context.Background(), s.bucket, dls[0].Object); err != nil || !strings.Contains(string(b), "told to fail") {
		t.Fatalf("dead letter object %s: %v %s", dls[0].Object, err, b)
	}
	if n := len(s.received("broken")); n != 3 {
		t.Fatalf("broken got %d deliveries after dead-lettering", n)
	}

	// Fix the function, replay: it gets the event once more and succeeds.
	s.deploy("broken", "segment.source", map[string]string{"PROBE_MODE": "ok"}, map[string]string{"com.segflow.max-attempts": "3"})
	req, _ := http.NewRequest("POST", "http://"+s.addr+"/deadletters?id="+url.QueryEscape(dls[0].ID), nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("replay: %v %v", err, resp)
	}
	resp.Body.Close()
	s.waitFor("broken", 4, 20*time.Second)
	if dls := s.deadLetters(); len(dls) != 0 {
		t.Fatalf("dead letters after replay = %+v", dls)
	}
	if _, err := s.minio.Client.Stat(context.Background(), s.bucket, dls[0].Object); err == nil {
		t.Fatal("dead letter object kept after replay")
	}
	// Replaying what is not there is a 404.
	req, _ = http.NewRequest("POST", "http://"+s.addr+"/deadletters?id=nope", nil)
	if resp, _ := http.DefaultClient.Do(req); resp == nil || resp.StatusCode != 404 {
		t.Fatalf("replay of a missing id: %v", resp)
	}
}

func (s *stack) deadLetters() []router.DeadLetter {
	resp, err := http.Get("http://" + s.addr + "/deadletters")
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out []router.DeadLetter
	json.NewDecoder(resp.Body).Decode(&out)
	return out
}

// A dead letter forged straight into the queue, naming an object outside
// deadletter/, is replayed without deleting that object.
func TestForgedDeadLetterDeletesNothing(t *testing.T) {
	s := newStack(t)
	s.put("uploads/victim.mp4", nil)
	ev, err := events.New("forged", events.TypeObjectCreated, s.bucket, "uploads/victim.mp4", nil)
	if err != nil {
		t.Fatal(err)
	}
	evb, _ := json.Marshal(ev)
	forged, _ := json.Marshal(router.DeadLetter{ID: "forged|nobody", Function: "nobody", Subject: "uploads/victim.mp4",
		Event: evb, Object: "uploads/victim.mp4", At: time.Now()})
	nc, err := s.nats.Connect("forger")
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if err := nc.Publish("segflow.dlq.nobody", forged); err != nil {
		t.Fatal(err)
	}
	nc.Flush()
	deadline := time.Now().Add(5 * time.Second)
	for len(s.deadLetters()) == 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	req, _ := http.NewRequest("POST", "http://"+s.addr+"/deadletters?id="+url.QueryEscape("forged|nobody"), nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("replay = %d", resp.StatusCode)
	}
	if _, err := s.minio.Client.Stat(context.Background(), s.bucket, "uploads/victim.mp4"); err != nil {
		t.Fatalf("the replay deleted the object a forged dead letter named: %v", err)
	}
}

func TestRouterRestartLosesNothing(t *testing.T) {
	s := newStack(t)
	s.deployNew("slowfn", "upload", map[string]string{"PROBE_MODE": "slow", "PROBE_SLEEP_MS": "300"},
		map[string]string{"com.segflow.concurrency": "1"})
	var want []string
	for i := 0; i < 6; i++ {
		k := fmt.Sprintf("uploads/q%d.mp4", i)
		want = append(want, k)
		s.put(k, nil)
	}
	s.waitFor("slowfn", 1, 20*time.Second)
	// Stop with deliveries still queued, then write more while it is down:
	// MinIO drops those events, and the catch-up at start finds the writes.
	s.stopRouter()
	before := len(s.received("slowfn"))
	for i := 6; i < 9; i++ {
		k := fmt.Sprintf("uploads/q%d.mp4", i)
		want = append(want, k)
		s.put(k, nil)
	}
	if before >= 6 {
		t.Fatalf("all delivered before the stop (%d); the test proves nothing", before)
	}
	s.startRouter()
	// At least once: a delivery cut by the stop may come again.
	missing := want
	deadline := time.Now().Add(60 * time.Second)
	for len(missing) > 0 && time.Now().Before(deadline) {
		got := map[string]bool{}
		for _, r := range s.received("slowfn") {
			got[r.Subject] = true
		}
		missing = nil
		for _, k := range want {
			if !got[k] {
				missing = append(missing, k)
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	if len(missing) > 0 {
		t.Fatalf("never delivered: %v", missing)
	}
}

// TestQueueOutageLosesNothing stops the queue under a running router: the
// router refuses MinIO's notifications meanwhile (MinIO drops them), and
// once the queue is back its catch-up finds those writes in the bucket.
func TestQueueOutageLosesNothing(t *testing.T) {
	s := newStack(t)
	// The router reaches this queue over TCP, so the queue can stop and
	// come back on the same address and store.
	s.stopRouter()
	s.nats.Close()
	store := t.TempDir()
	_, p, _ := net.SplitHostPort(testenv.FreeAddr(t))
	port, _ := strconv.Atoi(p)
	startQueue := func() {
		ns, err := queue.Open(queue.Options{StoreDir: store, Port: port, Users: natsUsers})
		if err != nil {
			t.Fatal(err)
		}
		s.nats = ns
	}
	startQueue()
	// No reconnect buffer: a publish during the outage fails at once
	// instead of reaching the queue later, so the router refuses.
	nc, err := nats.Connect(s.nats.UserURL("router"), nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond),
		nats.ReconnectBufSize(-1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	s.openRouter(nc)
	s.deployNew("steady", "upload", nil, nil)

	// old.mp4 is taken more than the checkpoint's margin for posts in
	// flight before recent.mp4, so the catch-up after the outage starts
	// after it; recent.mp4 may come twice (at least once is the promise).
	s.put("uploads/old.mp4", nil)
	s.waitFor("steady", 1, 20*time.Second)
	time.Sleep(2500 * time.Millisecond)
	s.put("uploads/recent.mp4", nil)
	s.waitFor("steady", 2, 20*time.Second)
	time.Sleep(500 * time.Millisecond) // a checkpoint tick

	s.nats.Close()
	var during []string
	for i := 0; i < 3; i++ {
		k := fmt.Sprintf("uploads/during-%d.mp4", i)
		during = append(during, k)
		s.put(k, nil)
	}
	// MinIO posts these to the router, which cannot queue them.
	deadline := time.Now().Add(20 * time.Second)
	for s.counter("segflow_router_webhook_refused_total") < 3 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if n := s.counter("segflow_router_webhook_refused_total"); n < 3 {
		t.Fatalf("router refused %v notifications during the outage, want 3", n)
	}
	startQueue()
	deadline = time.Now().Add(60 * time.Second)
	count := map[string]int{}
	for time.Now().Before(deadline) {
		count = map[string]int{}
		for _, r := range s.received("steady") {
			count[r.Subject]++
		}
		if count[during[0]] > 0 && count[during[1]] > 0 && count[during[2]] > 0 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, k := range append(during, "uploads/recent.mp4") {
		if count[k] == 0 {
			t.Fatalf("%s never delivered (got %v)", k, count)
		}
	}
	if count["uploads/old.mp4"] != 1 {
		t.Fatalf("old.mp4 delivered %d times, want once: the catch-up went back past the checkpoint", count["uploads/old.mp4"])
	}
	if n := s.counter("segflow_router_caught_up_total"); n < 3 {
		t.Fatalf("catch-up queued %v deliveries, want the 3 refused writes", n)
	}
}

// TestQueueNodeLossLosesNothing runs the router on a three-node JetStream
// cluster with its streams at replicas 3 and stops the node leading the
// deliveries mid-backlog: the other two elect a leader, the router's
// client moves to one of them, and every write is delivered, each at most
// once more than once (a delivery in flight when its ack was lost), with
// none dead-lettered. Writes made right after the loss go through too:
// queued if the new leader is up, else refused and caught up.
func TestQueueNodeLossLosesNothing(t *testing.T) {
	s := newStack(t)
	s.stopRouter()
	s.nats.Close()
	cluster := testqueue.Start(t, 3, map[string]string{"router": "router-pw"})
	s.replicas = 3
	// No reconnect buffer: a publish while no node answers fails at once,
	// so the webhook refuses and the catch-up finds the write.
	s.openRouter(cluster.Connect("router", nats.ReconnectBufSize(-1)))
	s.deployNew("slowfn", "upload", map[string]string{"PROBE_MODE": "slow", "PROBE_SLEEP_MS": "200"},
		map[string]string{"com.segflow.concurrency": "1"})
	var want []string
	for i := range 12 {
		k := fmt.Sprintf("uploads/before-%02d.mp4", i)
		want = append(want, k)
		s.put(k, nil)
	}
	s.waitFor("slowfn", 2, 20*time.Second)
	leader := cluster.Leader("SEGFLOW_EVENTS")
	lost := time.Now()
	leader.Close()
	t.Logf("stopped %s, the events stream's leader, after %d deliveries", leader.Name(), len(s.received("slowfn")))
	for i := range 3 {
		k := fmt.Sprintf("uploads/after-%d.mp4", i)
		want = append(want, k)
		s.put(k, nil)
	}
	before := len(s.received("slowfn"))
	deadline := time.Now().Add(90 * time.Second)
	var recovered time.Duration
	count := map[string]int{}
	for time.Now().Before(deadline) {
		got := s.received("slowfn")
		if recovered == 0 && len(got) > before {
			recovered = time.Since(lost)
		}
		count = map[string]int{}
		for _, r := range got {
			count[r.Subject]++
		}
		missing := 0
		for _, k := range want {
			if count[k] == 0 {
				missing++
			}
		}
		if missing == 0 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("first delivery %s after the loss; all %d writes delivered %s after it", recovered.Round(time.Millisecond), len(want), time.Since(lost).Round(time.Millisecond))
	var twice int
	for _, k := range want {
		switch n := count[k]; {
		case n == 0:
			t.Errorf("%s never delivered (got %v)", k, count)
		case n > 1:
			twice++
		}
	}
	// At most the deliveries in flight (concurrency 1, plus the urgent
	// worker) can have lost their ack with the node.
	if twice > 2 {
		t.Errorf("%d writes delivered more than once, want at most the 2 in flight at the loss: %v", twice, count)
	}
	if dl := s.deadLetters(); len(dl) > 0 {
		t.Errorf("dead letters after a node loss: %+v", dl)
	}
}

// counter is the current router's value of a counter metric.
func (s *stack) counter(name string) float64 {
	s.t.Helper()
	return s.counterIn(s.metrics, name)
}

// counterIn is a counter's value in reg (its first series).
func (s *stack) counterIn(reg *prometheus.Registry, name string) float64 {
	s.t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		s.t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() == name && len(f.GetMetric()) > 0 {
			return f.GetMetric()[0].GetCounter().GetValue()
		}
	}
	return 0
}

// TestTwoRoutersShareTheDeliveries: a second router on the same queue
// takes a share of the deliveries though MinIO posts to the first only;
// once the first stops mid-backlog the second delivers the rest, and no
// write is delivered twice but the ones in flight at the stop.
func TestTwoRoutersShareTheDeliveries(t *testing.T) {
	s := newStack(t)
	_, reg2 := s.secondRouter()
	s.deployNew("shared", "upload", map[string]string{"PROBE_MODE": "slow", "PROBE_SLEEP_MS": "100"},
		map[string]string{"com.segflow.concurrency": "2"})
	var want []string
	for i := range 30 {
		k := fmt.Sprintf("uploads/s%02d.mp4", i)
		want = append(want, k)
		s.put(k, nil)
	}
	s.waitFor("shared", 12, 30*time.Second)
	// MinIO posts to the first router only: stop it once it has taken
	// every notification, or a post still on its way after the stop goes
	// nowhere (only a restart's catch-up would find it, and this test
	// never restarts that router).
	deadline := time.Now().Add(30 * time.Second)
	for s.counter("segflow_router_events_received_total") < float64(len(want)) {
		if time.Now().After(deadline) {
			t.Fatalf("the first router received %v notifications, want %d", s.counter("segflow_router_events_received_total"), len(want))
		}
		time.Sleep(20 * time.Millisecond)
	}
	first, second := s.counter("segflow_router_deliveries_total"), s.counterIn(reg2, "segflow_router_deliveries_total")
	t.Logf("before the first router stopped: it delivered %v, the second %v", first, second)
	if first == 0 || second == 0 {
		t.Fatalf("deliveries not shared: first %v, second %v", first, second)
	}
	s.stopRouter()
	deadline = time.Now().Add(60 * time.Second)
	count := map[string]int{}
	for time.Now().Before(deadline) {
		count = map[string]int{}
		for _, r := range s.received("shared") {
			count[r.Subject]++
		}
		if len(count) == len(want) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	twice := 0
	for _, k := range want {
		switch {
		case count[k] == 0:
			t.Errorf("%s never delivered", k)
		case count[k] > 1:
			twice++
		}
	}
	// The stopped router's calls in flight (concurrency 2, the urgent
	// worker) are handed back and may come again.
	if twice > 3 {
		t.Errorf("%d writes delivered twice: %v", twice, count)
	}
	t.Logf("the second router delivered %v in all", s.counterIn(reg2, "segflow_router_deliveries_total"))
}

// A router whose gateway is gone (its node died; nothing listens where it
// was) takes no share of the work: what it had taken goes back to the
// queue at once, the first router delivers everything, once each, and
// nothing is dead-lettered even at one attempt per event. When its
// gateway answers again it takes deliveries again.
func TestRouterOfAGoneGatewayHandsItsWorkBack(t *testing.T) {
	s := newStack(t)
	// The second router's gateway: the test's, through a proxy at an
	// address of its own that the test can take away and bring back.
	addr := testenv.FreeAddr(t)
	serve := func() func() {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		srv := &http.Server{Handler: httputil.NewSingleHostReverseProxy(mustParse(t, s.gw.URL))}
		go srv.Serve(ln)
		return func() { srv.Close() }
	}
	stop := serve()
	_, reg2 := s.secondRouterTo("http://" + addr)
	s.deployNew("survivor", "upload", map[string]string{"PROBE_MODE": "slow", "PROBE_SLEEP_MS": "50"},
		map[string]string{router.AnnotationMaxAttempts: "1", "com.segflow.concurrency": "2"})
	time.Sleep(time.Second) // both routers read the subscription
	stop()
	const n = 20
	for i := range n {
		s.put(fmt.Sprintf("uploads/g%02d.mp4", i), nil)
	}
	got := s.waitFor("survivor", n, 30*time.Second)
	s.waitDrained("survivor")
	count := map[string]int{}
	for _, r := range got {
		count[r.Subject]++
	}
	if len(count) != n || len(got) != n {
		t.Errorf("%d deliveries of %d writes, want each once: %v", len(got), len(count), count)
	}
	if dl := s.deadLetters(); len(dl) != 0 {
		t.Errorf("dead letters: %+v", dl)
	}
	handed, delivered := s.counterIn(reg2, "segflow_router_handed_back_total"), s.counterIn(reg2, "segflow_router_deliveries_total")
	t.Logf("the router of the gone gateway handed back %v deliveries and delivered %v", handed, delivered)
	// It holds at most the queue of one lane (4 x concurrency) when it
	// finds its gateway gone; after that it takes nothing.
	if handed == 0 || handed > 2*4*2 || delivered != 0 {
		t.Errorf("the router of the gone gateway handed back %v and delivered %v: want a few handed back, none delivered", handed, delivered)
	}
	// The gateway comes back where it was: its router delivers again.
	defer serve()()
	time.Sleep(time.Second) // its probe finds the gateway back
	for i := range n {
		s.put(fmt.Sprintf("uploads/back%02d.mp4", i), nil)
	}
	s.waitFor("survivor", 2*n, 30*time.Second)
	if d := s.counterIn(reg2, "segflow_router_deliveries_total"); d == 0 {
		t.Errorf("the second router delivered nothing once its gateway was back")
	}
}

func mustParse(t *testing.T, raw string) *url.URL {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func TestWebhookRefusesBadCallers(t *testing.T) {
	s := newStack(t)
	s.deployNew("quiet", "upload", nil, nil)
	url := "http://" + s.addr + "/events"
	tests := []struct {
		name, auth, body string
		want             int
	}{
		{"no token", "", `{"Records":[]}`, 401},
		{"wrong token", "Bearer nope", `{"Records":[]}`, 401},
		{"basic auth", "Basic YWRtaW46YWRtaW4=", `{"Records":[]}`, 401},
		{"not json", "Bearer " + token, `{{{`, 400},
		{"no records", "Bearer " + token, `{"Records":[]}`, 400},
		{"record without key", "Bearer " + token, `{"Records":[{"eventName":"s3:ObjectCreated:Put","s3":{"bucket":{"name":"media"},"object":{}}}]}`, 400},
	}
	for _, tc := range tests {
		req, _ := http.NewRequest("POST", url, strings.NewReader(tc.body))
		if tc.auth != "" {
			req.Header.Set("Authorization", tc.auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, resp.StatusCode, tc.want)
		}
	}
	// Still routing afterwards.
	s.put("uploads/after.mp4", nil)
	s.waitFor("quiet", 1, 20*time.Second)
}
