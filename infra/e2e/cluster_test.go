package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
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
	"github.com/segflow/segflow/shared/miniosrv"
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
// one file three times: once undisturbed; once with the NATS node leading
// the router's deliveries, one MinIO server and a transcode replica killed
// (SIGKILL) as soon as the first rendition segment is out; once with two
// MinIO servers down for 60 s from then (the pool answering writes 503).
// Each faulted asset completes, its renditions and playlists byte for
// byte the undisturbed one's, each playlist listing each segment once,
// and nothing is dead-lettered.
func TestClusterFaultsLoseNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("a stack of nine processes and two transcodes")
	}
	// MinIO through a wrapper that holds a server's (re)start while the
	// file down exists: how the test keeps servers dead past the
	// supervisor's restarts.
	down := filepath.Join(t.TempDir(), "down")
	minio, err := miniosrv.FindBinary("minio")
	if err != nil {
		t.Fatal(err)
	}
	wrapper := filepath.Join(t.TempDir(), "minio")
	script := "#!/bin/sh\nwhile [ -e " + down + " ]; do sleep 0.2; done\nexec " + minio + " \"$@\"\n"
	if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	s := teststack.UpNodes(t, 3, "SEGFLOW_MINIO="+wrapper)
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

	sameOutputs(t, s, calm, faulted)
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

	// MinIO answering 503 for 60 s: two of the pool's four servers die and
	// stay down, so the two left lack the write quorum and answer every
	// write 503 (SlowDownWrite). Stages answer 503 in turn, which the
	// router waits out without spending attempts.
	procs = readCluster(t, s)
	before := invocations(t, s, "503")
	start = time.Now()
	s.Upload("uploads/unavailable.mp4", src, nil)
	unavailable := assetOf(t, s, "uploads/unavailable.mp4")
	waitObject(t, s, layout.Asset(unavailable).Rendition("720p", 0, ".ts"))
	if err := os.WriteFile(down, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, n := range procs.MinIO[2:] {
		if err := syscall.Kill(n.Pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("killed MinIO servers %s and %s, kept down for 60 s, %s after the upload", procs.MinIO[2].Addr, procs.MinIO[3].Addr, time.Since(start).Round(time.Millisecond))
	time.Sleep(60 * time.Second)
	if st, err := asset.ReadStatus(context.Background(), s.Store, s.Bucket, unavailable); err == nil && st.State == asset.StateComplete {
		t.Fatalf("complete while two of four servers were down: the outage proved nothing")
	}
	refused := invocations(t, s, "503") - before
	back := time.Now()
	os.Remove(down)
	s.WaitStatus(unavailable, 5*time.Minute, asset.StateComplete)
	t.Logf("%v calls answered 503 during the outage; complete %s after the servers came back (%s after the upload)",
		refused, time.Since(back).Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
	if refused == 0 {
		t.Errorf("no stage answered 503 while the pool lacked its write quorum")
	}
	waitObject(t, s, layout.Asset(unavailable).Tags(-1))
	waitSettled(t, s, "aitag", 0)
	waitSettled(t, s, "packager", 0)
	sameOutputs(t, s, calm, unavailable)
}

// sameOutputs checks asset faulted against the undisturbed asset calm: every
// rendition segment and playlist byte for byte the same, each media
// playlist listing each segment once, and no dead letter in the stack.
func sameOutputs(t *testing.T, s *teststack.Stack, calm, faulted string) {
	t.Helper()
	ctx := context.Background()
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
}

// invocations is how many calls the gateway's functions answered with
// code, from its /metrics.
func invocations(t *testing.T, s *teststack.Stack, code string) float64 {
	t.Helper()
	resp, err := http.Get(s.Env.Gateway + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var n float64
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "gateway_function_invocation_total{") && strings.Contains(line, `code="`+code+`"`) {
			f := strings.Fields(line)
			v, _ := strconv.ParseFloat(f[len(f)-1], 64)
			n += v
		}
	}
	return n
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
