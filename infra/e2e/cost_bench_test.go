package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/segflow/segflow/infra/internal/e2ekit"
	"github.com/segflow/segflow/infra/internal/proctree"
	"github.com/segflow/segflow/infra/internal/teststack"
	"github.com/segflow/segflow/shared/asset"
	"github.com/segflow/segflow/shared/layout"
	"github.com/segflow/segflow/shared/media/mediatest"
	"github.com/segflow/segflow/shared/storage"
	"github.com/segflow/segflow/shared/telemetry"
)

// BenchmarkUploadCost uploads one file per ladder to the whole stack as
// a user runs it (every function: split, watermark, transcode, thumbnail,
// qa, aitag, packager) and reports what a minute of that upload costs:
// CPU seconds of every process of the stack (MinIO's share apart), bytes
// it leaves stored, requests to storage (also as S3 prices them: object
// reads, listings, and the rest, writes), bucket events, deliveries
// through the queue (each one a function call), each less what the stack
// does at rest in the same time (measured first). These are the capacity
// model's inputs (infra/capacity, scripts/capacity). The 720p case stands
// for a live channel: its segments go through the same functions.
func BenchmarkUploadCost(b *testing.B) {
	seconds := 60.0
	if v := os.Getenv("SEGFLOW_BENCH_SECONDS"); v != "" {
		seconds, _ = strconv.ParseFloat(v, 64)
	}
	s := teststack.Up(b)
	dir := b.TempDir()
	sources := map[int]string{}
	source := func(height, bitrate int) string {
		if f, ok := sources[height]; ok {
			return f
		}
		f := filepath.Join(dir, fmt.Sprintf("%dp.mp4", height))
		mediatest.Make(b, f, mediatest.Clip{Seconds: seconds, Width: height * 16 / 9, Height: height, FPS: 30, Audio: true, Bitrate: bitrate})
		sources[height] = f
		return f
	}
	uploads := 0
	idle := idleRate(b, s)
	b.Logf("at rest, a second: %.2f S3 requests (%.2f reads, %.2f lists)", idle.requests, idle.reads, idle.lists)
	for _, c := range []struct {
		name            string
		height, bitrate int // the source's
		meta            map[string]string
	}{
		{"h264", 1080, 10_000_000, nil},
		{"h264-content-aware", 1080, 10_000_000, map[string]string{"Segflow-Ladder": "content-aware"}},
		{"h265", 1080, 10_000_000, map[string]string{"Segflow-Codecs": "h265"}},
		{"vp9", 1080, 10_000_000, map[string]string{"Segflow-Codecs": "vp9"}},
		{"av1", 1080, 10_000_000, map[string]string{"Segflow-Codecs": "av1"}},
		// What a live channel publishes (as BenchmarkRelayAtSize's
		// publishers do): 720p30 at 3 Mb/s.
		{"live-720p", 720, 3_000_000, nil},
	} {
		src := source(c.height, c.bitrate)
		b.Run(c.name, func(b *testing.B) {
			var total cost
			for range b.N {
				uploads++
				total = total.add(uploadCost(b, s.With(b), src, fmt.Sprintf("uploads/cost-%s-%d.mp4", c.name, uploads), c.meta, idle))
			}
			minutes := seconds / 60 * float64(b.N)
			b.ReportMetric(total.cpu/minutes, "cpu-s/min")
			b.ReportMetric(total.minioCPU/minutes, "minio-cpu-s/min")
			b.ReportMetric(total.stored/minutes/1e6, "stored-MB/min")
			b.ReportMetric(total.requests/minutes, "s3-requests/min")
			b.ReportMetric(total.reads/minutes, "s3-reads/min")
			b.ReportMetric(total.lists/minutes, "s3-lists/min")
			b.ReportMetric(total.events/minutes, "events/min")
			b.ReportMetric(total.deliveries/minutes, "deliveries/min")
			b.ReportMetric(total.wall/minutes, "wall-s/min")
		})
	}
}

// cost is what one upload took, from its end in the bucket to the asset
// complete.
type cost struct {
	cpu, minioCPU, stored, requests, reads, lists, events, deliveries, wall float64
}

func (c cost) add(d cost) cost {
	return cost{c.cpu + d.cpu, c.minioCPU + d.minioCPU, c.stored + d.stored, c.requests + d.requests, c.reads + d.reads,
		c.lists + d.lists, c.events + d.events, c.deliveries + d.deliveries, c.wall + d.wall}
}

// counted is a reading of the stack's counters: MinIO's requests (all,
// object reads, listings), the router's events and deliveries.
type counted struct {
	at                                         time.Time
	requests, reads, lists, events, deliveries float64
}

// minus is what the counters rose by since o, less what the stack does
// at rest in that time (idle: per second; the catalog lists the bucket
// every 2 s whatever is uploaded).
func (c counted) minus(o counted, idle counted) counted {
	d := c.at.Sub(o.at).Seconds()
	return counted{requests: c.requests - o.requests - idle.requests*d, reads: c.reads - o.reads - idle.reads*d,
		lists: c.lists - o.lists - idle.lists*d, events: c.events - o.events - idle.events*d,
		deliveries: c.deliveries - o.deliveries - idle.deliveries*d}
}

// count reads the counters after 12 s of the stack at rest: MinIO
// refreshes its request counters every 10 s.
func count(b *testing.B, s *teststack.Stack) counted {
	time.Sleep(12 * time.Second)
	raw, err := s.Store.ServerMetrics(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	m, err := telemetry.ParseScrape(bytes.NewReader(raw))
	if err != nil {
		b.Fatal(err)
	}
	g := e2ekit.Metrics(b, s)
	c := counted{at: time.Now(), requests: m.Sum("minio_s3_requests_total", nil),
		events: g.Sum("segflow_router_events_received_total", nil), deliveries: g.Sum("segflow_router_deliveries_total", nil)}
	c.reads, c.lists = s3Requests(m)
	return c
}

// idleRate is what the stack's counters rise by per second at rest.
func idleRate(b *testing.B, s *teststack.Stack) counted {
	c0 := count(b, s)
	c1 := count(b, s)
	d := c1.minus(c0, counted{})
	secs := c1.at.Sub(c0.at).Seconds()
	return counted{requests: d.requests / secs, reads: d.reads / secs, lists: d.lists / secs, events: d.events / secs, deliveries: d.deliveries / secs}
}

// uploadCost uploads src under key and measures the stack until the asset
// is complete; its counters, from a reading before the upload to one
// after, less what the stack does at rest (idle) in that time.
func uploadCost(b *testing.B, s *teststack.Stack, src, key string, meta map[string]string, idle counted) cost {
	ctx := context.Background()
	b.StopTimer()
	c0 := count(b, s)
	s.Upload(key, src, meta)
	b.StartTimer()
	start, before := time.Now(), proctree.Usages(s.Pid())
	id := e2ekit.AssetOf(b, s, key)
	if st := s.WaitStatus(id, 30*time.Minute, asset.StateComplete, asset.StateFailed); st.State != asset.StateComplete {
		b.Fatalf("%s: status %+v", key, st)
	}
	wall := time.Since(start)
	after := proctree.Usages(s.Pid())
	b.StopTimer()
	use := proctree.Since(before, after)
	d := count(b, s).minus(c0, idle)
	objs, err := s.Store.List(ctx, s.Bucket, layout.Asset(id).Prefix(), storage.ListOptions{Recursive: true})
	if err != nil {
		b.Fatal(err)
	}
	up, err := s.Store.Stat(ctx, s.Bucket, key)
	if err != nil {
		b.Fatal(err)
	}
	stored := float64(up.Size)
	for _, o := range objs {
		stored += float64(o.Size)
	}
	if d.requests <= 0 || d.events <= 0 || d.deliveries <= 0 {
		b.Fatalf("counters did not rise past the stack at rest: %+v (at rest, a second: %+v)", d, idle)
	}
	b.StartTimer()
	return cost{cpu: use.Self + use.Children, minioCPU: proctree.ByName(before, after)["minio"].Self, stored: stored,
		requests: d.requests, reads: d.reads, lists: d.lists, events: d.events, deliveries: d.deliveries, wall: wall.Seconds()}
}

// s3Requests sorts MinIO's requests the way S3 prices them: reads (GET
// and HEAD of objects) apart from listings; the rest (puts, copies,
// deletes, multipart parts, bucket settings) are writes.
func s3Requests(m telemetry.Scrape) (reads, lists float64) {
	f, ok := m["minio_s3_requests_total"]
	if !ok {
		return 0, 0
	}
	for _, s := range f.GetMetric() {
		for _, l := range s.GetLabel() {
			if l.GetName() != "api" {
				continue
			}
			switch api := l.GetValue(); {
			case strings.HasPrefix(api, "list"):
				lists += s.GetCounter().GetValue()
			case api == "getobject" || api == "headobject":
				reads += s.GetCounter().GetValue()
			}
		}
	}
	return reads, lists
}
