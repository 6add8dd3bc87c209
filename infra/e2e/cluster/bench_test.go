package cluster

import (
	"fmt"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/segflow/segflow/infra/gwclient"
	"github.com/segflow/segflow/infra/internal/e2ekit"
	"github.com/segflow/segflow/infra/internal/teststack"
	"github.com/segflow/segflow/shared/asset"
	"github.com/segflow/segflow/shared/media/mediatest"
)

// BenchmarkClusterRuntimeNodes: the cost of spreading out. On `segflow up
// --nodes 3` a 30 s 720p upload is processed by both runtime nodes (two
// gateways, each with its router) and by the first alone (the second's
// router stopped, SIGSTOP, with its pull requests left to expire so
// JetStream hands it nothing), in the order two, one, one, two. On two
// cores no speedup is expected: the figure is what a second node costs,
// and how the transcodes split between the nodes.
func BenchmarkClusterRuntimeNodes(b *testing.B) {
	s := teststack.UpNodes(b, 3)
	src := filepath.Join(b.TempDir(), "clip.mp4")
	mediatest.Make(b, src, mediatest.Clip{Seconds: 30, Width: 1280, Height: 720, FPS: 30, Audio: true})
	procs := readCluster(b, s)
	gw2 := gwclient.New("http://"+procs.Gateways[0].Addr, s.Env.GatewayUser, s.Env.GatewayPassword)
	router2 := procs.Routers[0].Pid
	defer syscall.Kill(router2, syscall.SIGCONT)
	runs := 0
	run := func(nodes int) (time.Duration, [2]float64) {
		before := [2]float64{invocations(b, s.Env.Gateway, "transcode", "200"), invocations(b, gw2.URL, "transcode", "200")}
		runs++
		key := fmt.Sprintf("uploads/nodes-%d-%d.mp4", nodes, runs)
		start := time.Now()
		s.Upload(key, src, nil)
		id := e2ekit.AssetOf(b, s, key)
		s.WaitStatus(id, 10*time.Minute, asset.StateComplete)
		took := time.Since(start)
		e2ekit.WaitSettledOn(b, "packager", 0, s.GW, gw2)
		return took, [2]float64{invocations(b, s.Env.Gateway, "transcode", "200") - before[0], invocations(b, gw2.URL, "transcode", "200") - before[1]}
	}
	hold := func(sig syscall.Signal) {
		if err := syscall.Kill(router2, sig); err != nil {
			b.Fatal(err)
		}
		if sig == syscall.SIGSTOP {
			time.Sleep(35 * time.Second)
		}
	}
	b.ResetTimer()
	var two, one time.Duration
	var split [2]float64
	for range b.N {
		t1, sp1 := run(2)
		hold(syscall.SIGSTOP)
		o1, _ := run(1)
		o2, only := run(1)
		hold(syscall.SIGCONT)
		t2, sp2 := run(2)
		if only[1] != 0 {
			b.Errorf("the second node took %v transcodes with its router stopped", only[1])
		}
		b.Logf("two nodes %s, %s; one node %s, %s; transcodes taken with two: first %v+%v, second %v+%v",
			t1.Round(time.Millisecond), t2.Round(time.Millisecond), o1.Round(time.Millisecond), o2.Round(time.Millisecond), sp1[0], sp2[0], sp1[1], sp2[1])
		two += t1 + t2
		one += o1 + o2
		split[0] += sp1[0] + sp2[0]
		split[1] += sp1[1] + sp2[1]
	}
	b.ReportMetric(two.Seconds()/float64(2*b.N), "two-nodes-s")
	b.ReportMetric(one.Seconds()/float64(2*b.N), "one-node-s")
	b.ReportMetric(two.Seconds()/one.Seconds(), "two/one")
	b.ReportMetric(split[1]/(split[0]+split[1]), "second-node-share")
}
