// Package k8s holds segflow's Kubernetes manifests; this test loads each
// of them strictly into the typed objects the API server would read.
package k8s

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
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
	kinds := map[string]int{}
	for _, m := range manifests(t) {
		kinds[m.kind]++
		check(t, m.file, m.obj)
	}
	for _, k := range []string{"Namespace", "StatefulSet", "Deployment", "DaemonSet", "Service", "PeerAuthentication", "AuthorizationPolicy",
		"PodDisruptionBudget", "NetworkPolicy"} {
		if kinds[k] == 0 {
			t.Errorf("no %s in the manifests", k)
		}
	}
}

// manifest is one object of a manifest file, decoded strictly.
type manifest struct {
	file, kind, name string
	obj              any
}

// manifests decodes every object of every manifest file, failing the
// test on any that does not decode strictly into its typed object.
func manifests(t *testing.T) []manifest {
	t.Helper()
	files, err := filepath.Glob("*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests: %v", err)
	}
	var out []manifest
	for _, f := range files {
		if f == "alerts.yaml" {
			continue
		}
		raw, _ := os.ReadFile(f)
		for i, doc := range bytes.Split(raw, []byte("\n---\n")) {
			var head struct {
				APIVersion, Kind string
				Metadata         struct{ Name string }
			}
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
			case "policy/v1/PodDisruptionBudget":
				obj = &policyv1.PodDisruptionBudget{}
			case "networking.k8s.io/v1/NetworkPolicy":
				obj = &networkingv1.NetworkPolicy{}
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
			out = append(out, manifest{file: f, kind: head.Kind, name: head.Metadata.Name, obj: obj})
		}
	}
	return out
}

// TestClusterForms: the pieces that hold state or take traffic run as
// more than one, on the engines' own clustering (NATS JetStream at
// replicas 3, MinIO distributed over four), and each of them has a
// PodDisruptionBudget, so a drained node takes one at a time.
func TestClusterForms(t *testing.T) {
	all := manifests(t)
	type workload struct {
		replicas int32
		labels   map[string]string
		args     []string
	}
	work := map[string]workload{}
	var pdbs []*policyv1.PodDisruptionBudget
	for _, m := range all {
		switch o := m.obj.(type) {
		case *appsv1.StatefulSet:
			work[m.name] = workload{*o.Spec.Replicas, o.Spec.Template.Labels, o.Spec.Template.Spec.Containers[0].Args}
		case *appsv1.Deployment:
			work[m.name] = workload{*o.Spec.Replicas, o.Spec.Template.Labels, o.Spec.Template.Spec.Containers[0].Args}
		case *policyv1.PodDisruptionBudget:
			pdbs = append(pdbs, o)
		}
	}
	for _, c := range []struct {
		name     string
		replicas int32
		arg      string // one of its arguments contains this
	}{
		{"nats", 3, "--config"},
		{"minio", 4, "http://minio-{0...3}."},
		{"segflow-router", 2, "--replicas"},
		{"segflow-relay", 2, "--spool"},
	} {
		w, ok := work[c.name]
		if !ok {
			t.Errorf("no workload %s", c.name)
			continue
		}
		if w.replicas < c.replicas {
			t.Errorf("%s: %d replicas, want at least %d", c.name, w.replicas, c.replicas)
		}
		if !slices.ContainsFunc(w.args, func(a string) bool { return strings.Contains(a, c.arg) }) {
			t.Errorf("%s: no argument with %q in %q", c.name, c.arg, w.args)
		}
		covered := false
		for _, p := range pdbs {
			sel, err := metav1.LabelSelectorAsSelector(p.Spec.Selector)
			if err == nil && sel.Matches(labels.Set(w.labels)) {
				covered = true
			}
		}
		if !covered {
			t.Errorf("%s: no PodDisruptionBudget selects its pods", c.name)
		}
	}
	if i := slices.Index(work["segflow-router"].args, "--replicas"); i < 0 || work["segflow-router"].args[i+1] != "3" {
		t.Errorf("router: its streams need --replicas 3 on three NATS nodes: %q", work["segflow-router"].args)
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

// TestNATSConfigParses reads nats.yaml's configuration with the NATS
// server's own parser, as a node would start with it: JetStream on, the
// cluster's three routes, the three component users, the payload bound.
func TestNATSConfigParses(t *testing.T) {
	var conf string
	for _, m := range manifests(t) {
		if cm, ok := m.obj.(*corev1.ConfigMap); ok && m.name == "nats-config" {
			conf = cm.Data["nats.conf"]
		}
	}
	if conf == "" {
		t.Fatal("no nats-config ConfigMap with nats.conf")
	}
	path := filepath.Join(t.TempDir(), "nats.conf")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("POD_NAME", "nats-1")
	t.Setenv("NATS_ROUTER_PASSWORD", "router-pw")
	t.Setenv("NATS_GATEWAY_PASSWORD", "gateway-pw")
	t.Setenv("NATS_MINIO_PASSWORD", "minio-pw")
	o, err := natsserver.ProcessConfigFile(path)
	if err != nil {
		t.Fatal(err)
	}
	users := map[string]string{}
	for _, u := range o.Users {
		users[u.Username] = u.Password
	}
	switch {
	case o.ServerName != "nats-1":
		t.Errorf("server name %q, want the pod's", o.ServerName)
	case !o.JetStream || o.StoreDir != "/data":
		t.Errorf("JetStream %v in %q, want on in the volume /data", o.JetStream, o.StoreDir)
	case o.Cluster.Name != "segflow" || o.Cluster.Port != 6222 || len(o.Routes) != 3:
		t.Errorf("cluster %q on %d with %d routes, want segflow on 6222 with 3", o.Cluster.Name, o.Cluster.Port, len(o.Routes))
	case users["router"] != "router-pw" || users["gateway"] != "gateway-pw" || users["minio"] != "minio-pw" || len(users) != 3:
		t.Errorf("users %v, want router, gateway and minio with the Secret's passwords", users)
	case o.MaxPayload != 8<<20:
		t.Errorf("max payload %d, want 8 MiB as the embedded queue allows", o.MaxPayload)
	}
}
