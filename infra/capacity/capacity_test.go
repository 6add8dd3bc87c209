package capacity_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/segflow/segflow/infra/capacity"
)

func TestParse(t *testing.T) {
	for _, c := range []struct {
		name, in string
		want     map[string]map[string]float64
		procs    int
		err      string
	}{
		{name: "one line", procs: 2,
			in:   "goos: linux\nBenchmarkUploadCost/h264-2   \t 1\t 8541106109 ns/op\t 165.3 cpu-s/min\t 2360 s3-requests/min\nPASS\n",
			want: map[string]map[string]float64{"UploadCost/h264": {"ns/op": 8541106109, "cpu-s/min": 165.3, "s3-requests/min": 2360}}},
		{name: "figures on a later line, after logs", procs: 8,
			in:   "BenchmarkRelayAtSize-8   \t2026/12/08 relay: started\n       1\t 30 ns/op\t 566 n300-relay-streams/core\n",
			want: map[string]map[string]float64{"RelayAtSize": {"ns/op": 30, "n300-relay-streams/core": 566}}},
		{name: "a name with a dash keeps it", procs: 2,
			in:   "BenchmarkUploadCost/live-720p-2 1 5 ns/op 77 cpu-s/min\n",
			want: map[string]map[string]float64{"UploadCost/live-720p": {"ns/op": 5, "cpu-s/min": 77}}},
		{name: "a later result replaces", procs: 2,
			in:   "BenchmarkX-2 1 5 ns/op 1 a\nBenchmarkX-2 3 5 ns/op 2 a\n",
			want: map[string]map[string]float64{"X": {"ns/op": 5, "a": 2}}},
		{name: "a unit without its value", in: "BenchmarkX-2 1 5 ns/op 1\n", err: "not a benchmark result"},
		{name: "a value that is not a number", in: "BenchmarkX-2 1 5 ns/op x a\n", err: "x a"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := capacity.Parse(strings.NewReader(c.in))
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("err %v, want %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Procs != c.procs || len(got.Metrics) != len(c.want) {
				t.Fatalf("got %d procs, %v; want %d, %v", got.Procs, got.Metrics, c.procs, c.want)
			}
			for b, ms := range c.want {
				for u, v := range ms {
					if got.Metrics[b][u] != v {
						t.Errorf("%s %s = %v, want %v", b, u, got.Metrics[b][u], v)
					}
				}
			}
		})
	}
}

// small is a made-up benchmark output whose model can be worked out by
// hand: 2 cores at 50% give one CPU second a second.
const small = `BenchmarkUploadCost/h264-2 1 1 ns/op 61 cpu-s/min 1 minio-cpu-s/min 100 stored-MB/min 600 s3-requests/min 400 s3-reads/min 50 s3-lists/min 120 events/min 240 deliveries/min
BenchmarkUploadCost/live-720p-2 1 1 ns/op 31 cpu-s/min 1 minio-cpu-s/min 50 stored-MB/min 300 s3-requests/min 200 s3-reads/min 20 s3-lists/min 60 events/min 120 deliveries/min
BenchmarkBucketToFunction/routers=1-2 1 1 ns/op 40 events/s 100 writes/s
BenchmarkBucketToFunction/routers=2-2 1 1 ns/op 70 events/s 90 writes/s
BenchmarkRelayAtSize-2 1 1 ns/op 400 n100-relay-streams/core 500 n300-relay-streams/core 0.7 n300-relay-MiB/stream 0 n300-relay-missing-segments 2 n300-relay-late-segments 0 n300-relay-dropped-segments
`

func TestBuild(t *testing.T) {
	res, err := capacity.Parse(strings.NewReader(small))
	if err != nil {
		t.Fatal(err)
	}
	in, err := res.Inputs()
	if err != nil {
		t.Fatal(err)
	}
	if in.RelayPublishers != 300 || in.RelayStreamsPerCore != 500 || in.RelayLate != 2 || in.Cores != 2 {
		t.Fatalf("relay inputs %+v: want the largest count's (300, 500 a core)", in)
	}
	o := capacity.DefaultOptions()
	o.Utilization, o.HoursPerDay, o.Channels = 0.5, 2000, 1000
	m, err := capacity.Build(in, o)
	if err != nil {
		t.Fatal(err)
	}
	// h264: functions 60 CPU s a minute, so one machine (1 CPU s/s)
	// carries a minute of upload a minute, 24 h a day; storage, 1 CPU s
	// a minute, 60 times that: 1,440 h; the router: 40 x 0.5 = 20
	// deliveries/s against 4/s, 5 x 24 = 120 h.
	want := map[string]struct {
		per    float64
		needed int
	}{
		"function machine (2 cores)":    {24, 84},
		"storage (one MinIO node)":      {1440, 2},
		"router and queue (one router)": {120, 17},
	}
	for _, c := range m.VOD {
		w, ok := want[c.Name]
		if !ok || !near(c.PerInstance, w.per) || c.Needed != w.needed {
			t.Errorf("VOD %s: carries %v, needs %d; want %+v", c.Name, c.PerInstance, c.Needed, w)
		}
	}
	if m.VOD[0].Name != "function machine (2 cores)" || capacity.FirstShared(m.VOD).Name != "router and queue (one router)" {
		t.Errorf("VOD order %+v: the function machine carries least, the router next", m.VOD)
	}
	// live-720p: functions 30 s a minute: 2 channels a machine; relay
	// 500 a core x 1 CPU s = 500; storage 1 CPU s a minute: 60; router
	// 20/s against 2/s: 10.
	live := map[string]float64{"relay machine (2 cores)": 500, "function machine (2 cores)": 2,
		"storage (one MinIO node)": 60, "router and queue (one router)": 10}
	for _, c := range m.Live {
		if !near(c.PerInstance, live[c.Name]) {
			t.Errorf("live %s: carries %v, want %v", c.Name, c.PerInstance, live[c.Name])
		}
	}
	if l := m.Loads[0]; l.Name != "h264" || l.FunctionMachines != 84 || !near(l.StoredTBPerDay, 12) || !near(l.RequestsPerS, 833.33) || l.Writes() != 150 {
		t.Errorf("h264 at 2,000 h/day: %+v; want 84 machines, 12 TB a day, 833 requests/s, 150 writes a minute", l)
	}
}

func near(a, b float64) bool { return a > b*0.999 && a < b*1.001 }

func TestMissingFiguresAreNamed(t *testing.T) {
	res, err := capacity.Parse(strings.NewReader(strings.SplitN(small, "\n", 3)[2])) // no UploadCost
	if err != nil {
		t.Fatal(err)
	}
	_, err = res.Inputs()
	if err == nil || !strings.Contains(err.Error(), "UploadCost") {
		t.Fatalf("err %v: want it to name UploadCost", err)
	}
	res, _ = capacity.Parse(strings.NewReader(strings.ReplaceAll(small, " 40 events/s", "")))
	if _, err := res.Inputs(); err == nil || !strings.Contains(err.Error(), "BucketToFunction/routers=1 events/s") {
		t.Fatalf("err %v: want it to name the missing events/s", err)
	}
}

// TestDocsAreTheKeptRun: ARCHITECTURE.md's capacity section is the model
// of the benchmark run kept as testdata, as scripts/capacity prints it
// (through segflow capacity). Regenerate both with bash scripts/capacity.
func TestDocsAreTheKeptRun(t *testing.T) {
	f, err := os.Open("testdata/bench.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	res, err := capacity.Parse(f)
	if err != nil {
		t.Fatal(err)
	}
	in, err := res.Inputs()
	if err != nil {
		t.Fatal(err)
	}
	m, err := capacity.Build(in, capacity.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	root, _ := filepath.Abs("../..")
	doc, err := os.ReadFile(filepath.Join(root, "ARCHITECTURE.md"))
	if err != nil {
		t.Fatal(err)
	}
	section, err := capacity.Section(string(doc))
	if err != nil {
		t.Fatal(err)
	}
	if section != m.Markdown() {
		t.Errorf("ARCHITECTURE.md's capacity section is not the model of testdata/bench.txt; run bash scripts/capacity testdata/bench.txt.\ngot:\n%s\nwant:\n%s", section, m.Markdown())
	}
	cmd := exec.Command("bash", "scripts/capacity", "infra/capacity/testdata/bench.txt")
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("scripts/capacity: %v\n%s", err, out)
	}
	if string(out) != m.Markdown() {
		t.Errorf("scripts/capacity printed\n%s\nwant\n%s", out, m.Markdown())
	}
}
