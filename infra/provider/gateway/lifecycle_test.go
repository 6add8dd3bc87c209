package gateway_test

import (
	"fmt"
	"github.com/segflow/segflow/infra/internal/testgw"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openfaas/faas-provider/types"
)

func TestScaleToZeroThenCall(t *testing.T) {
	g := testgw.Start(t)
	g.MustDo(202, "POST", "/system/functions", testgw.ProbeDeployment("idler",
		map[string]string{"com.openfaas.scale.zero": "true", "com.openfaas.scale.zero-duration": "1s"}, nil))

	// Idle after deploy: the reaper takes it to zero.
	g.WaitReplicas("idler", 0, 10*time.Second)
	if st := g.Status("idler"); st.Replicas != 0 {
		t.Fatalf("desired replicas after idle = %d", st.Replicas)
	}
	// The call waits for the start and succeeds.
	code, body, _ := g.Do("POST", "/function/idler", "wake", false)
	if code != 200 || string(body) != "wake" {
		t.Fatalf("call from zero = %d %q", code, body)
	}
	if st := g.Status("idler"); st.AvailableReplicas != 1 || st.Replicas != 1 {
		t.Fatalf("after the call: %d available / %d desired, want 1/1", st.AvailableReplicas, st.Replicas)
	}
	// Idle again: back to zero.
	g.WaitReplicas("idler", 0, 10*time.Second)

	// Calls that keep coming keep it up past the idle time.
	for i := 0; i < 15; i++ {
		if code, _, _ := g.Do("POST", "/function/idler", "x", false); code != 200 {
			t.Fatalf("call %d = %d", i, code)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if st := g.Status("idler"); st.AvailableReplicas != 1 {
		t.Fatalf("a busy function was scaled down: %+v", st.AvailableReplicas)
	}
	// A long call is never cut by the idle reaper.
	if code, body, _ := g.Do("GET", "/function/idler/sleep?ms=2500", nil, false); code != 200 || string(body) != "slept" {
		t.Fatalf("long call = %d %q", code, body)
	}
}

func TestCrashGives502AndNextCallRestarts(t *testing.T) {
	g := testgw.Start(t)
	g.MustDo(202, "POST", "/system/functions", testgw.ProbeDeployment("crasher", nil, nil))
	code, _, _ := g.Do("POST", "/function/crasher", "ok", false)
	if code != 200 {
		t.Fatalf("first call = %d", code)
	}
	code, body, _ := g.Do("GET", "/function/crasher/crash", nil, false)
	if code != http.StatusBadGateway {
		t.Fatalf("crashing call = %d %s, want 502", code, body)
	}
	code, body, _ = g.Do("POST", "/function/crasher", "again", false)
	if code != 200 || string(body) != "again" {
		t.Fatalf("call after crash = %d %q", code, body)
	}
	if !strings.Contains(g.Log(), `"msg":"replica exited"`) {
		t.Error("the crash was not logged")
	}
}

func TestMaxInflightGives429(t *testing.T) {
	g := testgw.Start(t)
	g.MustDo(202, "POST", "/system/functions", testgw.ProbeDeployment("narrow", nil, map[string]string{"max_inflight": "1"}))
	var wg sync.WaitGroup
	codes := make(chan int, 2)
	for i := 0; i < 2; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			time.Sleep(time.Duration(i) * 200 * time.Millisecond)
			c, _, _ := g.Do("GET", "/function/narrow/sleep?ms=1000", nil, false)
			codes <- c
		}(i)
	}
	wg.Wait()
	close(codes)
	got := map[int]int{}
	for c := range codes {
		got[c]++
	}
	if got[200] != 1 || got[429] != 1 {
		t.Fatalf("codes = %v, want one 200 and one 429", got)
	}
}

// TestAsyncCallsSurviveRestart queues calls, stops the gateway while they
// are being worked off, starts it again on the same state and expects a
// callback for every call.
func TestAsyncCallsSurviveRestart(t *testing.T) {
	g := testgw.Start(t, "--async-concurrency", "1")
	g.MustDo(202, "POST", "/system/functions", testgw.ProbeDeployment("slow", nil, nil))

	var mu sync.Mutex
	done := map[string]string{}
	first := make(chan struct{}, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		done[r.Header.Get("X-Call-Id")] = r.Header.Get("X-Function-Status") + ":" + string(b)
		mu.Unlock()
		select {
		case first <- struct{}{}:
		default:
		}
	}))
	defer srv.Close()

	var ids []string
	for i := 0; i < 5; i++ {
		req, _ := http.NewRequest("POST", g.URL+"/async-function/slow/sleep?ms=400", nil)
		req.Header.Set("X-Callback-Url", srv.URL)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 202 {
			t.Fatalf("queue call %d = %d", i, resp.StatusCode)
		}
		ids = append(ids, resp.Header.Get("X-Call-Id"))
	}
	select {
	case <-first:
	case <-time.After(20 * time.Second):
		t.Fatalf("no first callback; log:\n%s", testgw.Tail(g.Log(), 3000))
	}
	g.Stop()
	mu.Lock()
	before := len(done)
	mu.Unlock()
	if before >= len(ids) {
		t.Fatalf("all %d calls finished before the restart; the test proves nothing", before)
	}
	g.Start()

	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		mu.Lock()
		n := len(done)
		mu.Unlock()
		if n == len(ids) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, id := range ids {
		if done[id] != "200:slept" {
			t.Errorf("call %s: callback %q; %d of %d done before restart", id, done[id], before, len(ids))
		}
	}
	if t.Failed() || testing.Verbose() {
		t.Logf("log:\n%s", testgw.Tail(g.Log(), 6000))
	}
	// The restored function keeps its deployment.
	if st := g.Status("slow"); st.Image != "segflow/probe:latest" {
		t.Fatalf("after restart: %+v", st)
	}
	_ = types.FunctionStatus{}
}

// Callers that never finish sending their bodies hold no slot: with
// max_inflight 1 and two such connections open, a real call still runs.
func TestSlowBodiesHoldNoSlot(t *testing.T) {
	g := testgw.Start(t)
	g.MustDo(202, "POST", "/system/functions", testgw.ProbeDeployment("slowbody", nil, map[string]string{"max_inflight": "1"}))
	for i := 0; i < 2; i++ {
		c, err := net.Dial("tcp", strings.TrimPrefix(g.URL, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		// Headers promise a body that never comes (curl -T - with nothing piped).
		if _, err := io.WriteString(c, "POST /function/slowbody HTTP/1.1\r\nHost: gw\r\nContent-Length: 1000000\r\n\r\npartial"); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(300 * time.Millisecond) // both are in the gateway now
	for i := 0; i < 3; i++ {
		if code, body, _ := g.Do("POST", "/function/slowbody", "real", false); code != 200 || string(body) != "real" {
			t.Fatalf("call %d beside two stalled bodies = %d %q, want 200", i, code, body)
		}
	}
}

// A page on another site can make a browser send the gateway's cached
// basic-auth credentials; state-changing requests from it are refused.
func TestCrossOriginWritesRefused(t *testing.T) {
	g := testgw.Start(t)
	g.MustDo(202, "POST", "/system/functions", testgw.ProbeDeployment("target", nil, nil))
	send := func(origin, site, ctype, body string) int {
		req, _ := http.NewRequest("POST", g.URL+"/system/scale-function/target", strings.NewReader(body))
		req.SetBasicAuth(g.User, g.Password)
		for k, v := range map[string]string{"Origin": origin, "Sec-Fetch-Site": site, "Content-Type": ctype} {
			if v != "" {
				req.Header.Set(k, v)
			}
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	scale := `{"serviceName":"target","replicas":2}`
	tests := []struct {
		name, origin, site, ctype string
		want                      int
	}{
		{"form from another site", "http://evil.example", "cross-site", "text/plain", 403},
		{"JSON from another site", "http://evil.example", "", "application/json", 403},
		{"cross-site without Origin", "", "cross-site", "application/json", 403},
		{"text/plain, no Origin", "", "", "text/plain", 415},
		{"same origin JSON", g.URL, "same-origin", "application/json", 202},
		{"a CLI (no Origin)", "", "", "application/json", 202},
	}
	for _, tc := range tests {
		if got := send(tc.origin, tc.site, tc.ctype, scale); got != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, got, tc.want)
		}
	}
}

// The gateway listens on loopback unless told otherwise: the kernel's
// table of listening sockets has its port on 127.0.0.1 only.
func TestGatewayListensOnLoopback(t *testing.T) {
	g := testgw.Start(t)
	raw, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		t.Skip("no /proc/net/tcp:", err)
	}
	port, _ := strconv.Atoi(g.Port)
	suffix := fmt.Sprintf(":%04X", port)
	var listening []string
	for _, line := range strings.Split(string(raw), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) > 3 && f[3] == "0A" && strings.HasSuffix(f[1], suffix) { // 0A: LISTEN
			listening = append(listening, f[1])
		}
	}
	if len(listening) != 1 || listening[0] != "0100007F"+suffix { // 127.0.0.1, little-endian hex
		t.Fatalf("port %d listens on %v, want 127.0.0.1 only", port, listening)
	}
}
