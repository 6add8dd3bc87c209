package gateway_test

import (
	"encoding/json"
	"github.com/segflow/segflow/infra/internal/testgw"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openfaas/faas-provider/types"
)

// TestGatewayAPIAsFaasCli drives the gateway with the requests faas-cli
// sends, in the order a user meets them.
func TestGatewayAPIAsFaasCli(t *testing.T) {
	g := testgw.Start(t)

	t.Run("system endpoints need basic auth", func(t *testing.T) {
		for _, p := range []string{"/system/functions", "/system/info", "/system/secrets", "/system/function/x"} {
			if code, _, _ := g.Do("GET", p, nil, false); code != http.StatusUnauthorized {
				t.Errorf("GET %s without auth = %d, want 401", p, code)
			}
		}
		req, _ := http.NewRequest("GET", g.URL+"/system/functions", nil)
		req.SetBasicAuth(g.User, "wrong")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("wrong password = %d", resp.StatusCode)
		}
	})

	g.MustDo(200, "POST", "/system/secrets", types.Secret{Name: "probe-secret", Value: "hunter2"})
	g.MustDo(409, "POST", "/system/secrets", types.Secret{Name: "probe-secret", Value: "again"})
	var secrets []types.Secret
	json.Unmarshal(g.MustDo(200, "GET", "/system/secrets", nil), &secrets)
	if len(secrets) != 1 || secrets[0].Name != "probe-secret" || secrets[0].Value != "" {
		t.Fatalf("secrets list = %+v (names only, no values)", secrets)
	}

	dep := testgw.ProbeDeployment("probe", map[string]string{"app": "probe"}, map[string]string{"greeting": "hello"}, "probe-secret")
	// faas-cli deploy: PUT first, POST when the gateway says 404.
	g.MustDo(404, "PUT", "/system/functions", dep)
	g.MustDo(202, "POST", "/system/functions", dep)

	t.Run("list and status", func(t *testing.T) {
		var list []types.FunctionStatus
		json.Unmarshal(g.MustDo(200, "GET", "/system/functions", nil), &list)
		if len(list) != 1 || list[0].Name != "probe" || list[0].Image != "segflow/probe:latest" {
			t.Fatalf("list = %+v", list)
		}
		st := g.Status("probe")
		if st.EnvVars["greeting"] != "hello" || (*st.Annotations)["topic"] != "test" || (*st.Labels)["app"] != "probe" || st.Namespace != "openfaas-fn" {
			t.Fatalf("status = %+v", st)
		}
		if code, _, _ := g.Do("GET", "/system/function/nope", nil, true); code != 404 {
			t.Fatalf("status of a missing function = %d", code)
		}
	})

	t.Run("invoke", func(t *testing.T) {
		code, body, hdr := g.Do("POST", "/function/probe", "ping", false)
		if code != 200 || string(body) != "ping" || hdr.Get("X-Probe-Method") != "POST" {
			t.Fatalf("invoke = %d %q %v", code, body, hdr)
		}
		code, body, _ = g.Do("GET", "/function/probe/env", nil, false)
		var got struct {
			Env     map[string]string
			Secrets map[string]string
		}
		if err := json.Unmarshal(body, &got); err != nil || code != 200 {
			t.Fatalf("env = %d %s", code, body)
		}
		if got.Env["greeting"] != "hello" || got.Env["SEGFLOW_FUNCTION"] != "probe" || got.Env["RUNTIME_WIDE"] != "yes" {
			t.Errorf("function env = %v", got.Env)
		}
		if got.Env["MINIO_ROOT_USER"] != "" {
			t.Errorf("runtime environment leaked into the function: %v", got.Env)
		}
		if len(got.Secrets) != 1 || got.Secrets["probe-secret"] != "hunter2" {
			t.Errorf("mounted secrets = %v", got.Secrets)
		}
		if code, _, _ := g.Do("POST", "/function/nope", "x", false); code != 404 {
			t.Errorf("invoke missing function = %d", code)
		}
	})

	t.Run("async with callback", func(t *testing.T) {
		type cb struct {
			id, status, name, body string
		}
		got := make(chan cb, 1)
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			got <- cb{r.Header.Get("X-Call-Id"), r.Header.Get("X-Function-Status"), r.Header.Get("X-Function-Name"), string(b)}
		}))
		defer srv.Close()
		req, _ := http.NewRequest("POST", g.URL+"/async-function/probe", strings.NewReader("later"))
		req.Header.Set("X-Callback-Url", srv.URL)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		id := resp.Header.Get("X-Call-Id")
		if resp.StatusCode != http.StatusAccepted || id == "" {
			t.Fatalf("async = %d, call id %q", resp.StatusCode, id)
		}
		select {
		case c := <-got:
			if c.id != id || c.status != "200" || c.name != "probe" || c.body != "later" {
				t.Fatalf("callback = %+v, want id %s", c, id)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("no callback; log:\n%s", testgw.Tail(g.Log(), 3000))
		}
		if code, _, _ := g.Do("POST", "/async-function/nope", "x", false); code != 404 {
			t.Errorf("async to a missing function = %d", code)
		}
	})

	t.Run("scale", func(t *testing.T) {
		g.MustDo(202, "POST", "/system/scale-function/probe", types.ScaleServiceRequest{ServiceName: "probe", Replicas: 3})
		g.WaitReplicas("probe", 3, 10*time.Second)
		if st := g.Status("probe"); st.Replicas != 3 {
			t.Fatalf("desired replicas = %d", st.Replicas)
		}
		// Every replica serves: a burst of parallel calls all succeed.
		var wg sync.WaitGroup
		errs := make(chan string, 30)
		for i := 0; i < 30; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				resp, err := http.Post(g.URL+"/function/probe", "text/plain", strings.NewReader("x"))
				if err != nil {
					errs <- err.Error()
					return
				}
				resp.Body.Close()
				if resp.StatusCode != 200 {
					errs <- resp.Status
				}
			}()
		}
		wg.Wait()
		close(errs)
		for e := range errs {
			t.Error("parallel call:", e)
		}
		g.MustDo(202, "POST", "/system/scale-function/probe", types.ScaleServiceRequest{ServiceName: "probe", Replicas: 1})
		g.WaitReplicas("probe", 1, 15*time.Second)
	})

	t.Run("update", func(t *testing.T) {
		dep.EnvVars["greeting"] = "bonjour"
		g.MustDo(202, "PUT", "/system/functions", dep)
		_, body, _ := g.Do("GET", "/function/probe/env", nil, false)
		if !strings.Contains(string(body), `"greeting":"bonjour"`) {
			t.Fatalf("after update env = %s", body)
		}
	})

	t.Run("logs", func(t *testing.T) {
		body := g.MustDo(200, "GET", "/system/logs?name=probe&tail=100", nil)
		if !strings.Contains(string(body), "probe called POST /") {
			t.Fatalf("logs = %s", body)
		}
	})

	t.Run("bad requests", func(t *testing.T) {
		tests := []struct {
			method, path string
			body         any
			want         int
		}{
			{"POST", "/system/functions", "{not json", 415}, // not sent as JSON
			{"POST", "/system/functions", types.FunctionDeployment{Service: "Bad_Name", Image: "x"}, 400},
			{"POST", "/system/functions", types.FunctionDeployment{Service: "nosrc", Image: "segflow/nosuchfunction:1"}, 400},
			{"POST", "/system/functions", testgw.ProbeDeployment("needs-secret", nil, nil, "missing-secret"), 400},
			{"POST", "/system/scale-function/nope", types.ScaleServiceRequest{ServiceName: "nope", Replicas: 1}, 404},
			{"DELETE", "/system/functions", types.DeleteFunctionRequest{FunctionName: "nope"}, 404},
			{"GET", "/system/functions?namespace=other", nil, 400},
		}
		for _, tc := range tests {
			if code, out, _ := g.Do(tc.method, tc.path, tc.body, true); code != tc.want {
				t.Errorf("%s %s = %d %s, want %d", tc.method, tc.path, code, out, tc.want)
			}
		}
	})

	t.Run("info and namespaces", func(t *testing.T) {
		var info struct {
			Provider types.ProviderInfo `json:"provider"`
		}
		json.Unmarshal(g.MustDo(200, "GET", "/system/info", nil), &info)
		if info.Provider.Name != "segflow-local" {
			t.Fatalf("info = %+v", info)
		}
		if body := g.MustDo(200, "GET", "/system/namespaces", nil); !strings.Contains(string(body), "openfaas-fn") {
			t.Fatalf("namespaces = %s", body)
		}
		if _, body, _ := g.Do("GET", "/metrics", nil, false); !strings.Contains(string(body), `gateway_function_invocation_total{code="200",function_name="probe"}`) {
			t.Fatalf("metrics lack invocations:\n%s", testgw.Tail(string(body), 2000))
		}
	})

	t.Run("delete", func(t *testing.T) {
		g.MustDo(202, "DELETE", "/system/functions", types.DeleteFunctionRequest{FunctionName: "probe"})
		if code, _, _ := g.Do("GET", "/system/function/probe", nil, true); code != 404 {
			t.Fatalf("status after delete = %d", code)
		}
		if code, _, _ := g.Do("POST", "/function/probe", "x", false); code != 404 {
			t.Fatalf("invoke after delete = %d", code)
		}
	})
}
