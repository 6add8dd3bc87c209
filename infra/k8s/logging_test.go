package k8s

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/segflow/segflow/shared/telemetry"
)

// section is one [NAME] block of a Fluent Bit classic-mode file; keys are
// case-insensitive there, so they are kept lower-cased.
type section struct {
	name string
	kv   map[string]string
}

// parseClassic reads Fluent Bit's classic configuration format.
func parseClassic(t *testing.T, text string) []section {
	t.Helper()
	var out []section
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			out = append(out, section{name: strings.ToUpper(line[1 : len(line)-1]), kv: map[string]string{}})
		case len(out) == 0:
			t.Fatalf("%q outside any section", line)
		default:
			k, v, _ := strings.Cut(line, " ")
			out[len(out)-1].kv[strings.ToLower(k)] = strings.TrimSpace(v)
		}
	}
	return out
}

// plugin is the section named kind whose Name is name.
func plugin(t *testing.T, secs []section, kind, name string) map[string]string {
	t.Helper()
	for _, s := range secs {
		if s.name == kind && strings.EqualFold(s.kv["name"], name) {
			return s.kv
		}
	}
	t.Fatalf("no [%s] named %s", kind, name)
	return nil
}

// timeFormat is a Fluent Bit parser's Time_Format: strptime, as Fluent
// Bit reads it (%L: the fraction of a second, any number of digits; %z:
// Z, or an offset with or without a colon).
type timeFormat struct {
	whole  *regexp.Regexp // what the format accepts, all of it
	layout string         // Go's layout for the value
}

func parseTimeFormat(t *testing.T, format string) timeFormat {
	t.Helper()
	conv := map[byte][2]string{'Y': {`\d{4}`, "2006"}, 'm': {`\d{2}`, "01"}, 'd': {`\d{2}`, "02"}, 'H': {`\d{2}`, "15"},
		'M': {`\d{2}`, "04"}, 'S': {`\d{2}`, "05"}, 'L': {`\d+`, "999999999"}, 'z': {`(?:Z|[+-]\d{2}:?(?:\d{2})?)`, "Z07:00"}}
	var re, layout strings.Builder
	for i := 0; i < len(format); i++ {
		if format[i] != '%' {
			re.WriteString(regexp.QuoteMeta(format[i : i+1]))
			layout.WriteByte(format[i])
			continue
		}
		i++
		if i == len(format) || conv[format[i]][0] == "" {
			t.Fatalf("Time_Format %q: a conversion this test does not know", format)
		}
		re.WriteString(conv[format[i]][0])
		layout.WriteString(conv[format[i]][1])
	}
	return timeFormat{regexp.MustCompile("^" + re.String() + "$"), layout.String()}
}

// parse reads s as Fluent Bit would: an error where its strptime stops.
func (f timeFormat) parse(s string) (time.Time, error) {
	if !f.whole.MatchString(s) {
		return time.Time{}, fmt.Errorf("%q does not match %s", s, f.whole)
	}
	return time.Parse(f.layout, s)
}

// criLine is a line as the container runtime writes it to the node's log
// file; cri is the expression of Fluent Bit's built-in cri multiline
// parser, which the tail input names.
func criLine(at time.Time, line string) string {
	return at.UTC().Format(time.RFC3339Nano) + " stderr F " + line
}

var cri = regexp.MustCompile(`^(?<time>.+?) (?<stream>stdout|stderr) (?<_p>F|P) (?<log>.*)$`)

// accessor resolves a record accessor ($key or $key['sub']) in rec.
func accessor(t *testing.T, rec map[string]any, ra string) (string, bool) {
	t.Helper()
	m := regexp.MustCompile(`^\$([A-Za-z_]+)((?:\['[A-Za-z_]+'\])*)$`).FindStringSubmatch(ra)
	if m == nil {
		t.Fatalf("%q is no record accessor", ra)
	}
	var v any = rec[m[1]]
	for _, sub := range regexp.MustCompile(`\['([A-Za-z_]+)'\]`).FindAllStringSubmatch(m[2], -1) {
		mm, ok := v.(map[string]any)
		if !ok {
			return "", false
		}
		v = mm[sub[1]]
	}
	s, ok := v.(string)
	return s, ok && s != ""
}

// pairs reads a Loki output list of key=value (or bare $accessor) items.
func pairs(list string) map[string]string {
	out := map[string]string{}
	for _, item := range strings.Split(list, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(item), "=")
		if !ok {
			v = k
		}
		out[k] = v
	}
	return out
}

// TestFluentBitShipsSegflowLines takes lines segflow's logger prints (the
// logger every service makes, in a traced call and outside one, in UTC
// and in another zone) through what logging.yaml configures: the tail
// input's files and cri framing, the kubernetes filter's merge with our
// JSON parser and its time format, and the Loki output's labels and
// structured metadata, which must all resolve on those records.
func TestFluentBitShipsSegflowLines(t *testing.T) {
	raw, err := os.ReadFile("logging.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var cm corev1.ConfigMap
	for _, doc := range bytes.Split(raw, []byte("\n---\n")) {
		var head struct{ Kind string }
		if yaml.Unmarshal(doc, &head) == nil && head.Kind == "ConfigMap" {
			if err := yaml.UnmarshalStrict(doc, &cm); err != nil {
				t.Fatal(err)
			}
		}
	}
	conf, parsers := parseClassic(t, cm.Data["fluent-bit.conf"]), parseClassic(t, cm.Data["parsers.conf"])

	// The files: segflow's pods and the functions', not the shipper's own.
	tail := plugin(t, conf, "INPUT", "tail")
	if tail["multiline.parser"] != "cri" {
		t.Errorf("tail reads %q framing; containerd writes cri", tail["multiline.parser"])
	}
	matches := func(list, file string) bool {
		for _, p := range strings.Split(list, ",") {
			if ok, _ := filepath.Match(strings.TrimSpace(p), file); ok {
				return true
			}
		}
		return false
	}
	for file, want := range map[string]bool{
		"/var/log/containers/segflow-router-7d9c8-x2k4z_segflow_router-0a1b2c.log":        true,
		"/var/log/containers/segflow-relay-0_segflow_relay-9f8e7d.log":                    true,
		"/var/log/containers/transcode-5f6d7-abcde_openfaas-fn_transcode-3c4d5e.log":      true,
		"/var/log/containers/coredns-5d78c-qwert_kube-system_coredns-1a2b3c.log":          false,
		"/var/log/containers/fluent-bit-x7k2p_segflow_fluent-bit-4d5e6f.log":              false,
		"/var/log/containers/gateway-6b7c8-zxcvb_openfaas_gateway-7e8f9a.log":             false,
		"/var/log/containers/segflow-minio-0_segflow_minio-0b1c2d.log":                    true,
		"/var/log/containers/packager-7c8d9-fghij_openfaas-fn_packager-5e6f7a.log":        true,
		"/var/log/containers/segflow-router-7d9c8-x2k4z_segflow-test_router-0a1b2c.log":   false,
		"/var/log/containers/aitag-1a2b3-klmno_openfaas-fn_aitag-8b9c0d.log":              true,
		"/var/log/containers/prometheus-0_monitoring_prometheus-2c3d4e.log":               false,
		"/var/log/containers/segflow-router-7d9c8-x2k4z_segflow_istio-proxy-0a1b2c.log":   true,
		"/var/log/containers/thumbnail-2b3c4-pqrst_openfaas-fn_thumbnail-6f7a8b.log":      true,
		"/var/log/containers/nats-0_openfaas_nats-3d4e5f.log":                             false,
		"/var/log/containers/segflow-relay-0_segflow_relay-9f8e7d.log.20261207-013000.gz": false,
	} {
		if got := matches(tail["path"], file) && !matches(tail["exclude_path"], file); got != want {
			t.Errorf("%s read: %v, want %v", filepath.Base(file), got, want)
		}
	}

	// The merge: the kubernetes filter parses the line with our parser.
	k8sFilter := plugin(t, conf, "FILTER", "kubernetes")
	if !strings.EqualFold(k8sFilter["merge_log"], "on") {
		t.Fatal("the kubernetes filter does not merge the JSON line into the record")
	}
	parser := plugin(t, parsers, "PARSER", k8sFilter["merge_parser"])
	if parser["format"] != "json" || parser["time_key"] == "" {
		t.Fatalf("parser %s: format %q, time key %q", k8sFilter["merge_parser"], parser["format"], parser["time_key"])
	}
	format := parseTimeFormat(t, parser["time_format"])
	loki := plugin(t, conf, "OUTPUT", "loki")
	labels, meta := pairs(loki["labels"]), pairs(loki["structured_metadata"])
	for _, high := range []string{"trace_id", "span_id", "pod"} {
		if _, ok := labels[high]; ok {
			t.Errorf("label %s: a stream per value; it belongs in structured metadata", high)
		}
	}

	sc := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36},
		SpanID:  trace.SpanID{0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7}, TraceFlags: trace.FlagsSampled})
	traced := trace.ContextWithSpanContext(context.Background(), sc)
	at := time.Date(2026, 12, 7, 1, 30, 15, 409_240_994, time.UTC)
	tests := []struct {
		name    string
		service string
		ctx     context.Context
		at      time.Time
		level   slog.Level
	}{
		{"a function's call, traced", "transcode", traced, at, slog.LevelInfo},
		{"a failed call, traced, in UTC+1", "packager", traced, at.In(time.FixedZone("CET", 3600)), slog.LevelError},
		{"the router outside any call", "router", context.Background(), at.In(time.FixedZone("PST", -8*3600)), slog.LevelWarn},
		{"on a whole second", "router", context.Background(), at.Truncate(time.Second), slog.LevelInfo},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			log := telemetry.NewLogger(&buf, tc.service)
			r := slog.NewRecord(tc.at, tc.level, "transcoded segment 3 of 9f2c", 0)
			r.AddAttrs(slog.Float64("seconds", 4.2), slog.String("key", "assets/9f2c/source/00003.ts"))
			if err := log.Handler().Handle(tc.ctx, r); err != nil {
				t.Fatal(err)
			}
			m := cri.FindStringSubmatch(criLine(time.Now(), strings.TrimSuffix(buf.String(), "\n")))
			if m == nil {
				t.Fatalf("cri framing not read: %q", buf.String())
			}
			rec := map[string]any{}
			if err := json.Unmarshal([]byte(m[cri.SubexpIndex("log")]), &rec); err != nil {
				t.Fatalf("line is no JSON object: %v", err)
			}
			ts, _ := rec[parser["time_key"]].(string)
			got, err := format.parse(ts)
			if err != nil || !got.Equal(tc.at) {
				t.Errorf("time %q read as %v (%v) with %q; logged at %v", ts, got, err, parser["time_format"], tc.at)
			}
			rec["kubernetes"] = map[string]any{"namespace_name": "segflow", "pod_name": tc.service + "-0", "container_name": tc.service}
			for k, ra := range labels {
				if !strings.HasPrefix(ra, "$") {
					continue // a fixed label
				}
				if _, ok := accessor(t, rec, ra); !ok {
					t.Errorf("label %s (%s) empty on %s", k, ra, buf.String())
				}
			}
			for k, ra := range meta {
				v, ok := accessor(t, rec, ra)
				want := map[string]string{"trace_id": sc.TraceID().String(), "span_id": sc.SpanID().String()}[k]
				switch {
				case want == "":
					if !ok {
						t.Errorf("structured metadata %s (%s) empty", k, ra)
					}
				case tc.ctx == traced && v != want:
					t.Errorf("structured metadata %s = %q, want the call's %s", k, v, want)
				case tc.ctx != traced && ok:
					t.Errorf("structured metadata %s = %q on a line outside any span", k, v)
				}
			}
			if fmt.Sprint(rec["service"]) != tc.service || rec["level"] != tc.level.String() {
				t.Errorf("service %v level %v, want %s %s", rec["service"], rec["level"], tc.service, tc.level)
			}
		})
	}
}
