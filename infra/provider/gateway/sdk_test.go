package gateway_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/openfaas/faas-provider/logs"
	"github.com/openfaas/faas-provider/types"
	sdk "github.com/openfaas/go-sdk"

	"github.com/segflow/segflow/infra/internal/testgw"
	"github.com/segflow/segflow/infra/stack"
)

// sdkClient is go-sdk's client, the one faas-cli calls, with the gateway's
// credentials.
func sdkClient(t *testing.T, g *testgw.GW) *sdk.Client {
	u, err := url.Parse(g.URL)
	if err != nil {
		t.Fatal(err)
	}
	return sdk.NewClient(u, &sdk.BasicAuth{Username: g.User, Password: g.Password}, &http.Client{Timeout: 2 * time.Minute})
}

// invoke calls /function/NAME.NAMESPACE (or /async-function/...) through
// go-sdk, as `faas-cli invoke` does.
func invoke(t *testing.T, c *sdk.Client, name string, async bool, method, query, body string, header http.Header) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequest(method, "http://placeholder/?"+query, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := c.InvokeFunction(name, "", async, false, req)
	if err != nil {
		t.Fatalf("invoke %s: %v", name, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

// TestGoSDKClient drives the gateway only through go-sdk: deploy a
// function of stack.yml exactly as faas-cli sends it and an fprocess image,
// list, describe, invoke by NAME.NAMESPACE sync and async, logs, scale,
// secrets, remove, and /system/info.
func TestGoSDKClient(t *testing.T) {
	g := testgw.Start(t)
	c := sdkClient(t, g)
	ctx := context.Background()

	t.Run("system info in the gateway's shape", func(t *testing.T) {
		info, err := c.GetInfo(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if info.Provider.Provider == "" || info.Provider.Orchestration == "" || info.Provider.Version.SHA == "" ||
			info.Version.Release == "" || info.Version.SHA == "" || info.Arch == "" {
			t.Fatalf("info = %+v", info)
		}
	})

	t.Run("deploy from stack.yml as faas-cli sends it", func(t *testing.T) {
		st, err := stack.Parse(filepath.Join(testgw.RepoRoot(), "stack.yml"), stack.Options{Filter: "packager"})
		if err != nil {
			t.Fatal(err)
		}
		dep, err := st.Deployment("packager")
		if err != nil {
			t.Fatal(err)
		}
		// As on OpenFaaS, the stack's secrets exist before the deploy.
		for _, name := range dep.Secrets {
			if _, err := c.CreateSecret(ctx, types.Secret{Name: name, Value: "x", Namespace: sdk.DefaultNamespace}); err != nil {
				t.Fatal(err)
			}
		}
		// No handler annotation: the image's name finds functions/packager.
		if code, err := c.Deploy(ctx, dep); err != nil || code != http.StatusAccepted {
			t.Fatalf("deploy = %d %v", code, err)
		}
		fn, err := c.GetFunction(ctx, "packager", sdk.DefaultNamespace)
		if err != nil || fn.Image != dep.Image || fn.EnvProcess != "handler" || fn.AvailableReplicas != 1 {
			t.Fatalf("describe = %+v %v", fn, err)
		}
		// A call with no CloudEvent reaches the packager, which refuses it.
		if code, body, _ := invoke(t, c, "packager", false, http.MethodPost, "", "{}", nil); code != http.StatusUnprocessableEntity || !strings.Contains(body, "cloudevent") {
			t.Fatalf("packager without an event = %d %s", code, body)
		}
	})

	echo := types.FunctionDeployment{Service: "echo", Image: "ghcr.io/openfaas/alpine:latest", EnvProcess: "cat",
		Labels: &map[string]string{"app": "echo"}, Annotations: &map[string]string{"note": "classic watchdog"}}
	t.Run("fprocess image", func(t *testing.T) {
		if code, err := c.Deploy(ctx, echo); err != nil || code != http.StatusAccepted {
			t.Fatalf("deploy = %d %v", code, err)
		}
		code, body, hdr := invoke(t, c, "echo", false, http.MethodPost, "", "hello watchdog", nil)
		if code != 200 || body != "hello watchdog" || len(hdr.Values("X-Call-Id")) != 1 || hdr.Get("X-Call-Id") == "" ||
			len(hdr.Values("X-Start-Time")) != 1 || hdr.Get("X-Start-Time") == "" {
			t.Fatalf("invoke = %d %q %v", code, body, hdr)
		}
		env := types.FunctionDeployment{Service: "env-test", Image: "functions/alpine:latest", EnvProcess: "env",
			EnvVars: map[string]string{"custom_env": "custom_env_value"}}
		if _, err := c.Deploy(ctx, env); err != nil {
			t.Fatal(err)
		}
		code, body, _ = invoke(t, c, "env-test", false, http.MethodPut, "testing=1", "", nil)
		for _, want := range []string{"custom_env=custom_env_value", "Http_Method=PUT", "Http_Query=testing=1", "Http_X_Call_Id="} {
			if code != 200 || !strings.Contains(body, want) {
				t.Fatalf("env = %d, want %s in:\n%s", code, want, body)
			}
		}
		if strings.Contains(body, "MINIO_ROOT_USER") {
			t.Fatal("the runtime's own environment reached a watchdog function")
		}
		fail := types.FunctionDeployment{Service: "fails", Image: "functions/alpine:latest", EnvProcess: "sh -c exit_3"}
		if _, err := c.Deploy(ctx, fail); err != nil {
			t.Fatal(err)
		}
		if code, body, _ := invoke(t, c, "fails", false, http.MethodPost, "", "", nil); code != 500 || !strings.Contains(body, "exit_3") {
			t.Fatalf("a failing fprocess = %d %q, want 500 with its stderr", code, body)
		}
	})

	t.Run("images that cannot run here are refused with the reason", func(t *testing.T) {
		for _, dep := range []types.FunctionDeployment{
			{Service: "noproc", Image: "ghcr.io/openfaas/alpine:latest"},
			{Service: "imageonly", Image: "theaxer/redirector:latest", EnvProcess: "./handler"},
		} {
			code, err := c.Deploy(ctx, dep)
			if code != http.StatusBadRequest || err == nil || !(strings.Contains(err.Error(), "fprocess") || strings.Contains(err.Error(), "only in the image")) {
				t.Errorf("deploy %s = %d %v, want 400 saying what runs locally", dep.Service, code, err)
			}
		}
	})

	t.Run("list and describe", func(t *testing.T) {
		fns, err := c.GetFunctions(ctx, sdk.DefaultNamespace)
		if err != nil {
			t.Fatal(err)
		}
		names := map[string]types.FunctionStatus{}
		for _, f := range fns {
			names[f.Name] = f
		}
		got, ok := names["echo"]
		if !ok || got.Namespace != sdk.DefaultNamespace || got.EnvProcess != "cat" || (*got.Labels)["app"] != "echo" || (*got.Labels)["faas_function"] != "echo" ||
			(*got.Annotations)["note"] != "classic watchdog" {
			t.Fatalf("list = %+v", fns)
		}
		if _, err := c.GetFunction(ctx, "nosuch", sdk.DefaultNamespace); err == nil {
			t.Fatal("describe of a missing function succeeded")
		}
	})

	t.Run("invoke by name in another namespace is 404", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPost, "http://placeholder/", strings.NewReader("x"))
		resp, err := c.InvokeFunction("echo", "other-ns", false, false, req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Fatalf("echo.other-ns = %d, want 404", resp.StatusCode)
		}
	})

	t.Run("async by NAME.NAMESPACE posts to the callback", func(t *testing.T) {
		got := make(chan string, 1)
		cb := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			got <- r.Header.Get("X-Call-Id") + " " + string(b)
		}))
		defer cb.Close()
		code, _, hdr := invoke(t, c, "echo", true, http.MethodPost, "", "queued", http.Header{"X-Callback-Url": {cb.URL}})
		if code != http.StatusAccepted || hdr.Get("X-Call-Id") == "" {
			t.Fatalf("async = %d %v", code, hdr)
		}
		select {
		case s := <-got:
			if s != hdr.Get("X-Call-Id")+" queued" {
				t.Fatalf("callback got %q", s)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("no callback")
		}
	})

	t.Run("async callbacks reach no private address", func(t *testing.T) {
		// 127.0.0.1 is allowed for this gateway (--callback-host); the
		// same loopback by name, the metadata address and a private
		// network are not. Each is refused before anything is queued or sent.
		for _, cb := range []string{"http://localhost:1/", "http://169.254.169.254/latest/meta-data/", "http://10.1.2.3/hook", "file:///etc/passwd"} {
			code, body, _ := invoke(t, c, "echo", true, http.MethodPost, "", "x", http.Header{"X-Callback-Url": {cb}})
			if code != http.StatusBadRequest || !strings.Contains(body, "callback refused") {
				t.Errorf("callback %s = %d %q, want 400", cb, code, body)
			}
		}
	})

	t.Run("logs", func(t *testing.T) {
		lctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		ch, err := c.GetLogs(lctx, "echo", sdk.DefaultNamespace, false, 0, nil)
		if err != nil {
			t.Fatal(err)
		}
		var lines []logs.Message
		for m := range ch {
			lines = append(lines, m)
		}
		var forked, wrote bool
		for _, m := range lines {
			text := strings.TrimLeft(m.Text, "0123456789/: ")
			forked = forked || strings.HasPrefix(text, "Forking fprocess")
			wrote = wrote || strings.HasPrefix(text, "Wrote 14 Bytes")
			if m.Name != "echo" {
				t.Fatalf("a line of %s in echo's logs", m.Name)
			}
		}
		if !forked || !wrote {
			t.Fatalf("logs lack the watchdog's lines: %+v", lines)
		}
		if _, err := c.GetLogs(lctx, "nosuch", sdk.DefaultNamespace, false, 0, nil); err == nil || !strings.Contains(err.Error(), "not found") {
			t.Fatalf("logs of a missing function: %v, want not found", err)
		}
	})

	t.Run("a manual scale holds until idle for the zero-duration", func(t *testing.T) {
		dep := types.FunctionDeployment{Service: "held", Image: "functions/alpine:latest", EnvProcess: "sha512sum",
			Labels: &map[string]string{"com.openfaas.scale.zero": "true", "com.openfaas.scale.zero-duration": "3s"}}
		if _, err := c.Deploy(ctx, dep); err != nil {
			t.Fatal(err)
		}
		waitFunction(t, c, "held", 15*time.Second, func(f types.FunctionStatus) bool { return f.AvailableReplicas == 0 })
		if err := c.ScaleFunction(ctx, "held", sdk.DefaultNamespace, 2); err != nil {
			t.Fatal(err)
		}
		scaled := time.Now()
		time.Sleep(1500 * time.Millisecond)
		if f, err := c.GetFunction(ctx, "held", ""); err != nil || f.Replicas != 2 || f.AvailableReplicas != 2 {
			t.Fatalf("1.5 s after scaling to 2: %+v %v", f, err)
		}
		waitFunction(t, c, "held", 15*time.Second, func(f types.FunctionStatus) bool { return f.AvailableReplicas == 0 })
		if held := time.Since(scaled); held < 3*time.Second {
			t.Fatalf("scaled back to zero after %s, before its zero-duration", held)
		}
		if err := c.ScaleFunction(ctx, "nosuch", sdk.DefaultNamespace, 1); err == nil {
			t.Fatal("scaling a missing function succeeded")
		}
	})

	t.Run("secrets", func(t *testing.T) {
		s := types.Secret{Name: "api-key", Value: "first", Namespace: sdk.DefaultNamespace}
		if code, err := c.CreateSecret(ctx, s); err != nil || code != http.StatusOK {
			t.Fatalf("create = %d %v", code, err)
		}
		if code, _ := c.CreateSecret(ctx, s); code != http.StatusConflict {
			t.Fatalf("create again = %d, want 409", code)
		}
		list, err := c.GetSecrets(ctx, sdk.DefaultNamespace)
		if err != nil || len(list) != 3 || list[0].Name != "api-key" || list[0].Value != "" {
			t.Fatalf("list = %+v %v (names only)", list, err)
		}
		reader := types.FunctionDeployment{Service: "reader", Image: "functions/alpine:latest",
			EnvProcess: "cat /var/openfaas/secrets/api-key", Secrets: []string{"api-key"}}
		if _, err := c.Deploy(ctx, reader); err != nil {
			t.Fatal(err)
		}
		if os.Geteuid() == 0 {
			if code, body, _ := invoke(t, c, "reader", false, http.MethodPost, "", "", nil); code != 200 || body != "first" {
				t.Fatalf("secret at OpenFaaS's path = %d %q", code, body)
			}
		}
		s.Value = "second"
		if code, err := c.UpdateSecret(ctx, s); err != nil || code != http.StatusOK {
			t.Fatalf("update = %d %v", code, err)
		}
		// A redeploy mounts the new value, as on OpenFaaS.
		if _, err := c.Update(ctx, reader); err != nil {
			t.Fatal(err)
		}
		if os.Geteuid() == 0 {
			if code, body, _ := invoke(t, c, "reader", false, http.MethodPost, "", "", nil); code != 200 || body != "second" {
				t.Fatalf("updated secret = %d %q", code, body)
			}
		}
		if err := c.DeleteFunction(ctx, "reader", sdk.DefaultNamespace); err != nil {
			t.Fatal(err)
		}
		if err := c.DeleteSecret(ctx, "api-key", sdk.DefaultNamespace); err != nil {
			t.Fatal(err)
		}
		if list, _ := c.GetSecrets(ctx, sdk.DefaultNamespace); len(list) != 2 {
			t.Fatalf("after delete: %+v", list)
		}
	})

	t.Run("remove", func(t *testing.T) {
		if err := c.DeleteFunction(ctx, "echo", sdk.DefaultNamespace); err != nil {
			t.Fatal(err)
		}
		if _, err := c.GetFunction(ctx, "echo", sdk.DefaultNamespace); err == nil {
			t.Fatal("echo still there")
		}
		if code, _, _ := invoke(t, c, "echo", false, http.MethodPost, "", "x", nil); code != http.StatusNotFound {
			t.Fatalf("invoke after remove = %d", code)
		}
		if err := c.DeleteFunction(ctx, "echo", sdk.DefaultNamespace); err == nil {
			t.Fatal("removing it twice succeeded")
		}
	})
}

// TestRateAutoscaling: calls above 5 per second add replicas up to the
// function's max; when they stop, it returns to its min.
func TestRateAutoscaling(t *testing.T) {
	g := testgw.Start(t)
	c := sdkClient(t, g)
	ctx := context.Background()
	dep := types.FunctionDeployment{Service: "busy", Image: "functions/alpine:latest", EnvProcess: "sha512sum",
		Labels: &map[string]string{"com.openfaas.scale.min": "1", "com.openfaas.scale.max": "2"}}
	if _, err := c.Deploy(ctx, dep); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(50 * time.Millisecond) // 20 calls a second
		defer tick.Stop()
		for i := 0; i < 1200; i++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			resp, err := http.Post(g.URL+"/function/busy", "text/plain", strings.NewReader("x"))
			if err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}
	}()
	waitFunction(t, c, "busy", 40*time.Second, func(f types.FunctionStatus) bool { return f.Replicas == 2 && f.AvailableReplicas == 2 })
	close(stop)
	<-done
	waitFunction(t, c, "busy", 40*time.Second, func(f types.FunctionStatus) bool { return f.Replicas == 1 && f.AvailableReplicas == 1 })
}

func waitFunction(t *testing.T, c *sdk.Client, name string, within time.Duration, ok func(types.FunctionStatus) bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	var last types.FunctionStatus
	for time.Now().Before(deadline) {
		f, err := c.GetFunction(context.Background(), name, sdk.DefaultNamespace)
		if err != nil {
			t.Fatal(err)
		}
		if ok(f) {
			return
		}
		last = f
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s: still %d desired / %d available after %s", name, last.Replicas, last.AvailableReplicas, within)
}
