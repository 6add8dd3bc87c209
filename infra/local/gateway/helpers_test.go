package gateway_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/openfaas/faas-provider/types"

	"github.com/segflow/segflow/shared/testenv"
)

var segflowBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "segflow-bin")
	if err != nil {
		panic(err)
	}
	segflowBin = filepath.Join(dir, "segflow")
	build := exec.Command("go", "build", "-o", segflowBin, "github.com/segflow/segflow/infra/cmd/segflow")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build segflow:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", "..", ".."))
}

func probeDir() string { return filepath.Join(repoRoot(), "infra", "local", "testdata", "probe") }

// gw is a gateway process started for one test.
type gw struct {
	t        testing.TB
	url      string
	home     string
	authDir  string
	user     string
	password string
	cmd      *exec.Cmd
	port     string
	extra    []string
}

func startGateway(t testing.TB, extra ...string) *gw {
	t.Helper()
	g := &gw{t: t, home: t.TempDir(), user: "admin", password: "s3cret-pw", extra: extra}
	g.authDir = filepath.Join(g.home, "auth")
	os.MkdirAll(g.authDir, 0o700)
	os.WriteFile(filepath.Join(g.authDir, "basic-auth-user"), []byte(g.user), 0o600)
	os.WriteFile(filepath.Join(g.authDir, "basic-auth-password"), []byte(g.password), 0o600)
	addr := testenv.FreeAddr(t)
	g.port = addr[strings.LastIndex(addr, ":")+1:]
	g.url = "http://127.0.0.1:" + g.port
	g.start()
	t.Cleanup(g.stop)
	return g
}

func (g *gw) start() {
	g.t.Helper()
	args := append([]string{"gateway", "--home", filepath.Join(g.home, "state"), "--repo", repoRoot(),
		"--port", g.port, "--auth-dir", g.authDir, "--function-env", "RUNTIME_WIDE=yes"}, g.extra...)
	g.cmd = exec.Command(segflowBin, args...)
	// A credential in the runtime's own environment must not reach functions.
	g.cmd.Env = append(os.Environ(), "MINIO_ROOT_USER=leaked")
	logf, _ := os.OpenFile(filepath.Join(g.home, "gateway.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	g.cmd.Stdout, g.cmd.Stderr = logf, logf
	if err := g.cmd.Start(); err != nil {
		g.t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(g.url + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	g.t.Fatalf("gateway not healthy; log:\n%s", g.log())
}

func (g *gw) stop() {
	if g.cmd == nil || g.cmd.Process == nil {
		return
	}
	_ = g.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { g.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		g.cmd.Process.Kill()
		<-done
	}
	g.cmd = nil
}

func (g *gw) log() string {
	b, _ := os.ReadFile(filepath.Join(g.home, "gateway.log"))
	return string(b)
}

// do sends a request as faas-cli does: JSON body, basic auth on /system.
func (g *gw) do(method, path string, body any, auth bool) (int, []byte, http.Header) {
	g.t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		r = strings.NewReader(b)
	default:
		j, _ := json.Marshal(b)
		r = bytes.NewReader(j)
	}
	req, _ := http.NewRequest(method, g.url+path, r)
	if auth {
		req.SetBasicAuth(g.user, g.password)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		g.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out, resp.Header
}

func (g *gw) mustDo(want int, method, path string, body any) []byte {
	g.t.Helper()
	code, out, _ := g.do(method, path, body, true)
	if code != want {
		g.t.Fatalf("%s %s = %d %s, want %d\ngateway log:\n%s", method, path, code, out, want, tail(g.log(), 3000))
	}
	return out
}

func (g *gw) status(name string) types.FunctionStatus {
	g.t.Helper()
	var st types.FunctionStatus
	if err := json.Unmarshal(g.mustDo(200, "GET", "/system/function/"+name, nil), &st); err != nil {
		g.t.Fatal(err)
	}
	return st
}

// waitReplicas polls until the available replicas equal n.
func (g *gw) waitReplicas(name string, n uint64, within time.Duration) {
	g.t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if g.status(name).AvailableReplicas == n {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	g.t.Fatalf("%s: replicas %d, want %d", name, g.status(name).AvailableReplicas, n)
}

func probeDeployment(name string, labels map[string]string, env map[string]string, secrets ...string) types.FunctionDeployment {
	ann := map[string]string{"com.segflow.handler": probeDir(), "topic": "test"}
	return types.FunctionDeployment{Service: name, Image: "segflow/probe:latest", EnvVars: env,
		Labels: &labels, Annotations: &ann, Secrets: secrets}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

