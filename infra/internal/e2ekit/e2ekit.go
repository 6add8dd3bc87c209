// Package e2ekit holds what the end-to-end tests share (infra/e2e and
// infra/e2e/cluster): finding a stack's assets and playlists, waiting for
// objects and functions to settle, and running test publishers.
package e2ekit

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/segflow/segflow/infra/gwclient"
	"github.com/segflow/segflow/infra/internal/teststack"
	"github.com/segflow/segflow/shared/asset"
	"github.com/segflow/segflow/shared/hls"
	"github.com/segflow/segflow/shared/layout"
	"github.com/segflow/segflow/shared/storage"
	"github.com/segflow/segflow/shared/telemetry"
)

// Metrics reads the stack's /metrics: the gateway's, which in segflow
// up carries the router's, the runtime's and the catalog's too.
func Metrics(t testing.TB, s *teststack.Stack) telemetry.Scrape {
	t.Helper()
	m, err := telemetry.GetScrape(context.Background(), s.Env.Gateway+"/metrics")
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// AssetOf is the id of the asset an upload at key makes.
func AssetOf(t testing.TB, s *teststack.Stack, key string) string {
	t.Helper()
	info, err := s.Store.Stat(context.Background(), s.Bucket, key)
	if err != nil {
		t.Fatal(err)
	}
	return layout.AssetID(key, info.ETag)
}

// WaitObject waits (up to 5 minutes) until key is in the bucket.
func WaitObject(t testing.TB, s *teststack.Stack, key string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Minute)
	for time.Now().Before(deadline) {
		if _, err := s.Store.Stat(context.Background(), s.Bucket, key); err == nil {
			return
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Fatalf("%s never written\n%s", key, s.Log())
}

// WaitSettledOn is waitSettled counting fn's invocations on every gateway
// of gws together.
func WaitSettledOn(t testing.TB, fn string, min float64, gws ...*gwclient.Client) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	last, since := -1.0, time.Now()
	for time.Now().Before(deadline) {
		n := 0.0
		for _, gw := range gws {
			st, err := gw.GetFunction(context.Background(), fn, "")
			if err != nil {
				t.Fatal(err)
			}
			n += st.InvocationCount
		}
		if n != last {
			last, since = n, time.Now()
		}
		if last >= min && time.Since(since) > 2*time.Second {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("%s never settled (%v invocations, want %v)", fn, last, min)
}

// Etags maps every media and playlist key of the asset to its ETag
// (status.json aside: it records times).
func Etags(t testing.TB, s *teststack.Stack, id string) map[string]string {
	t.Helper()
	objs, err := s.Store.List(context.Background(), s.Bucket, layout.Asset(id).Prefix(), storage.ListOptions{Recursive: true})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, o := range objs {
		rel := strings.TrimPrefix(o.Key, layout.Asset(id).Prefix())
		if rel != "status.json" {
			out[rel] = o.ETag
		}
	}
	return out
}

// Object reads a whole object from the stack's bucket.
func Object(t testing.TB, s *teststack.Stack, key string) []byte {
	t.Helper()
	b, err := s.Store.GetBytes(context.Background(), s.Bucket, key)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// ReadManifest reads asset id's manifest.
func ReadManifest(t testing.TB, s *teststack.Stack, id string) *asset.Manifest {
	t.Helper()
	m, err := asset.ReadManifest(context.Background(), s.Store, s.Bucket, id)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// WaitAsset waits for the newest asset whose id starts with prefix and
// was made since then (a live asset's id ends in its start time).
func WaitAsset(t testing.TB, s *teststack.Stack, prefix string, since time.Time) string {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		objs, err := s.Store.List(context.Background(), s.Bucket, "assets/"+prefix, storage.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		newest := ""
		for _, o := range objs {
			id := strings.TrimSuffix(strings.TrimPrefix(o.Key, "assets/"), "/")
			var ts int64
			fmt.Sscanf(id[strings.LastIndex(id, "-")+1:], "%d", &ts)
			if ts >= since.Unix()-1 && id > newest {
				newest = id
			}
		}
		if newest != "" {
			return newest
		}
	}
	t.Fatalf("no asset %s*\n%s", prefix, s.Log())
	return ""
}

// WaitLiveAsset finds the live asset of the demo stream started after since.
func WaitLiveAsset(t testing.TB, s *teststack.Stack, since time.Time) string {
	t.Helper()
	return WaitAsset(t, s, "live-demo-", since)
}

// Publishing runs a publisher and says how it ended (its output with a
// failure).
func Publishing(cmd *exec.Cmd) <-chan error {
	done := make(chan error, 1)
	go func() {
		out, err := cmd.CombinedOutput()
		if err != nil {
			err = fmt.Errorf("%v: %s", err, out)
		}
		done <- err
	}()
	return done
}

// TestPublisher is ffmpeg sending seconds of testsrc2 at size with a 1 kHz
// sine in real time, H.264 (a keyframe every 2 s) and AAC, as format to
// output (a URL, after output options such as -listen 1).
func TestPublisher(size string, seconds int, format string, output ...string) *exec.Cmd {
	args := []string{"-hide_banner", "-nostdin", "-v", "error", "-re",
		"-f", "lavfi", "-i", fmt.Sprintf("testsrc2=size=%s:rate=30:duration=%d", size, seconds),
		"-f", "lavfi", "-i", fmt.Sprintf("sine=frequency=1000:sample_rate=48000:duration=%d", seconds),
		"-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", "60", "-pix_fmt", "yuv420p",
		"-c:a", "aac", "-b:a", "96k", "-f", format}
	return exec.Command("ffmpeg", append(args, output...)...)
}

// WaitPlaylist waits (up to 90 s) until the playlist at key satisfies ok,
// given its last media sequence number and whether it has ENDLIST.
func WaitPlaylist(t testing.TB, s *teststack.Stack, key string, ok func(last int, ended bool) bool) []byte {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	var b []byte
	for time.Now().Before(deadline) {
		var err error
		b, err = s.Store.GetBytes(context.Background(), s.Bucket, key)
		if err == nil {
			if last, ended := hls.Last(b); ok(last, ended) {
				return b
			}
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("%s never got there:\n%s\n%s", key, b, s.Log())
	return nil
}
