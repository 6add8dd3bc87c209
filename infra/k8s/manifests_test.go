// Package k8s holds segflow's Kubernetes manifests; this test loads each
// of them strictly into the typed objects the API server would read.
package k8s

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"sigs.k8s.io/yaml"
)

// Istio's security CRDs, with the fields segflow uses: strict decoding
// into these rejects a misspelt field as the API server's schema would.
type istioMeta struct {
	APIVersion string            `json:"apiVersion"`
	Kind       string            `json:"kind"`
	Metadata   map[string]string `json:"metadata"`
}

type peerAuthentication struct {
	istioMeta
	Spec struct {
		Selector *struct {
			MatchLabels map[string]string `json:"matchLabels"`
		} `json:"selector,omitempty"`
		MTLS struct {
			Mode string `json:"mode"`
		} `json:"mtls"`
	} `json:"spec"`
}

type authorizationPolicy struct {
	istioMeta
	Spec struct {
		Action string `json:"action"`
		Rules  []struct {
			From []struct {
				Source struct {
					Principals []string `json:"principals,omitempty"`
					Namespaces []string `json:"namespaces,omitempty"`
				} `json:"source"`
			} `json:"from"`
		} `json:"rules"`
	} `json:"spec"`
}

func TestManifestsDecodeStrictly(t *testing.T) {
	files, err := filepath.Glob("*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests: %v", err)
	}
	kinds := map[string]int{}
	for _, f := range files {
		if f == "alerts.yaml" {
			continue
		}
		raw, _ := os.ReadFile(f)
		for i, doc := range bytes.Split(raw, []byte("\n---\n")) {
			var head struct{ APIVersion, Kind string }
			if err := yaml.Unmarshal(doc, &head); err != nil || head.Kind == "" {
				t.Errorf("%s #%d: no kind: %v", f, i, err)
				continue
			}
			var obj any
			switch head.APIVersion + "/" + head.Kind {
			case "v1/Namespace":
				obj = &corev1.Namespace{}
			case "v1/Service":
				obj = &corev1.Service{}
			case "v1/ServiceAccount":
				obj = &corev1.ServiceAccount{}
			case "v1/ConfigMap":
				obj = &corev1.ConfigMap{}
			case "apps/v1/Deployment":
				obj = &appsv1.Deployment{}
			case "apps/v1/StatefulSet":
				obj = &appsv1.StatefulSet{}
			case "apps/v1/DaemonSet":
				obj = &appsv1.DaemonSet{}
			case "rbac.authorization.k8s.io/v1/ClusterRole":
				obj = &rbacv1.ClusterRole{}
			case "rbac.authorization.k8s.io/v1/ClusterRoleBinding":
				obj = &rbacv1.ClusterRoleBinding{}
			case "security.istio.io/v1/PeerAuthentication":
				obj = &peerAuthentication{}
			case "security.istio.io/v1/AuthorizationPolicy":
				obj = &authorizationPolicy{}
			default:
				t.Errorf("%s #%d: unexpected %s %s", f, i, head.APIVersion, head.Kind)
				continue
			}
			if err := yaml.UnmarshalStrict(doc, obj); err != nil {
				t.Errorf("%s #%d (%s): %v", f, i, head.Kind, err)
				continue
			}
			kinds[head.Kind]++
			check(t, f, obj)
		}
	}
	for _, k := range []string{"Namespace", "StatefulSet", "Deployment", "DaemonSet", "Service", "PeerAuthentication", "AuthorizationPolicy"} {
		if kinds[k] == 0 {
			t.Errorf("no %s in the manifests", k)
		}
	}
}

// check applies the rules segflow's manifests keep: non-root pods, memory
// limits, probes, secrets only from Kubernetes secrets. A node agent (a
// DaemonSet: the log shipper, which reads root's files under /var/log)
// may run as root, but then with no capability, no privilege escalation,
// a read-only root filesystem and host paths mounted read-only but for
// its own state.
func check(t *testing.T, file string, obj any) {
	var spec *corev1.PodSpec
	nodeAgent := false
	switch o := obj.(type) {
	case *appsv1.Deployment:
		spec = &o.Spec.Template.Spec
	case *appsv1.StatefulSet:
		spec = &o.Spec.Template.Spec
	case *appsv1.DaemonSet:
		spec, nodeAgent = &o.Spec.Template.Spec, true
	case *peerAuthentication:
		if o.Spec.MTLS.Mode != "STRICT" {
			t.Errorf("%s: mTLS mode %q", file, o.Spec.MTLS.Mode)
		}
		return
	default:
		return
	}
	switch {
	case nonRoot(spec):
	case nodeAgent:
		checkNodeAgent(t, file, spec)
	default:
		t.Errorf("%s: pods must run as non-root", file)
	}
	for _, c := range spec.Containers {
		if c.Resources.Limits.Memory().IsZero() || c.ReadinessProbe == nil {
			t.Errorf("%s/%s: needs a memory limit and a readiness probe", file, c.Name)
		}
		for _, e := range c.Env {
			for _, suffix := range []string{"PASSWORD", "SECRET", "SECRET_KEY", "ACCESS_KEY", "TOKEN"} {
				if strings.HasSuffix(strings.ToUpper(e.Name), suffix) && e.Value != "" {
					t.Errorf("%s/%s: %s set in plain text; use a Secret", file, c.Name, e.Name)
				}
			}
		}
	}
}

func nonRoot(spec *corev1.PodSpec) bool {
	return spec.SecurityContext != nil && spec.SecurityContext.RunAsNonRoot != nil && *spec.SecurityContext.RunAsNonRoot
}

// checkNodeAgent holds a root node agent to what keeps it from changing
// the node: read-only everything but its state folder, no capabilities.
func checkNodeAgent(t *testing.T, file string, spec *corev1.PodSpec) {
	writable := map[string]bool{}
	for _, v := range spec.Volumes {
		if v.HostPath != nil {
			writable[v.Name] = true
		}
	}
	for _, c := range spec.Containers {
		sc := c.SecurityContext
		if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
			sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
			sc.Capabilities == nil || len(sc.Capabilities.Drop) != 1 || sc.Capabilities.Drop[0] != "ALL" || len(sc.Capabilities.Add) > 0 {
			t.Errorf("%s/%s: a root node agent needs a read-only root filesystem, no privilege escalation and every capability dropped", file, c.Name)
		}
		hostRW := 0
		for _, m := range c.VolumeMounts {
			if writable[m.Name] && !m.ReadOnly {
				hostRW++
			}
		}
		if hostRW > 1 {
			t.Errorf("%s/%s: %d host paths mounted writable; only its state folder may be", file, c.Name, hostRW)
		}
	}
}

func TestAlertRulesParse(t *testing.T) {
	raw, err := os.ReadFile("alerts.yaml")
	if err != nil {
		t.Fatal(err)
	}
	groups, errs := rulefmt.Parse(raw, false, model.UTF8Validation, parser.NewParser(parser.Options{}), slog.Default())
	if len(errs) > 0 {
		t.Fatalf("alert rules: %v", errs)
	}
	if len(groups.Groups) != 1 || len(groups.Groups[0].Rules) < 4 {
		t.Fatalf("groups = %+v", groups)
	}
}
