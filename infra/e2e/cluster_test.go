package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/grafov/m3u8"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/segflow/segflow/infra/internal/proctree"
	"github.com/segflow/segflow/infra/internal/teststack"
	"github.com/segflow/segflow/shared/asset"
	"github.com/segflow/segflow/shared/layout"
	"github.com/segflow/segflow/shared/media/mediatest"
)

// clusterProcesses is segflow up --nodes's cluster.json.
type clusterProcesses struct {
	NATS, MinIO []struct {
		Name, Addr string
		Pid        int
	}
}

func readCluster(t *testing.T, s *teststack.Stack) clusterProcesses {
	t.Helper()
	var c clusterProcesses
	b, err := os.ReadFile(filepath.Join(s.Home, "cluster.json"))
	if err == nil {
		err = json.Unmarshal(b, &c)
	}
	if err != nil || len(c.NATS) != 3 || len(c.MinIO) != 4 {
		t.Fatalf("cluster.json: %+v, %v", c, err)
	}
	return c
}

// TestClusterFaultsLoseNothing runs the stack as `segflow up --nodes 3`
// (three NATS processes in one JetStream cluster, streams at replicas 3;
// MinIO distributed over four servers behind one S3 address) and uploads
// one file twice: once undisturbed, once with the NATS node leading the
// router's deliveries and one MinIO server killed (SIGKILL) as soon as
// the first rendition segment is out. The faulted asset completes, its
// renditions and playlists are byte for byte the undisturbed one's, each
// playlist lists each segment once, and nothing is dead-lettered.
func TestClusterFaultsLoseNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("a stack of nine processes and two transcodes")
	}
	ctx := context.Background()
	s := teststack.UpNodes(t, 3)
	src := filepath.Join(t.TempDir(), "clip.mp4")
	mediatest.Make(t, src, mediatest.Clip{Seconds: 16, Width: 1280, Height: 720, FPS: 30, Audio: true})

	start := time.Now()
	s.Upload("uploads/calm.mp4", src, nil)
	calm := assetOf(t, s, "uploads/calm.mp4")
	s.WaitStatus(calm, 5*time.Minute, asset.StateComplete)
	t.Logf("undisturbed: complete after %s", time.Since(start).Round(time.Millisecond))

	procs := readCluster(t, s)
	leader := eventsLeader(t, s)
	start = time.Now()
	s.Upload("uploads/faulted.mp4", src, nil)
	faulted := assetOf(t, s, "uploads/faulted.mp4")
	waitObject(t, s, layout.Asset(faulted).Rendition("720p", 0, ".ts"))
	var killedNATS, killedMinIO int
	for _, n := range procs.NATS {
		if n.Name == leader {
			killedNATS = n.Pid
		}
	}
	killedMinIO = procs.MinIO[1].Pid
	killedFn := functionPid(t, s, "transcode")
	for _, pid := range []int{killedNATS, killedMinIO, killedFn} {
		if pid == 0 || syscall.Kill(pid, syscall.SIGKILL) != nil {
			t.Fatalf("kill %d (leader %s, cluster %+v)", pid, leader, procs)
		}
	}
	t.Logf("killed NATS node %s (pid %d, the deliveries' leader), MinIO server %s (pid %d) and a transcode replica (pid %d) %s after the upload",
		leader, killedNATS, procs.MinIO[1].Addr, killedMinIO, killedFn, time.Since(start).Round(time.Millisecond))
	s.WaitStatus(faulted, 5*time.Minute, asset.StateComplete)
	t.Logf("faulted: complete after %s", time.Since(start).Round(time.Millisecond))
	// Captions come last (aitag): wait for its merge before comparing.
	waitObject(t, s, layout.Asset(faulted).Tags(-1))
	waitSettled(t, s, "aitag", 0)
	waitSettled(t, s, "packager", 0)

	calmTags, faultedTags := etags(t, s, calm), etags(t, s, faulted)
	compared := 0
	for k, v := range calmTags {
		if strings.HasSuffix(k, ".ts") || strings.HasSuffix(k, ".m3u8") {
			compared++
			if faultedTags[k] != v {
				t.Errorf("%s differs from the undisturbed run's", k)
			}
		}
	}
	if compared < 10 {
		t.Fatalf("compared %d renditions and playlists: %v", compared, calmTags)
	}
	segs := len(manifest(t, s, faulted).Segments)
	for k := range faultedTags {
		if !strings.HasSuffix(k, ".m3u8") || k == "master.m3u8" || strings.Contains(k, "iframe") {
			continue
		}
		p, kind, err := m3u8.DecodeFrom(strings.NewReader(string(object(t, s, layout.Asset(faulted).Prefix()+k))), true)
		if err != nil || kind != m3u8.MEDIA {
			t.Errorf("%s: %v", k, err)
			continue
		}
		seen := map[string]bool{}
		for _, seg := range p.(*m3u8.MediaPlaylist).GetAllSegments() {
			if seen[seg.URI] {
				t.Errorf("%s lists %s twice", k, seg.URI)
			}
			seen[seg.URI] = true
		}
		if len(seen) != segs {
			t.Errorf("%s lists %d segments, the manifest %d", k, len(seen), segs)
		}
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.Env.Gateway+"/system/deadletters", nil)
	req.SetBasicAuth(s.Env.GatewayUser, s.Env.GatewayPassword)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var dead []json.RawMessage
	err = json.NewDecoder(resp.Body).Decode(&dead)
	resp.Body.Close()
	if err != nil || len(dead) > 0 {
		t.Errorf("dead letters: %d (%v)", len(dead), err)
	}
	// The supervisor started both again.
	deadline := time.Now().Add(time.Minute)
	for {
		now := readCluster(t, s)
		restarted := 0
		for _, n := range append(now.NATS, now.MinIO...) {
			if n.Pid != killedNATS && n.Pid != killedMinIO && syscall.Kill(n.Pid, 0) == nil {
				restarted++
			}
		}
		if restarted == 7 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of 7 cluster processes running a minute after the kills: %+v", restarted, now)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// functionPid is the pid of a replica of function fn, waiting for one
// to run.
func functionPid(t *testing.T, s *teststack.Stack, fn string) int {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		for _, pid := range proctree.Pids(s.Pid()) {
			b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
			if err != nil {
				continue
			}
			// The runtime runs <its home>/.../<function>[-...]/handler,
			// maybe behind nice.
			for _, arg := range strings.Split(string(b), "\x00") {
				if filepath.Base(arg) == "handler" && strings.HasPrefix(filepath.Base(filepath.Dir(arg)), fn) {
					return pid
				}
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("no %s replica running", fn)
	return 0
}

// eventsLeader is the NATS node leading the router's deliveries stream,
// asked as the router (its password in the state folder).
func eventsLeader(t *testing.T, s *teststack.Stack) string {
	t.Helper()
	pw, err := os.ReadFile(filepath.Join(s.Home, "auth", "nats-router-password"))
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(s.Env.NATS, nats.UserInfo("router", strings.TrimSpace(string(pw))))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	st, err := js.Stream(context.Background(), "SEGFLOW_EVENTS")
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(context.Background())
	if err != nil || info.Cluster == nil || info.Cluster.Leader == "" || info.Config.Replicas != 3 {
		t.Fatalf("SEGFLOW_EVENTS: %+v, %v", info, err)
	}
	return info.Cluster.Leader
}
