package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/grafov/m3u8"
	"github.com/nats-io/nats.go"

	"github.com/segflow/segflow/infra/gwclient"
	"github.com/segflow/segflow/infra/internal/e2ekit"
	"github.com/segflow/segflow/infra/internal/proctree"
	"github.com/segflow/segflow/infra/internal/testqueue"
	"github.com/segflow/segflow/infra/internal/teststack"
	"github.com/segflow/segflow/shared/asset"
	"github.com/segflow/segflow/shared/layout"
	"github.com/segflow/segflow/shared/media/mediatest"
	"github.com/segflow/segflow/shared/miniosrv"
)

// clusterProcesses is segflow up --nodes's cluster.json.
type clusterProcesses struct {
	NATS, MinIO, Gateways, Routers, Relays []clusterProcess
}

type clusterProcess struct {
	Name, Addr string
	Pid        int
}

func readCluster(t testing.TB, s *teststack.Stack) clusterProcesses {
	t.Helper()
	var c clusterProcesses
	b, err := os.ReadFile(filepath.Join(s.Home, "cluster.json"))
	if err == nil {
		err = json.Unmarshal(b, &c)
	}
	if err != nil || len(c.NATS) != 3 || len(c.MinIO) != 4 || len(c.Gateways) != 1 || len(c.Routers) != 1 || len(c.Relays) != 1 {
		t.Fatalf("cluster.json: %+v, %v", c, err)
	}
	return c
}

// all is every process of the cluster.
func (c clusterProcesses) all() []clusterProcess {
	return slices.Concat(c.NATS, c.MinIO, c.Gateways, c.Routers, c.Relays)
}

// TestClusterFaultsLoseNothing runs the stack as `segflow up --nodes 3`
// (three NATS processes in one JetStream cluster, streams at replicas 3;
// MinIO distributed over four servers behind one S3 address; a second
// runtime node: a gateway and its router as processes) and uploads one
// file once per round: undisturbed (both nodes take transcodes); with the NATS node
// leading the router's deliveries, one MinIO server and a transcode
// replica killed (SIGKILL) as soon as the first rendition segment is out;
// with the second node's gateway killed so; with its router killed so;
// and with two MinIO servers down for 60 s from then (the pool answering
// writes 503). Each faulted asset completes, its renditions and playlists
// byte for byte the undisturbed one's, each playlist listing each segment
// once, and nothing is dead-lettered.
func TestClusterFaultsLoseNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("a stack of eleven processes and two transcodes")
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
	mediatest.Make(t, src, mediatest.Clip{Seconds: 60, Width: 854, Height: 480, FPS: 30, Audio: true})
	procs := readCluster(t, s)
	gw2 := gwclient.New("http://"+procs.Gateways[0].Addr, s.Env.GatewayUser, s.Env.GatewayPassword)
	gateways := []string{s.Env.Gateway, gw2.URL}
	// Tags and quality scores are the most CPU of a minute of video and
	// no fault path of their own (stages like thumbnail, which stays):
	// out of this stack, so that its rounds fit CI's time.
	for _, fn := range []string{"aitag", "qa"} {
		for _, gw := range []*gwclient.Client{s.GW, gw2} {
			if err := gw.DeleteFunction(context.Background(), fn, ""); err != nil {
				t.Fatal(err)
			}
		}
		s.WaitRouted(fn, false)
	}
	settled := func(id string) {
		e2ekit.WaitSettledOn(t, "thumbnail", 0, s.GW, gw2)
		e2ekit.WaitSettledOn(t, "packager", 0, s.GW, gw2)
	}

	// Undisturbed, on both runtime nodes: how the transcodes split.
	before := [2]float64{invocations(t, gateways[0], "transcode", "200"), invocations(t, gateways[1], "transcode", "200")}
	start := time.Now()
	s.Upload("uploads/calm.mp4", src, nil)
	calm := e2ekit.AssetOf(t, s, "uploads/calm.mp4")
	s.WaitStatus(calm, 5*time.Minute, asset.StateComplete)
	t.Logf("undisturbed: complete after %s", time.Since(start).Round(time.Millisecond))
	settled(calm)
	taken := [2]float64{invocations(t, gateways[0], "transcode", "200") - before[0], invocations(t, gateways[1], "transcode", "200") - before[1]}
	t.Logf("transcode calls taken: first node %v, second %v", taken[0], taken[1])
	if taken[1] == 0 {
		t.Errorf("the second runtime node took no transcode")
	}

	// Kill -9 of a NATS node, a MinIO server and a function replica.
	leader := eventsLeader(t, s)
	var killedNATS int
	for _, n := range procs.NATS {
		if n.Name == leader {
			killedNATS = n.Pid
		}
	}
	faulted := killRound(t, s, "faulted", src, func() []int {
		return []int{killedNATS, procs.MinIO[1].Pid, functionPid(t, s, "transcode")}
	}, fmt.Sprintf("NATS node %s (the deliveries' leader), MinIO server %s and a transcode replica", leader, procs.MinIO[1].Addr))
	settled(faulted)
	sameOutputs(t, s, calm, faulted)
	waitRestarted(t, s, []int{killedNATS, procs.MinIO[1].Pid})

	// Kill -9 of the second runtime node's gateway (its functions die
	// with it), then of its router.
	procs = readCluster(t, s)
	for _, k := range []struct{ name, what string }{
		{"gateway-killed", "the second node's gateway"},
		{"router-killed", "the second node's router"},
	} {
		p := procs.Gateways[0]
		if k.name == "router-killed" {
			p = procs.Routers[0]
		}
		id := killRound(t, s, k.name, src, func() []int { return []int{p.Pid} }, k.what)
		settled(id)
		sameOutputs(t, s, calm, id)
		waitRestarted(t, s, []int{p.Pid})
		procs = readCluster(t, s)
	}

	liveThroughFaults(t, s, gw2)

	// MinIO answering 503 for 60 s: two of the pool's four servers die and
	// stay down, so the two left lack the write quorum and answer every
	// write 503 (SlowDownWrite). Stages answer 503 in turn, which the
	// router waits out without spending attempts.
	// A live stream publishes through the outage too: its relay keeps
	// the segments the bucket refuses in its spool.
	procs = readCluster(t, s)
	refusedBefore := invocations(t, gateways[0], "", "503") + invocations(t, gateways[1], "", "503")
	since := time.Now()
	live := e2ekit.Publishing(e2ekit.TestPublisher("426x240", 100, "flv", s.Env.RTMPURL))
	liveID := e2ekit.WaitLiveAsset(t, s, since)
	start = time.Now()
	s.Upload("uploads/unavailable.mp4", src, nil)
	unavailable := e2ekit.AssetOf(t, s, "uploads/unavailable.mp4")
	e2ekit.WaitObject(t, s, layout.Asset(unavailable).Rendition("480p", 0, ".ts"))
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
	refused := invocations(t, gateways[0], "", "503") + invocations(t, gateways[1], "", "503") - refusedBefore
	back := time.Now()
	os.Remove(down)
	s.WaitStatus(unavailable, 5*time.Minute, asset.StateComplete)
	t.Logf("%v calls answered 503 during the outage; complete %s after the servers came back (%s after the upload)",
		refused, time.Since(back).Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
	if refused == 0 {
		t.Errorf("no stage answered 503 while the pool lacked its write quorum")
	}
	settled(unavailable)
	sameOutputs(t, s, calm, unavailable)
	if err := <-live; err != nil {
		t.Fatalf("live through the outage: the publisher was disturbed: %v", err)
	}
	endedLive(t, s, liveID)
	t.Logf("live through the outage: %d segments, each listed once", len(e2ekit.ReadManifest(t, s, liveID).Segments))
	e2ekit.WaitSettledOn(t, "packager", 0, s.GW, gw2)
	noDeadLetters(t, s)
}

// endedLive waits for every rendition playlist of live asset id to end
// and checks it lists each of the publish's segments once, with no
// discontinuity inside the publish.
func endedLive(t *testing.T, s *teststack.Stack, id string) {
	t.Helper()
	a := layout.Asset(id)
	for _, name := range e2ekit.ReadManifest(t, s, id).RenditionNames() {
		b := e2ekit.WaitPlaylist(t, s, a.Playlist(name), func(last int, ended bool) bool { return ended })
		pl, _, err := m3u8.DecodeFrom(strings.NewReader(string(b)), true)
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		for _, seg := range pl.(*m3u8.MediaPlaylist).GetAllSegments() {
			if seen[seg.URI] {
				t.Errorf("live %s %s lists %s twice", id, name, seg.URI)
			}
			seen[seg.URI] = true
			if seg.Discontinuity {
				t.Errorf("live %s %s: a discontinuity at %s", id, name, seg.URI)
			}
		}
		if n := len(e2ekit.ReadManifest(t, s, id).Segments); len(seen) != n || n < 3 {
			t.Errorf("live %s %s lists %d segments, the publish has %d", id, name, len(seen), n)
		}
	}
}

// liveThroughFaults publishes over RTMP to the second relay while, 6 s
// apart, the NATS node leading the deliveries, a MinIO server, a
// transcode replica, the second runtime node's gateway and then its
// router are killed (SIGKILL), and then the relay itself: the publisher
// comes back on the first relay. The first publish goes on undisturbed
// until its relay dies; the restarted relay ends it with every segment
// that landed; the second continues the channel after them with one
// discontinuity. Each publish's playlists end listing each of its
// segments once, and nothing is dead-lettered.
func liveThroughFaults(t *testing.T, s *teststack.Stack, gw2 *gwclient.Client) {
	t.Helper()
	procs := readCluster(t, s)
	streamKey := s.Env.RTMPURL[strings.LastIndex(s.Env.RTMPURL, "/")+1:]
	since := time.Now()
	done := e2ekit.Publishing(e2ekit.TestPublisher("854x480", 60, "flv", "rtmp://"+procs.Relays[0].Addr+"/live/"+streamKey))
	idA := e2ekit.WaitLiveAsset(t, s, since)
	leader := eventsLeader(t, s)
	var killed []int
	for _, victim := range []struct {
		what string
		pid  func() int
	}{
		{"the deliveries' NATS leader " + leader, func() int {
			for _, n := range procs.NATS {
				if n.Name == leader {
					return n.Pid
				}
			}
			return 0
		}},
		{"MinIO server " + procs.MinIO[0].Addr, func() int { return procs.MinIO[0].Pid }},
		{"a transcode replica", func() int { return functionPid(t, s, "transcode") }},
		{"the second node's gateway", func() int { return procs.Gateways[0].Pid }},
		{"the second node's router", func() int { return procs.Routers[0].Pid }},
		{"the relay the publisher is on", func() int { return procs.Relays[0].Pid }},
	} {
		time.Sleep(6 * time.Second)
		pid := victim.pid()
		if pid == 0 || syscall.Kill(pid, syscall.SIGKILL) != nil {
			t.Fatalf("live: kill %d (%s)", pid, victim.what)
		}
		killed = append(killed, pid)
		t.Logf("live: killed %s %s into the publish", victim.what, time.Since(since).Round(time.Millisecond))
	}
	if err := <-done; err == nil {
		t.Fatal("live: the publisher did not notice its relay die")
	}
	// The publisher comes back on the other relay.
	since = time.Now()
	done = e2ekit.Publishing(e2ekit.TestPublisher("854x480", 10, "flv", s.Env.RTMPURL))
	idB := e2ekit.WaitLiveAsset(t, s, since)
	if err := <-done; err != nil {
		t.Fatalf("live: the second publish: %v", err)
	}
	ended := time.Now()
	for _, id := range []string{idA, idB} {
		endedLive(t, s, id)
	}
	mA, mB := e2ekit.ReadManifest(t, s, idA), e2ekit.ReadManifest(t, s, idB)
	if mB.Previous != idA || mB.Sequence != len(mA.Segments) || mB.Discontinuity != mA.Discontinuity+1 {
		t.Errorf("live: second publish previous %q sequence %d discontinuity %d; want %q, %d, %d",
			mB.Previous, mB.Sequence, mB.Discontinuity, idA, len(mA.Segments), mA.Discontinuity+1)
	}
	t.Logf("live: the killed publish ended with %d segments, the second continued at %d; every playlist ended %s after the second publish",
		len(mA.Segments), mB.Sequence, time.Since(ended).Round(time.Millisecond))
	e2ekit.WaitSettledOn(t, "packager", 0, s.GW, gw2)
	noDeadLetters(t, s)
	waitRestarted(t, s, killed)
}

// killRound uploads src as uploads/<name>.mp4, kills (SIGKILL) the pids
// victims gives as soon as the first rendition segment is out, and
// returns the asset once complete, logging how long it took.
func killRound(t *testing.T, s *teststack.Stack, name, src string, victims func() []int, what string) string {
	t.Helper()
	start := time.Now()
	key := "uploads/" + name + ".mp4"
	s.Upload(key, src, nil)
	id := e2ekit.AssetOf(t, s, key)
	e2ekit.WaitObject(t, s, layout.Asset(id).Rendition("480p", 0, ".ts"))
	for _, pid := range victims() {
		if pid == 0 || syscall.Kill(pid, syscall.SIGKILL) != nil {
			t.Fatalf("%s: kill %d (%s)", name, pid, what)
		}
	}
	t.Logf("%s: killed %s %s after the upload", name, what, time.Since(start).Round(time.Millisecond))
	s.WaitStatus(id, 5*time.Minute, asset.StateComplete)
	t.Logf("%s: complete after %s", name, time.Since(start).Round(time.Millisecond))
	return id
}

// waitRestarted waits for the supervisor to have started every cluster
// process again: each listed with a live pid, none of the killed ones.
func waitRestarted(t *testing.T, s *teststack.Stack, killed []int) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		now := readCluster(t, s)
		all := now.all()
		running := 0
		for _, n := range all {
			if !slices.Contains(killed, n.Pid) && syscall.Kill(n.Pid, 0) == nil {
				running++
			}
		}
		if running == len(all) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d cluster processes running a minute after the kills: %+v", running, len(all), now)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// sameOutputs checks asset faulted against the undisturbed asset calm: every
// rendition segment and playlist byte for byte the same, each media
// playlist listing each segment once, and no dead letter in the stack.
func sameOutputs(t *testing.T, s *teststack.Stack, calm, faulted string) {
	t.Helper()
	calmTags, faultedTags := e2ekit.Etags(t, s, calm), e2ekit.Etags(t, s, faulted)
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
	segs := len(e2ekit.ReadManifest(t, s, faulted).Segments)
	for k := range faultedTags {
		if !strings.HasSuffix(k, ".m3u8") || k == "master.m3u8" || strings.Contains(k, "iframe") {
			continue
		}
		p, kind, err := m3u8.DecodeFrom(strings.NewReader(string(e2ekit.Object(t, s, layout.Asset(faulted).Prefix()+k))), true)
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
	noDeadLetters(t, s)
}

// noDeadLetters checks the stack has dead-lettered nothing.
func noDeadLetters(t *testing.T, s *teststack.Stack) {
	t.Helper()
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, s.Env.Gateway+"/system/deadletters", nil)
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

// invocations is how many calls the gateway at url answered with code,
// for function fn (empty: any), from its /metrics.
func invocations(t testing.TB, url, fn, code string) float64 {
	t.Helper()
	resp, err := http.Get(url + "/metrics")
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
		if strings.HasPrefix(line, "gateway_function_invocation_total{") && strings.Contains(line, `code="`+code+`"`) &&
			(fn == "" || strings.Contains(line, `function_name="`+fn+`"`) || strings.Contains(line, `function_name="`+fn+`.`)) {
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
	info, err := testqueue.StreamInfo(nc, "SEGFLOW_EVENTS")
	if err != nil || info.Cluster == nil || info.Cluster.Leader == "" || info.Config.Replicas != 3 {
		t.Fatalf("SEGFLOW_EVENTS: %+v, %v", info, err)
	}
	return info.Cluster.Leader
}
