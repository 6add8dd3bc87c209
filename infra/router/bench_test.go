package router_test

import (
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"
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
