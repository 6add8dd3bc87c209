// Package testgw starts a real `segflow gateway` process for integration
// tests and speaks to it the way faas-cli does.
package testgw

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
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/openfaas/faas-provider/types"

	"github.com/segflow/segflow/shared/testenv"
)

var (
	buildOnce sync.Once
	segflow   string
	buildErr  error
)

// Binary builds the segflow command once per test binary. The caller's
// TestMain removes Dir() when done.
func Binary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "segflow-bin")
		if err != nil {
			buildErr = err
			return
		}
		segflow = filepath.Join(dir, "segflow")
		build := exec.Command("go", "build", "-o", segflow, "github.com/segflow/segflow/infra/cmd/segflow")
		if out, err := build.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("build segflow: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return segflow
}

// Cleanup removes the built binary; call it from TestMain after m.Run.
func Cleanup() {
	if segflow != "" {
		os.RemoveAll(filepath.Dir(segflow))
	}
}

// RepoRoot is the repository's top folder.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", "..", ".."))
}

// ProbeDir is the test fixture function's source.
func ProbeDir() string { return filepath.Join(RepoRoot(), "infra", "provider", "testdata", "probe") }

// GW is a gateway process started for one test.
type GW struct {
	T        testing.TB
	URL      string
	Home     string
	AuthDir  string
	User     string
	Password string
	cmd      *exec.Cmd
	Port     string
	extra    []string
}

// Start runs a gateway with basic auth on a free port; extra flags follow.
func Start(t testing.TB, extra ...string) *GW {
	t.Helper()
	g := &GW{T: t, Home: t.TempDir(), User: "admin", Password: "s3cret-pw", extra: extra}
	g.AuthDir = filepath.Join(g.Home, "auth")
	os.MkdirAll(g.AuthDir, 0o700)
	os.WriteFile(filepath.Join(g.AuthDir, "basic-auth-user"), []byte(g.User), 0o600)
	os.WriteFile(filepath.Join(g.AuthDir, "basic-auth-password"), []byte(g.Password), 0o600)
	addr := testenv.FreeAddr(t)
	g.Port = addr[strings.LastIndex(addr, ":")+1:]
	g.URL = "http://127.0.0.1:" + g.Port
	g.Start()
	t.Cleanup(g.Stop)
	return g
}

// Start (re)starts the process on the same state and port.
func (g *GW) Start() {
	g.T.Helper()
	args := append([]string{"gateway", "--home", filepath.Join(g.Home, "state"), "--repo", RepoRoot(),
		"--port", g.Port, "--auth-dir", g.AuthDir, "--function-env", "RUNTIME_WIDE=yes",
		// The tests' callback servers listen on loopback.
		"--callback-host", "127.0.0.1"}, g.extra...)
	g.cmd = exec.Command(Binary(g.T), args...)
	// A credential in the runtime's own environment must not reach functions.
	g.cmd.Env = append(os.Environ(), "MINIO_ROOT_USER=leaked")
	logf, _ := os.OpenFile(filepath.Join(g.Home, "gateway.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	g.cmd.Stdout, g.cmd.Stderr = logf, logf
	if err := g.cmd.Start(); err != nil {
		g.T.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(g.URL + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	g.T.Fatalf("gateway not healthy; log:\n%s", g.Log())
}

// Stop terminates the process gracefully.
func (g *GW) Stop() {
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

// Log is the process output so far.
func (g *GW) Log() string {
	b, _ := os.ReadFile(filepath.Join(g.Home, "gateway.log"))
	return string(b)
}

// Do sends a request as faas-cli does: JSON body, basic auth when asked.
func (g *GW) Do(method, path string, body any, auth bool) (int, []byte, http.Header) {
	g.T.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		r = strings.NewReader(b)
	default:
		j, _ := json.Marshal(b)
		r = bytes.NewReader(j)
	}
	req, _ := http.NewRequest(method, g.URL+path, r)
	if _, isString := body.(string); body != nil && !isString {
		req.Header.Set("Content-Type", "application/json")
	}
	if auth {
		req.SetBasicAuth(g.User, g.Password)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		g.T.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out, resp.Header
}

// MustDo is Do with basic auth that fails the test on another status.
func (g *GW) MustDo(want int, method, path string, body any) []byte {
	g.T.Helper()
	code, out, _ := g.Do(method, path, body, true)
	if code != want {
		g.T.Fatalf("%s %s = %d %s, want %d\ngateway log:\n%s", method, path, code, out, want, Tail(g.Log(), 3000))
	}
	return out
}

// Status reads /system/function/NAME.
func (g *GW) Status(name string) types.FunctionStatus {
	g.T.Helper()
	var st types.FunctionStatus
	if err := json.Unmarshal(g.MustDo(200, "GET", "/system/function/"+name, nil), &st); err != nil {
		g.T.Fatal(err)
	}
	return st
}

// WaitReplicas polls until the available replicas equal n.
func (g *GW) WaitReplicas(name string, n uint64, within time.Duration) {
	g.T.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if g.Status(name).AvailableReplicas == n {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	g.T.Fatalf("%s: replicas %d, want %d", name, g.Status(name).AvailableReplicas, n)
}

// ProbeDeployment deploys the fixture function under name.
func ProbeDeployment(name string, labels map[string]string, env map[string]string, secrets ...string) types.FunctionDeployment {
	ann := map[string]string{"com.segflow.handler": ProbeDir(), "topic": "test"}
	return types.FunctionDeployment{Service: name, Image: "segflow/probe:latest", EnvVars: env,
		Labels: &labels, Annotations: &ann, Secrets: secrets}
}

// Tail is the last n bytes of s.
func Tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
