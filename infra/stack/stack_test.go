package stack_test

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/segflow/segflow/infra/provider"
	"github.com/segflow/segflow/infra/s3iam"
	"github.com/segflow/segflow/infra/stack"
	"github.com/segflow/segflow/shared/layout"
)

func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// TestRepoStackIsWhatFaasCliReads parses the repository's stack.yml into
// the fields faas-cli reads and checks every function can be built and
// deployed from it.
func TestRepoStackIsWhatFaasCliReads(t *testing.T) {
	root := repoRoot()
	st, err := stack.Parse(filepath.Join(root, "stack.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if st.Provider.GatewayURL == "" || len(st.StackConfiguration.CopyExtraPaths) == 0 || st.StackConfiguration.CopyExtraPaths[0] != "./shared" {
		t.Fatalf("provider/configuration: %+v %+v", st.Provider, st.StackConfiguration)
	}
	topics := map[string]bool{layout.TopicUpload: true, layout.TopicSourceSegment: true,
		layout.TopicMarkedSegment: true, layout.TopicRenditionSegment: true}
	want := []string{"aitag", "packager", "qa", "split", "thumbnail", "transcode", "watermark"}
	if got := strings.Join(st.Names(), ","); got != strings.Join(want, ",") {
		t.Fatalf("functions %s, want %s", got, strings.Join(want, ","))
	}
	// The cache a runtime builds into: a build of unchanged code links nothing.
	b := &provider.Builder{RepoRoot: root, Dir: provider.DefaultBuildDir(t.TempDir())}
	for _, name := range st.Names() {
		t.Run(name, func(t *testing.T) {
			f := st.Functions[name]
			if _, err := os.Stat(filepath.Join(root, "template", f.Language, "Dockerfile")); err != nil {
				t.Errorf("template %s: %v", f.Language, err)
			}
			src, err := os.ReadFile(filepath.Join(st.HandlerDir(name), "handler.go"))
			// Its type is checked by the build below (the template calls it).
			if err != nil || !(strings.Contains(string(src), "func Handle(w http.ResponseWriter, r *http.Request)") ||
				strings.Contains(string(src), "var Handle = ")) {
				t.Errorf("handler %s: no Handle(w, r): %v", f.Handler, err)
			}
			if !strings.HasSuffix(f.Image, "/"+name+":latest") {
				t.Errorf("image %q", f.Image)
			}
			dep, err := st.Deployment(name)
			if err != nil {
				t.Fatal(err)
			}
			// faas-cli sends the template's fprocess: the one the image runs.
			if dep.EnvProcess != "handler" {
				t.Errorf("fprocess %q, want the template's \"handler\"", dep.EnvProcess)
			}
			for _, topic := range strings.Split((*dep.Annotations)["topic"], ",") {
				if !topics[strings.TrimSpace(topic)] {
					t.Errorf("topic %q is not one the router raises", topic)
				}
			}
			labels := *dep.Labels
			if labels["com.openfaas.scale.zero"] != "true" || labels["com.openfaas.scale.zero-duration"] == "" ||
				labels["com.openfaas.scale.min"] == "" || labels["com.openfaas.scale.max"] == "" {
				t.Errorf("scale labels %v", labels)
			}
			// Its own MinIO user's keys, and a grant for that user.
			if strings.Join(dep.Secrets, ",") != name+"-s3-access-key,"+name+"-s3-secret-key" {
				t.Errorf("secrets %v", dep.Secrets)
			}
			if g, ok := s3iam.GrantFromAnnotations(*dep.Annotations); !ok || len(g.Write) == 0 {
				t.Errorf("no storage grant: %+v", g)
			}
			if dep.Limits == nil || dep.Limits.Memory == "" || dep.Requests == nil || dep.Requests.CPU == "" {
				t.Errorf("limits %+v requests %+v", dep.Limits, dep.Requests)
			}
			if dep.EnvVars["S3_ENDPOINT"] == "" || dep.EnvVars["max_inflight"] == "" || dep.EnvVars["write_timeout"] == "" {
				t.Errorf("environment %v", dep.EnvVars)
			}
			if err := provider.ValidateDeployment(dep); err != nil {
				t.Error(err)
			}
			// Built the way the template's Dockerfile builds it.
			if err := b.Build(context.Background(), name, st.HandlerDir(name), filepath.Join(t.TempDir(), name)); err != nil {
				t.Errorf("build: %v", err)
			}
		})
	}
}

func TestParseIsStrict(t *testing.T) {
	tests := []struct {
		name, yaml, err string
	}{
		{"typo in a field", "version: 1.0\nprovider: {name: openfaas}\nfunctions:\n  f: {lang: go, handler: ./f, image: f, lables: {}}\n", "lables"},
		{"wrong provider", "version: 1.0\nprovider: {name: lambda}\nfunctions:\n  f: {lang: go, handler: ./f, image: f}\n", "provider"},
		{"old version", "version: 0.9\nprovider: {name: openfaas}\nfunctions:\n  f: {lang: go, handler: ./f, image: f}\n", "version"},
		{"no image", "version: 1.0\nprovider: {name: openfaas}\nfunctions:\n  f: {lang: go, handler: ./f}\n", "image"},
		{"bad name", "version: 1.0\nprovider: {name: openfaas}\nfunctions:\n  F_1: {lang: go, handler: ./f, image: f}\n", "invalid function name"},
		{"mistyped segflow annotation", "version: 1.0\nprovider: {name: openfaas}\nfunctions:\n  f: {lang: go, handler: ./f, image: f, annotations: {com.segflow.concurency: \"2\"}}\n", "com.segflow.concurency"},
		{"grant without its user's keys", "version: 1.0\nprovider: {name: openfaas}\nfunctions:\n  f: {lang: go, handler: ./f, image: f, annotations: {com.segflow.s3.read: \"uploads/*\"}, secrets: [s3-access-key, s3-secret-key]}\n", "f-s3-access-key"},
		{"grant outside the bucket", "version: 1.0\nprovider: {name: openfaas}\nfunctions:\n  f: {lang: go, handler: ./f, image: f, annotations: {com.segflow.s3.write: \"../other/*\"}, secrets: [f-s3-access-key, f-s3-secret-key]}\n", "inside the bucket"},
		{"concurrency not a number", "version: 1.0\nprovider: {name: openfaas}\nfunctions:\n  f: {lang: go, handler: ./f, image: f, annotations: {com.segflow.concurrency: two}}\n", "whole number"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "stack.yml")
			os.WriteFile(p, []byte(tc.yaml), 0o644)
			if _, err := stack.Parse(p); err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.err)
			}
		})
	}
	t.Setenv("REG", "registry.example")
	p := filepath.Join(t.TempDir(), "stack.yml")
	os.WriteFile(p, []byte("version: 1.0\nprovider: {name: openfaas}\nfunctions:\n  f:\n    lang: go\n    handler: ./f\n    image: \"${REG:-x}/f:${TAG:-dev}\"\n    environment:\n      OPT: ${SEGFLOW_UNSET_OPT:-}\n"), 0o644)
	st, err := stack.Parse(p)
	if err != nil || st.Functions["f"].Image != "registry.example/f:dev" {
		t.Fatalf("substitution: %v %+v", err, st)
	}
	// An unset optional setting is empty, not "<nil>".
	dep, err := st.Deployment("f")
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := dep.EnvVars["OPT"]; !ok || v != "" {
		t.Fatalf("OPT = %q (set %v), want empty", v, ok)
	}
}
