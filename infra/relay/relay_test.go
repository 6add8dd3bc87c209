package relay_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/segflow/segflow/infra/internal/faultproxy"
	"github.com/segflow/segflow/infra/relay"
	"github.com/segflow/segflow/shared/asset"
	"github.com/segflow/segflow/shared/layout"
	"github.com/segflow/segflow/shared/media/mediatest"
	"github.com/segflow/segflow/shared/storage"
	"github.com/segflow/segflow/shared/testenv"
)

const key = "k3y-for-cam1"

// privateKey publishes the private stream vip.
const privateKey = "k3y-for-vip-only"

type env struct {
	t     *testing.T
	minio *testenv.MinIO
	relay *relay.Relay
	rtmp  string
	srt   string
	spool string // the relay's spool folder
	cfg   relay.Config
}

func start(t *testing.T) *env { return startWith(t, func(*relay.Config) {}) }

// startWith starts a relay with the test's keys, edited by edit.
func startWith(t *testing.T, edit func(*relay.Config)) *env {
	return startBeside(t, func(_ *env, c *relay.Config) { edit(c) })
}

// startBeside is startWith with an edit that sees the test's MinIO.
func startBeside(t *testing.T, edit func(*env, *relay.Config)) *env {
	e := &env{t: t, minio: testenv.StartMinIO(t)}
	e.minio.Bucket(t, "media")
	dir := t.TempDir()
	keys := filepath.Join(dir, "stream-keys")
	os.WriteFile(keys, []byte("# name=key\ncam1="+key+"\ncam2=another-key-2\nvip="+privateKey+" private\n"), 0o600)
	k, err := relay.LoadKeys(keys)
	if err != nil {
		t.Fatal(err)
	}
	e.srt = testenv.FreeAddr(t)
	e.spool = filepath.Join(dir, "spool")
	cfg := relay.Config{RTMPAddr: "127.0.0.1:0", SRTAddr: e.srt, Keys: k,
		Store: e.minio.Client, Bucket: "media", SpoolDir: e.spool,
		DrainTimeout: 90 * time.Second}
	edit(e, &cfg)
	e.cfg = cfg
	if e.relay, err = relay.Open(cfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.relay.Close)
	e.rtmp = e.relay.RTMPAddr()
	return e
}

// publish runs ffmpeg -re with testsrc2 + sine for seconds to its output
// (a URL, after output options such as -listen 1).
func publish(t *testing.T, seconds int, format string, output ...string) error {
	args := []string{"-hide_banner", "-nostdin", "-v", "error", "-re",
		"-f", "lavfi", "-i", fmt.Sprintf("testsrc2=size=640x360:rate=30:duration=%d", seconds),
		"-f", "lavfi", "-i", fmt.Sprintf("sine=frequency=1000:sample_rate=48000:duration=%d", seconds),
		"-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", "60", "-pix_fmt", "yuv420p",
		"-c:a", "aac", "-b:a", "96k", "-f", format}
	args = append(args, output...)
	out, err := exec.Command("ffmpeg", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ffmpeg: %v: %s", err, out)
	}
	return nil
}

// liveAsset finds the asset of a stream's newest publish.
func (e *env) liveAsset(stream string) *asset.Manifest {
	var objs []storage.Info
	for _, prefix := range []string{"assets/live-", "assets/" + layout.PrivateIDPrefix + "live-"} {
		found, err := e.minio.Client.List(context.Background(), "media", prefix+stream+"-", storage.ListOptions{Recursive: true})
		if err != nil {
			e.t.Fatal(err)
		}
		objs = append(objs, found...)
	}
	var ids []string
	for _, o := range objs {
		if strings.HasSuffix(o.Key, "/manifest.json") {
			ids = append(ids, strings.Split(o.Key, "/")[1])
		}
	}
	if len(ids) == 0 {
		return nil
	}
	sort.Strings(ids)
	m, err := asset.ReadManifest(context.Background(), e.minio.Client, "media", ids[len(ids)-1])
	if err != nil {
		e.t.Fatal(err)
	}
	return m
}

// waitEnded waits until the stream's manifest says ended and every
// segment it lists is in the bucket.
func (e *env) waitEnded(stream string, within time.Duration) *asset.Manifest {
	e.t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if m := e.liveAsset(stream); m != nil && m.Ended {
			objs, _ := e.minio.Client.List(context.Background(), "media", layout.Asset(m.ID).Prefix()+"source/", storage.ListOptions{})
			if len(objs) == len(m.Segments) {
				return m
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	e.t.Fatalf("stream %s did not end with all segments: %+v", stream, e.liveAsset(stream))
	return nil
}

// checkSegments downloads every source segment and checks they decode and
// join without holes in the video timeline, and (seconds > 0) hold that
// many seconds of video.
func (e *env) checkSegments(m *asset.Manifest, seconds int) {
	e.t.Helper()
	dir := e.t.TempDir()
	all := filepath.Join(dir, "all.ts")
	f, _ := os.Create(all)
	defer f.Close()
	var wall time.Time
	for i, s := range m.Segments {
		if s.Index != i {
			e.t.Fatalf("segment list has a hole at %d: %+v", i, m.Segments)
		}
		p := filepath.Join(dir, strconv.Itoa(i)+".ts")
		info, err := e.minio.Client.GetFile(context.Background(), "media", layout.Asset(m.ID).Source(i, ".ts"), p)
		if err != nil {
			e.t.Fatal(err)
		}
		sm, err := asset.ReadSegmentMeta(info)
		if err != nil || sm.Index != i || sm.Wallclock.IsZero() || math.Abs(sm.Duration-s.Duration) > 1e-5 {
			e.t.Errorf("segment %d metadata %v: %+v %v", i, info.Metadata, sm, err)
		}
		// PROGRAM-DATE-TIME comes from Wallclock: consecutive ones must
		// differ by the segment's duration, not by when it arrived.
		if i > 0 && math.Abs(sm.Wallclock.Sub(wall).Seconds()-m.Segments[i-1].Duration) > 0.001 {
			e.t.Errorf("segment %d's wall clock is %v after segment %d's, which lasts %.3fs", i, sm.Wallclock.Sub(wall), i-1, m.Segments[i-1].Duration)
		}
		wall = sm.Wallclock
		if err := mediatest.Decodes(p); err != nil {
			e.t.Errorf("segment %d: %v", i, err)
		}
		b, _ := os.ReadFile(p)
		f.Write(b)
		if i < len(m.Segments)-1 && math.Abs(s.Duration-2) > 0.05 {
			e.t.Errorf("segment %d lasts %.3fs, want 2s (GOP 2s)", i, s.Duration)
		}
	}
	ps := mediatest.Packets(e.t, all, "v:0")
	for i := 1; i < len(ps); i++ {
		if d := ps[i].PTS - ps[i-1].PTS; math.Abs(d-1.0/30) > 0.002 {
			e.t.Errorf("video timestamps jump %.4fs at %.3f", d, ps[i].PTS)
			break
		}
	}
	if seconds > 0 && math.Abs(float64(len(ps))-float64(seconds*30)) > 30 {
		e.t.Errorf("%d frames in the bucket for %ds published", len(ps), seconds)
	}
	if ps[0].Key != true {
		e.t.Error("first segment does not start with a keyframe")
	}
}

// A minute of RTMP: every segment in the bucket, and PROGRAM-DATE-TIME
// that holds to the wall clock over the whole minute (each segment's is
// the first frame's arrival plus its media time, so it cannot drift from
// EXTINF, and a publisher sending in real time keeps it on the clock).
func TestRTMPPublishToBucket(t *testing.T) {
	e := start(t)
	const seconds = 60
	began := time.Now()
	if err := publish(t, seconds, "flv", "rtmp://"+e.rtmp+"/live/"+key); err != nil {
		t.Fatal(err)
	}
	stopped := time.Now()
	m := e.waitEnded("cam1", 30*time.Second)
	if !m.Live || len(m.Ladder) == 0 || m.Width != 640 || !m.Audio || len(m.Segments) < 29 {
		t.Fatalf("manifest %+v", m)
	}
	e.checkSegments(m, seconds)
	first, last := m.Segments[0], m.Segments[len(m.Segments)-1]
	wall := func(s asset.Segment) time.Time {
		info, err := e.minio.Client.Stat(context.Background(), "media", layout.Asset(m.ID).Source(s.Index, ".ts"))
		if err != nil {
			t.Fatal(err)
		}
		sm, err := asset.ReadSegmentMeta(info)
		if err != nil {
			t.Fatal(err)
		}
		return sm.Wallclock
	}
	// ffmpeg starts in well under a second; the end of the last frame
	// on the PDT clock is when the publisher sent it, just before it quit.
	if d := wall(first).Sub(began); d < 0 || d > 2*time.Second {
		t.Errorf("first PDT %v after the publisher started", d)
	}
	end := wall(last).Add(time.Duration(last.Duration * float64(time.Second)))
	if d := stopped.Sub(end); d < -200*time.Millisecond || d > time.Second {
		t.Errorf("after %ds the PDT clock is %v behind the wall clock", seconds, d)
	}
}

func TestSRTPublishToBucket(t *testing.T) {
	e := start(t)
	if err := publish(t, 6, "mpegts", "srt://"+e.srt+"?streamid="+key+"&pkt_size=1316"); err != nil {
		t.Fatal(err)
	}
	m := e.waitEnded("cam1", 30*time.Second)
	if !m.Audio || len(m.Segments) < 2 {
		t.Fatalf("manifest %+v", m)
	}
	e.checkSegments(m, 6)
}

func TestRefusesBadPublishersAndKeepsServing(t *testing.T) {
	e := start(t)
	// Garbage on both ports while a good publisher runs.
	done := make(chan error, 1)
	go func() { done <- publish(t, 6, "flv", "rtmp://"+e.rtmp+"/live/"+key) }()
	time.Sleep(500 * time.Millisecond)
	for _, payload := range [][]byte{
		[]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
		append([]byte{0x03}, make([]byte, 700)...), // C0+part of C1, then silence
		randomBytes(4096),
	} {
		c, err := net.Dial("tcp", e.rtmp)
		if err != nil {
			t.Fatal(err)
		}
		c.Write(payload)
		c.Close()
	}
	if c, err := net.Dial("udp", e.srt); err == nil {
		c.Write(randomBytes(1500))
		c.Write([]byte{0x80, 0, 0, 0})
		c.Close()
	}
	// Wrong keys are refused on both protocols.
	if err := publish(t, 2, "flv", "rtmp://"+e.rtmp+"/live/wrong-key"); err == nil {
		t.Error("rtmp publish with a wrong key succeeded")
	}
	if err := publish(t, 2, "mpegts", "srt://"+e.srt+"?streamid=wrong-key"); err == nil {
		t.Error("srt publish with a wrong key succeeded")
	}
	if err := <-done; err != nil {
		t.Fatalf("good publisher: %v", err)
	}
	m := e.waitEnded("cam1", 30*time.Second)
	e.checkSegments(m, 6)
	// Still serving afterwards.
	if err := publish(t, 3, "flv", "rtmp://"+e.rtmp+"/live/another-key-2"); err != nil {
		t.Fatal(err)
	}
	e.waitEnded("cam2", 30*time.Second)
}

func TestStorageOutageLosesNoSegment(t *testing.T) {
	if testing.Short() {
		t.Skip("30 s publish")
	}
	e := start(t)
	done := make(chan error, 1)
	go func() { done <- publish(t, 30, "flv", "rtmp://"+e.rtmp+"/live/"+key) }()
	time.Sleep(5 * time.Second) // a few segments go up before the outage
	e.minio.Stop()
	// The outage lasts until the spool holds 5 segments on disk: what it
	// keeps while the bucket is away is the claim under test.
	deadline := time.Now().Add(25 * time.Second)
	for {
		held, _ := filepath.Glob(filepath.Join(e.spool, "*", "*.item"))
		if len(held) >= 5 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the spool holds %d items after the bucket went away, want 5", len(held))
		}
		time.Sleep(200 * time.Millisecond)
	}
	e.minio.Start(t)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	m := e.waitEnded("cam1", 90*time.Second)
	e.checkSegments(m, 30)
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i*i*13)
	}
	return b
}

// TestFlakyLinkLosesNoSegment is an edge relay whose link to the origin
// bucket is bad for the whole of a 30 s publish: a third of its
// connections refused, the rest delayed up to 300 ms and cut within 1.5 s,
// and for 8 s every request answered 503. The stream ends with every
// segment in the bucket, in order, whole.
func TestFlakyLinkLosesNoSegment(t *testing.T) {
	if testing.Short() {
		t.Skip("30 s publish")
	}
	var proxy *faultproxy.Proxy
	e := startBeside(t, func(e *env, c *relay.Config) {
		proxy = faultproxy.Start(t, e.minio.Server.Endpoint())
		o := e.minio.Options
		o.Endpoint = proxy.Addr()
		flaky, err := storage.New(o)
		if err != nil {
			t.Fatal(err)
		}
		c.Store = flaky
	})
	flaky := faultproxy.Faults{Drop: 0.33, MaxDelay: 300 * time.Millisecond, MaxLife: 1500 * time.Millisecond}
	proxy.Set(flaky)
	done := make(chan error, 1)
	go func() { done <- publish(t, 30, "flv", "rtmp://"+e.rtmp+"/live/"+key) }()
	time.Sleep(10 * time.Second)
	proxy.Set(faultproxy.Faults{Unavailable: true})
	time.Sleep(8 * time.Second)
	proxy.Set(flaky)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	conns, dropped, cut, refused := proxy.Stats()
	t.Logf("link: %d connections, %d refused at once, %d cut, %d requests answered 503", conns, dropped, cut, refused)
	if dropped == 0 || cut == 0 || refused == 0 {
		t.Fatalf("the link was not bad enough to prove anything: %d dropped, %d cut, %d 503s", dropped, cut, refused)
	}
	m := e.waitEnded("cam1", 120*time.Second)
	e.checkSegments(m, 30)
}

// another opens a second relay on the same bucket with the same keys and
// a spool of its own: the other replica behind a publishers' address.
func (e *env) another() *relay.Relay {
	e.t.Helper()
	cfg := e.cfg
	cfg.RTMPAddr, cfg.SRTAddr, cfg.SpoolDir = "127.0.0.1:0", testenv.FreeAddr(e.t), filepath.Join(e.t.TempDir(), "spool")
	r, err := relay.Open(cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(r.Close)
	return r
}

// TestPublisherMovesToAnotherRelay: a publisher that comes back on the
// other of two relays continues the channel there (the next publish, its
// sequence after the first's segments, one discontinuity more), and the
// first relay, whose wait for its publisher runs out meanwhile, leaves the
// channel to the second: its state still names the second publish, open.
func TestPublisherMovesToAnotherRelay(t *testing.T) {
	if testing.Short() {
		t.Skip("two publishes")
	}
	e := startWith(t, func(c *relay.Config) { c.Reconnect = 2 * time.Second })
	other := e.another()
	if err := publish(t, 6, "flv", "rtmp://"+e.rtmp+"/live/"+key); err != nil {
		t.Fatal(err)
	}
	first := e.waitEnded("cam1", 30*time.Second)
	// What the packager does once the publish has ended: the publish's own
	// playlists end, which the first relay waits for before it ends the
	// channel.
	for _, name := range first.RenditionNames() {
		if err := e.minio.Client.PutBytes(context.Background(), "media", layout.Asset(first.ID).Playlist(name),
			[]byte("#EXTM3U\n#EXT-X-ENDLIST\n"), storage.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	done := make(chan error, 1)
	go func() { done <- publish(t, 8, "flv", "rtmp://"+other.RTMPAddr()+"/live/"+key) }()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	var second *asset.Manifest
	deadline := time.Now().Add(30 * time.Second)
	for second == nil || second.ID == first.ID || !second.Ended {
		if time.Now().After(deadline) {
			t.Fatalf("no second publish ended: %+v", second)
		}
		time.Sleep(200 * time.Millisecond)
		second = e.liveAsset("cam1")
	}
	if second.Previous != first.ID || second.Sequence != first.Sequence+len(first.Segments) || second.Discontinuity != first.Discontinuity+1 {
		t.Errorf("second publish previous %q sequence %d discontinuity %d; want %q, %d, %d", second.Previous, second.Sequence,
			second.Discontinuity, first.ID, first.Sequence+len(first.Segments), first.Discontinuity+1)
	}
	// The first relay's 2 s wait ran out during the second publish.
	b, err := e.minio.Client.GetBytes(context.Background(), "media", layout.Channel("cam1").State())
	if err != nil {
		t.Fatal(err)
	}
	var state struct {
		Current string
		Ended   bool
	}
	if err := json.Unmarshal(b, &state); err != nil || state.Current != second.ID {
		t.Errorf("channel state %s: the first relay took the channel back from the second publish (%s)", b, second.ID)
	}
}
