package router_test

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/minio/minio-go/v7/pkg/notification"

	"github.com/segflow/segflow/shared/storage"
)

// BenchmarkBucketToFunction reports, in one run, the latency from the start
// of a bucket write to the subscribed function's entry (p50, p99, objects
// written one after another) and the sustained events per second with 16
// concurrent writers, with one router and with two sharing the queue
// (MinIO posting to the first).
func BenchmarkBucketToFunction(b *testing.B) {
	for _, routers := range []int{1, 2} {
		b.Run(fmt.Sprintf("routers=%d", routers), func(b *testing.B) { bucketToFunction(b, routers) })
	}
}

func bucketToFunction(b *testing.B, routers int) {
	s := newStack(b)
	for range routers - 1 {
		s.secondRouter()
	}
	s.deployNew("latency", "upload", nil, map[string]string{"com.segflow.concurrency": "8"})
	s.deployNew("throughput", "segment.source", nil, map[string]string{"com.segflow.concurrency": "16"})

	n := b.N
	if n < 100 {
		n = 100
	}
	b.ResetTimer()
	starts := map[string]int64{}
	for i := 0; i < n; i++ {
		k := fmt.Sprintf("uploads/lat-%d.mp4", i)
		starts[k] = time.Now().UnixNano()
		s.put(k, nil)
	}
	got := s.waitFor("latency", n, 60*time.Second)
	var lat []time.Duration
	for _, r := range got {
		lat = append(lat, time.Duration(r.Entered-starts[r.Subject]))
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })

	const writers = 16
	total := n * 5
	start := time.Now()
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := w; i < total; i += writers {
				s.put(fmt.Sprintf("assets/tp/source/%05d.ts", i), nil)
			}
		}(w)
	}
	wg.Wait()
	putDone := time.Since(start)
	s.waitFor("throughput", total, 120*time.Second)
	el := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(total)/el.Seconds(), "events/s")
	b.ReportMetric(float64(total)/putDone.Seconds(), "writes/s")
}

// BenchmarkCatchUpAfterRestart: a bucket already holding many announced
// objects (SEGFLOW_CATCHUP_OBJECTS, default 100,000; the figure
// is 10^6), and 1,000 writes made while the router was down. Reported
// for the same bucket in one run: the restart's catch-up from the
// journal, and from a listing (the subscription without the NATS target,
// as before the journal): seconds, requests to the bucket, listings.
func BenchmarkCatchUpAfterRestart(b *testing.B) {
	objects := 100_000
	if v, err := strconv.Atoi(os.Getenv("SEGFLOW_CATCHUP_OBJECTS")); err == nil && v > 0 {
		objects = v
	}
	const missed = 1000
	s := newStack(b)
	front, lists, requests := s.countingFront()
	s.stopRouter()
	s.store = front
	s.startRouter()
	s.deployNew("up", "upload", nil, map[string]string{"com.segflow.concurrency": "16"})
	ctx := context.Background()
	// The fill was there before: no notifications for it.
	if err := s.minio.Client.Minio().SetBucketNotification(ctx, s.bucket, notification.Configuration{}); err != nil {
		b.Fatal(err)
	}
	fillStart := time.Now()
	putMany(b, s, objects, func(i int) string { return fmt.Sprintf("assets/fill-%04d/source/%05d.ts", i/1000, i%1000) })
	b.Logf("filled %d objects in %v", objects, time.Since(fillStart).Round(time.Second))
	b.ResetTimer()
	delivered := 0
	for _, mode := range []string{"journal", "listing"} {
		target := s.target
		if mode == "listing" {
			target.NATSAddress = ""
		}
		if err := target.Subscribe(ctx, s.minio.Client, s.bucket); err != nil {
			b.Fatal(err)
		}
		// A write the webhook takes moves the checkpoint past the fill.
		s.put("uploads/"+mode+"-marker.mp4", nil)
		delivered++
		s.waitFor("up", delivered, 60*time.Second)
		time.Sleep(3 * time.Second)
		s.stopRouter()
		putMany(b, s, missed, func(i int) string { return fmt.Sprintf("uploads/%s-missed-%04d.mp4", mode, i) })
		lists.Store(0)
		requests.Store(0)
		began := time.Now()
		s.startRouter()
		s.waitCounterWith("segflow_router_catchups_total", "source", mode, 1, 60*time.Minute)
		took := time.Since(began)
		delivered += missed
		s.waitFor("up", delivered, 5*time.Minute)
		b.ReportMetric(took.Seconds(), mode+"-s")
		b.ReportMetric(float64(requests.Load()), mode+"-requests")
		b.ReportMetric(float64(lists.Load()), mode+"-lists")
	}
	b.ReportMetric(float64(objects), "objects")
}

// putMany writes n empty objects named by key from 32 writers.
func putMany(b *testing.B, s *stack, n int, key func(int) string) {
	b.Helper()
	var wg sync.WaitGroup
	var next atomic.Int64
	for range 32 {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				if err := s.minio.Client.PutBytes(context.Background(), s.bucket, key(i), nil, storage.PutOptions{}); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}
