package relay_test

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/segflow/segflow/shared/asset"
	"github.com/segflow/segflow/shared/layout"
	"github.com/segflow/segflow/shared/storage"
	"github.com/segflow/segflow/shared/testenv"
)

// TestRelayKilledMidPublish: the relay a publisher is on dies (SIGKILL,
// segflow-relay as its container runs it) 8 s into a publish. The
// publisher comes back on the other relay, which continues the channel
// after the segments that reached the bucket (one discontinuity more).
// The killed relay, started again on its spool folder, uploads what was
// left in it and ends the killed publish with every segment that landed,
// so its playlists end, and leaves the channel to the publish that took
// it.
func TestRelayKilledMidPublish(t *testing.T) {
	if testing.Short() {
		t.Skip("two publishes and a relay process")
	}
	e := start(t) // the other relay, in process, on the same bucket
	bin := relayBinary(t, t.TempDir())
	dir := t.TempDir()
	keys := filepath.Join(dir, "stream-keys")
	if err := os.WriteFile(keys, []byte("cam1="+key+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	spoolDir := filepath.Join(dir, "spool")
	rtmpAddr := testenv.FreeAddr(t)
	run := func() *exec.Cmd {
		cmd := exec.Command(bin, "--rtmp", rtmpAddr, "--srt", "", "--webrtc", "", "--keys", keys,
			"--playback-key", filepath.Join(dir, "none"), "--spool", spoolDir, "--http", testenv.FreeAddr(t))
		cmd.Env = append(os.Environ(), append(e.minio.Env(), "S3_BUCKET=media")...)
		logs, _ := os.OpenFile(filepath.Join(dir, "relay.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
		cmd.Stdout, cmd.Stderr = logs, logs
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait(); logs.Close() })
		return cmd
	}
	relayLog := func() string { b, _ := os.ReadFile(filepath.Join(dir, "relay.log")); return string(b) }
	first := run()
	published := make(chan error, 1)
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		if c, err := net.Dial("tcp", rtmpAddr); err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("relay not listening:\n%s", relayLog())
		}
	}
	go func() { published <- publish(t, 30, "flv", "rtmp://"+rtmpAddr+"/live/"+key) }()
	var killed string
	for deadline := time.Now().Add(20 * time.Second); killed == ""; time.Sleep(200 * time.Millisecond) {
		if m := e.liveAsset("cam1"); m != nil && !m.Ended {
			killed = m.ID
		}
		if time.Now().After(deadline) {
			t.Fatalf("no publish on the relay process:\n%s", relayLog())
		}
	}
	time.Sleep(8 * time.Second)
	if err := first.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	first.Wait()
	if err := <-published; err == nil {
		t.Fatal("the publisher did not notice its relay die")
	}
	// The publisher comes back on the other relay.
	if err := publish(t, 6, "flv", "rtmp://"+e.rtmp+"/live/"+key); err != nil {
		t.Fatal(err)
	}
	second := e.waitEnded("cam1", 30*time.Second)
	if second.ID == killed {
		t.Fatalf("no second publish")
	}
	landed, err := e.minio.Client.List(context.Background(), "media", layout.Asset(killed).Prefix()+"source/", storage.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if second.Previous != killed || second.Sequence != len(landed) || second.Discontinuity != 1 {
		t.Errorf("second publish: previous %q sequence %d discontinuity %d; want %q, %d (the killed publish's segments in the bucket), 1",
			second.Previous, second.Sequence, second.Discontinuity, killed, len(landed))
	}
	// Renditions as transcode made them before the relay came back, for
	// every segment the killed publish may end with: the last one's is
	// written again once the publish is ended, so the packager rebuilds
	// and ends the playlists (the ended manifest raises no event).
	ctx := context.Background()
	rendition := func(n int) string { return layout.Asset(killed).Rendition("480p", n, ".ts") }
	written := func(key string) time.Time {
		objs, err := e.minio.Client.List(ctx, "media", key, storage.ListOptions{})
		if err != nil || len(objs) != 1 {
			t.Fatalf("list %s: %v %v", key, objs, err)
		}
		return objs[0].LastModified
	}
	madeAt := map[int]time.Time{}
	for n := range 10 {
		if err := e.minio.Client.PutBytes(ctx, "media", rendition(n), []byte("rendition"),
			storage.PutOptions{ContentType: "video/mp2t", Metadata: map[string]string{"Producer": "transcode"}}); err != nil {
			t.Fatal(err)
		}
		madeAt[n] = written(rendition(n))
	}
	time.Sleep(1100 * time.Millisecond) // past a second: LastModified's grain
	// The killed relay, started again, finishes the killed publish.
	run()
	var m *asset.Manifest
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		if m, err = asset.ReadManifest(context.Background(), e.minio.Client, "media", killed); err == nil && m.Ended {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the killed publish was never ended: %+v %v\n%s", m, err, relayLog())
		}
	}
	if len(m.Segments) < 3 {
		t.Fatalf("the killed publish ended with %d segments, want the ~4 cut in its 8 s", len(m.Segments))
	}
	e.checkSegments(m, 0)
	last := m.Segments[len(m.Segments)-1].Index
	for deadline := time.Now().Add(10 * time.Second); !written(rendition(last)).After(madeAt[last]); time.Sleep(200 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the last segment's rendition %s was not written again after the publish ended:\n%s", rendition(last), relayLog())
		}
	}
	info, err := e.minio.Client.Stat(ctx, "media", rendition(last))
	if b, _ := e.minio.Client.GetBytes(ctx, "media", rendition(last)); err != nil || string(b) != "rendition" ||
		info.Meta("Producer") != "transcode" || info.ContentType != "video/mp2t" {
		t.Errorf("rewritten rendition: %q %+v %v; want it unchanged", b, info, err)
	}
	if !written(rendition(last - 1)).Equal(madeAt[last-1]) {
		t.Errorf("an earlier segment's rendition was written again too")
	}
	if _, err := os.Stat(filepath.Join(spoolDir, killed)); !os.IsNotExist(err) {
		t.Errorf("the killed publish's spool folder is still there: %v", err)
	}
	b, err := e.minio.Client.GetBytes(context.Background(), "media", layout.Channel("cam1").State())
	var cs struct {
		Current string
		Ended   bool
	}
	if err == nil {
		err = json.Unmarshal(b, &cs)
	}
	if err != nil || cs.Current != second.ID {
		t.Errorf("channel state %s (%v): want it on %s", b, err, second.ID)
	}
	t.Logf("killed publish ended with %d segments; the second continued at sequence %d", len(m.Segments), second.Sequence)
}
