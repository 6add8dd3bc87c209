package router_test

import (
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/segflow/segflow/infra/internal/testgw"
	"github.com/segflow/segflow/infra/queue"
	"github.com/segflow/segflow/shared/testenv"
)

// TestRouterCommand runs `segflow router` as a process, the way it runs
// beside an OpenFaaS gateway, and sends it a notification by hand.
func TestRouterCommand(t *testing.T) {
	gw := testgw.Start(t)
	records := t.TempDir()
	dep := testgw.ProbeDeployment("hand", nil, map[string]string{"PROBE_RECORD_DIR": records})
	(*dep.Annotations)["topic"] = "upload"
	gw.MustDo(202, "POST", "/system/functions", dep)
	ns, err := queue.Open(queue.Options{StoreDir: t.TempDir(), Users: map[string]string{"router": "router-pw"}})
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()

	addr := testenv.FreeAddr(t)
	cmd := exec.Command(testgw.Binary(t), "router", "--listen", addr, "--nats", ns.UserURL("router"), "--gateway", gw.URL)
	cmd.Env = append(os.Environ(), "WEBHOOK_TOKEN=cmd-token", "SEGFLOW_GATEWAY_USER="+gw.User, "SEGFLOW_GATEWAY_PASSWORD="+gw.Password,
		"SEGFLOW_SECRETS_DIR="+t.TempDir())
	logf, _ := os.Create(filepath.Join(t.TempDir(), "router.log"))
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Signal(os.Interrupt); cmd.Wait() }()
	for i := 0; i < 100; i++ {
		if resp, err := http.Get("http://" + addr + "/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	post := func(token string) int {
		body := `{"EventName":"s3:ObjectCreated:Put","Records":[{"eventVersion":"2.0","eventSource":"minio:s3",` +
			`"eventTime":"2026-11-25T10:00:00Z","eventName":"s3:ObjectCreated:Put","s3":{"bucket":{"name":"media"},` +
			`"object":{"key":"uploads%2Fmy+film.mp4","size":1,"eTag":"e","sequencer":"1830A0E2E2F7E0A4"}}}]}`
		req, _ := http.NewRequest("POST", "http://"+addr+"/events/minio", strings.NewReader(body))
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := post(""); code != 401 {
		t.Fatalf("no token = %d", code)
	}
	// Subscriptions load a moment after start; MinIO would retry a 503.
	code := 0
	for i := 0; i < 100 && code != 200; i++ {
		if code = post("cmd-token"); code != 200 {
			time.Sleep(100 * time.Millisecond)
		}
	}
	if code != 200 {
		t.Fatalf("notification = %d", code)
	}
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if b, err := os.ReadFile(filepath.Join(records, "hand.jsonl")); err == nil && strings.Contains(string(b), `"subject":"uploads/my film.mp4"`) {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	b, _ := os.ReadFile(logf.Name())
	t.Fatalf("the function never got the event; router log:\n%s", b)
}
