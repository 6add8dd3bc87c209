// Package e2e runs the whole stack as a user does (`segflow up`, uploads
// into the bucket) and checks what comes out with ffprobe.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/grafov/m3u8"
	"github.com/openfaas/faas-provider/logs"

	"github.com/segflow/segflow/infra/internal/e2ekit"
	"github.com/segflow/segflow/infra/internal/testgw"
	"github.com/segflow/segflow/infra/internal/teststack"
	"github.com/segflow/segflow/shared/asset"
	"github.com/segflow/segflow/shared/events"
	"github.com/segflow/segflow/shared/layout"
	"github.com/segflow/segflow/shared/media"
	"github.com/segflow/segflow/shared/media/mediatest"
	"github.com/segflow/segflow/shared/storage"
	"github.com/segflow/segflow/shared/tracing/otlptest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testgw.Cleanup()
	os.Exit(code)
}

func TestVODEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("transcodes 20 s of 1080p, three times")
	}
	// Tracing on, as an operator turns it on: one OTLP endpoint for the stack.
	col := otlptest.Start(t)
	s := teststack.Up(t, "OTEL_EXPORTER_OTLP_ENDPOINT="+col.URL, "OTEL_BSP_SCHEDULE_DELAY=200")
	ctx := context.Background()
	dir := t.TempDir()
	// 20 s: a 2 s first segment, two of 6 s and a short last one.
	const seconds, fps = 20.0, 30
	src := filepath.Join(dir, "clip.mp4")
	mediatest.Make(t, src, mediatest.Clip{Seconds: seconds, Width: 1920, Height: 1080, FPS: fps, Audio: true})

	// Bad uploads go in beside the good one.
	data, _ := os.ReadFile(src)
	random := make([]byte, 256<<10)
	for i := range random {
		random[i] = byte(i*2654435761>>13 + i)
	}
	bad := map[string][]byte{
		"uploads/empty.mp4":  {},
		"uploads/random.mov": random,
		"uploads/cut.mp4":    data[:len(data)/3],
	}
	// Two callers with no credentials open calls to split whose bodies never
	// come (split takes two at once): the uploads go through all the same.
	var stalled []net.Conn
	for range 2 {
		c, err := net.Dial("tcp", strings.TrimPrefix(s.Env.Gateway, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		io.WriteString(c, "POST /function/split HTTP/1.1\r\nHost: gw\r\nContent-Length: 1000000\r\n\r\n")
		stalled = append(stalled, c)
	}
	start := time.Now()
	s.Upload("uploads/clip.mp4", src, nil)
	for k, b := range bad {
		if err := s.Store.PutBytes(ctx, s.Bucket, k, b, storage.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for k := range bad {
		id := e2ekit.AssetOf(t, s, k)
		st := s.WaitStatus(id, 2*time.Minute, asset.StateFailed)
		if st.Error == "" || st.Stages["split"].Error == "" {
			t.Errorf("%s failed without a reason: %+v", k, st)
		}
		t.Logf("%s: failed in %s: %s", k, time.Since(start).Round(time.Millisecond), st.Error)
	}
	// The bad uploads were judged while both stalled calls were still
	// waiting for their bodies (the gateway has neither answered nor
	// closed them), so those calls held none of split's slots. This is
	// the proof, not a time budget: a loaded machine only makes it slower.
	for i, c := range stalled {
		if err := stillWaiting(c); err != nil {
			t.Errorf("stalled call %d ended before the bad uploads failed (%s after upload): %v", i, time.Since(start).Round(time.Millisecond), err)
		}
	}

	id := e2ekit.AssetOf(t, s, "uploads/clip.mp4")
	s.WaitStatus(id, 5*time.Minute, asset.StateComplete)
	t.Logf("asset %s complete %s after upload", id, time.Since(start).Round(time.Millisecond))

	if dls, err := s.GW.DeadLetters(ctx); err != nil || len(dls) != 0 {
		t.Errorf("dead letters beside stalled callers: %+v %v", dls, err)
	}
	// No retry storm: split ran once per upload.
	if st, err := s.GW.GetFunction(ctx, "split", ""); err != nil || st.InvocationCount > 4 {
		t.Errorf("split invoked %v times for 4 uploads (%v)", st.InvocationCount, err)
	}

	checkAsset(t, s, id, src, seconds, fps, dir)
	t.Run("one trace from upload to renditions", func(t *testing.T) { checkTrace(t, col, id) })
	t.Run("a function's log line leads to its span", func(t *testing.T) { checkLogTrace(t, s, col, id) })
	// Let the captions (aitag, last to finish) land before comparing runs.
	e2ekit.WaitObject(t, s, layout.Asset(id).Tags(-1))
	waitSettled(t, s, "packager", 0)

	t.Run("an anonymous call naming another bucket is refused", func(t *testing.T) {
		const other = "other-bucket"
		if err := s.Store.EnsureBucket(ctx, other); err != nil {
			t.Fatal(err)
		}
		if err := s.Store.PutBytes(ctx, other, "uploads/x.mp4", data, storage.PutOptions{}); err != nil {
			t.Fatal(err)
		}
		e, err := events.New("forged-1", events.TypeObjectCreated, other, "uploads/x.mp4", nil)
		if err != nil {
			t.Fatal(err)
		}
		req, _ := events.NewRequest(ctx, s.Env.Gateway+"/function/split", e)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(string(body), "serves bucket") {
			t.Fatalf("split on %s = %d %s, want 422", other, resp.StatusCode, body)
		}
		objs, err := s.Store.List(ctx, other, layout.AssetsPrefix, storage.ListOptions{})
		if err != nil || len(objs) != 0 {
			t.Fatalf("split wrote %d objects into %s (%v)", len(objs), other, err)
		}
	})

	t.Run("each function holds its own MinIO user's keys only", func(t *testing.T) {
		// What a function that runs hostile input could do with its keys:
		// exactly its grant. The asset above was made under these users.
		secrets := filepath.Join(s.Home, "runtime", "secrets")
		if _, err := os.Stat(filepath.Join(secrets, "s3-access-key")); err == nil {
			t.Fatal("a shared s3-access-key secret exists")
		}
		keysOf := func(fn string) *storage.Client {
			ak, _ := os.ReadFile(filepath.Join(secrets, fn+"-s3-access-key"))
			sk, _ := os.ReadFile(filepath.Join(secrets, fn+"-s3-secret-key"))
			if len(ak) == 0 || string(ak) == s.Env.S3AccessKey || string(sk) == s.Env.S3SecretKey {
				t.Fatalf("%s's keys: %q (root is %q)", fn, ak, s.Env.S3AccessKey)
			}
			c, err := storage.New(storage.Options{Endpoint: s.Env.S3Endpoint, AccessKey: string(ak), SecretKey: string(sk)})
			if err != nil {
				t.Fatal(err)
			}
			return c
		}
		a := layout.Asset(id)
		refused := []struct {
			fn, what string
			do       func(c *storage.Client) error
		}{
			{"split", "overwrite a rendition", func(c *storage.Client) error {
				return c.PutBytes(ctx, s.Bucket, a.Rendition("720p", 0, ".ts"), []byte("x"), storage.PutOptions{})
			}},
			{"split", "write a playlist", func(c *storage.Client) error {
				return c.PutBytes(ctx, s.Bucket, a.Master(), []byte("#EXTM3U"), storage.PutOptions{})
			}},
			{"transcode", "write an upload", func(c *storage.Client) error {
				return c.PutBytes(ctx, s.Bucket, "uploads/planted.mp4", []byte("x"), storage.PutOptions{})
			}},
			{"transcode", "read an upload", func(c *storage.Client) error {
				_, err := c.GetBytes(ctx, s.Bucket, "uploads/clip.mp4")
				return err
			}},
			{"packager", "delete a segment", func(c *storage.Client) error { return c.Remove(ctx, s.Bucket, a.Source(0, ".ts")) }},
			{"watermark", "overwrite the manifest", func(c *storage.Client) error {
				return c.PutBytes(ctx, s.Bucket, a.Manifest(), []byte("{}"), storage.PutOptions{})
			}},
			{"aitag", "list the bucket", func(c *storage.Client) error {
				_, err := c.List(ctx, s.Bucket, "", storage.ListOptions{})
				return err
			}},
			{"thumbnail", "make a bucket", func(c *storage.Client) error { return c.EnsureBucket(ctx, "planted") }},
		}
		for _, r := range refused {
			if err := r.do(keysOf(r.fn)); err == nil || !strings.Contains(err.Error(), "Access Denied") {
				t.Errorf("%s's keys could %s: %v", r.fn, r.what, err)
			}
		}
	})

	t.Run("the console signs part URLs as its own user", func(t *testing.T) {
		call := func(path string, in, out any) {
			t.Helper()
			b, _ := json.Marshal(in)
			req, _ := http.NewRequest(http.MethodPost, s.Env.Gateway+path, bytes.NewReader(b))
			req.Header.Set("Content-Type", "application/json")
			req.SetBasicAuth(s.Env.GatewayUser, s.Env.GatewayPassword)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusOK || json.Unmarshal(body, out) != nil {
				t.Fatalf("%s = %d %s", path, resp.StatusCode, body)
			}
		}
		var plan struct {
			Key      string `json:"key"`
			UploadID string `json:"uploadId"`
		}
		call("/ui/api/uploads", map[string]any{"name": "signed.mp4", "size": 1000}, &plan)
		var signed struct{ URL string }
		call("/ui/api/uploads/sign", map[string]any{"key": plan.Key, "uploadId": plan.UploadID, "part": 1}, &signed)
		u, err := url.Parse(signed.URL)
		if err != nil {
			t.Fatal(err)
		}
		if cred := u.Query().Get("X-Amz-Credential"); !strings.HasPrefix(cred, "segflow-console/") {
			t.Fatalf("part URL signed as %q, want the console's own user", cred)
		}
	})

	t.Run("cross-site writes and anonymous catalog reads are refused", func(t *testing.T) {
		gw := s.Env.Gateway
		do := func(method, path, origin, ctype, body string, auth bool) *http.Response {
			req, _ := http.NewRequest(method, gw+path, strings.NewReader(body))
			if origin != "" {
				req.Header.Set("Origin", origin)
			}
			if ctype != "" {
				req.Header.Set("Content-Type", ctype)
			}
			if auth {
				req.SetBasicAuth(s.Env.GatewayUser, s.Env.GatewayPassword)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			return resp
		}
		// What an auto-submitted form on another site sends with the
		// browser's cached credentials.
		for _, p := range []string{"/system/deadletters", "/ui/api/uploads"} {
			if resp := do("POST", p, "http://evil.example", "text/plain", `{"name":"x.mp4","size":1}`, true); resp.StatusCode != http.StatusForbidden {
				t.Errorf("cross-site POST %s = %d, want 403", p, resp.StatusCode)
			}
		}
		if resp := do("GET", "/api/search?q=segflow", "", "", "", false); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("anonymous catalog search = %d, want 401", resp.StatusCode)
		}
		if resp := do("GET", "/ui/", "", "", "", true); !strings.Contains(resp.Header.Get("Content-Security-Policy"), "frame-ancestors 'none'") {
			t.Errorf("console CSP = %q", resp.Header.Get("Content-Security-Policy"))
		}
	})

	t.Run("same event twice gives identical outputs", func(t *testing.T) {
		s := s.With(t)
		before := e2ekit.Etags(t, s, id)
		tr, _ := s.GW.GetFunction(ctx, "transcode", "")
		tg, _ := s.GW.GetFunction(ctx, "aitag", "")
		rec := map[string]any{"s3": map[string]any{"object": map[string]any{"key": "uploads/clip.mp4"}}}
		e, err := events.New("replayed-by-test", events.TypeObjectCreated, s.Bucket, "uploads/clip.mp4", rec)
		if err != nil {
			t.Fatal(err)
		}
		req, _ := events.NewRequest(ctx, s.Env.Gateway+"/function/split", e)
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("split again: %v %v", err, resp)
		}
		resp.Body.Close()
		segs := len(e2ekit.ReadManifest(t, s, id).Segments)
		waitSettled(t, s, "transcode", tr.InvocationCount+float64(segs))
		waitSettled(t, s, "aitag", tg.InvocationCount+float64(segs))
		waitSettled(t, s, "packager", 0)
		after := e2ekit.Etags(t, s, id)
		for k, v := range before {
			if after[k] != v {
				t.Errorf("%s changed when the event came again", k)
			}
		}
		if len(after) != len(before) {
			t.Errorf("objects %d -> %d", len(before), len(after))
		}
	})

	t.Run("same file uploaded twice at once", func(t *testing.T) {
		s := s.With(t)
		var wg sync.WaitGroup
		for i := 0; i < 2; i++ {
			wg.Add(1)
			go func() { defer wg.Done(); s.Upload("uploads/twice.mp4", src, nil) }()
		}
		wg.Wait()
		id2 := e2ekit.AssetOf(t, s, "uploads/twice.mp4")
		s.WaitStatus(id2, 5*time.Minute, asset.StateComplete)
		// Captions come last (aitag): wait for its merge before comparing.
		e2ekit.WaitObject(t, s, layout.Asset(id2).Tags(-1))
		waitSettled(t, s, "aitag", 0)
		waitSettled(t, s, "packager", 0)
		checkAsset(t, s, id2, src, seconds, fps, t.TempDir())
		// Same content, same outputs: the renditions are byte for byte those
		// of the first asset.
		a, b := e2ekit.Etags(t, s, id), e2ekit.Etags(t, s, id2)
		for k, v := range a {
			if (strings.HasSuffix(k, ".ts") || strings.HasSuffix(k, ".m3u8")) && b[k] != v {
				t.Errorf("%s differs between two uploads of one file", k)
			}
		}
	})
}

// checkAsset verifies what a player gets from the asset's playlists.
func checkAsset(t *testing.T, s *teststack.Stack, id, src string, seconds float64, fps int, dir string) {
	t.Helper()
	ctx := context.Background()
	a := layout.Asset(id)
	get := func(key string) []byte { return e2ekit.Object(t, s, key) }
	master := masterPlaylist(t, s, id)
	if len(master.Variants) != 4 {
		t.Fatalf("master has %d variants, want 4", len(master.Variants))
	}
	var keyTimes []string
	renditions := map[string]string{} // name -> concatenated file
	for _, v := range master.Variants {
		if v.Audio != "aud" || !strings.Contains(v.Codecs, "mp4a.40.2") || v.Resolution == "" || v.AverageBandwidth == 0 || v.Bandwidth < v.AverageBandwidth {
			t.Errorf("variant %+v", v.VariantParams)
		}
		name := strings.TrimSuffix(v.URI, ".m3u8")
		renditions[name] = fetchRendition(t, s, a.Prefix(), v.URI, filepath.Join(dir, name+".ts"), seconds, fps)
	}
	audio := fetchRendition(t, s, a.Prefix(), "audio.m3u8", filepath.Join(dir, "audio.ts"), seconds, fps)
	// Each rendition's I-frame playlist, for scrubbing: MPEG-TS ranges.
	iframes := iframeVariants(t, get(a.Master()))
	if len(iframes) != len(renditions) {
		t.Errorf("I-frame playlists %v for %d renditions", iframes, len(renditions))
	}
	for _, uri := range iframes {
		checkIFrames(t, "http://"+s.Env.S3Endpoint+"/"+s.Bucket+"/"+a.Prefix(), uri, get(a.Prefix()+uri), dir)
	}

	for name, file := range renditions {
		ps := mediatest.Packets(t, file, "v:0")
		if len(ps) != int(seconds)*fps {
			t.Errorf("%s: %d frames, want %d", name, len(ps), int(seconds)*fps)
		}
		var keys []string
		for i, p := range ps {
			if i > 0 && math.Abs(p.PTS-ps[i-1].PTS-1.0/float64(fps)) > 0.0015 {
				t.Errorf("%s: timestamps jump %.4fs at %.3f", name, p.PTS-ps[i-1].PTS, p.PTS)
			}
			if p.Key {
				keys = append(keys, ftoa(p.PTS))
			}
		}
		span := mediatest.Span(ps)
		if math.Abs(span-seconds) > 1.0/float64(fps)+1e-3 {
			t.Errorf("%s lasts %.4fs, source %.1fs", name, span, seconds)
		}
		keyTimes = append(keyTimes, strings.Join(keys, ","))
	}
	for i := 1; i < len(keyTimes); i++ {
		if keyTimes[i] != keyTimes[0] {
			t.Errorf("keyframes differ between renditions:\n%s\n%s", keyTimes[0], keyTimes[i])
		}
	}
	checkAudioTimeline(t, "audio", audio, seconds)
	psnr, err := media.PSNR(ctx, src, renditions["1080p"], 1920, 1080)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: 1080p PSNR %.2f dB", id, psnr)
	if psnr < 38 {
		t.Errorf("1080p PSNR %.2f dB < 38", psnr)
	}
	// The qa stage scored every rung of every segment, and its 1080p
	// PSNR agrees with the one measured here over the whole rendition.
	st := waitQA(t, s, id)
	names := make([]string, 0, len(renditions))
	for name := range renditions {
		names = append(names, name)
	}
	checkQuality(t, st, names, len(e2ekit.ReadManifest(t, s, id).Segments))
	if q := st.Quality["1080p"]; math.Abs(q.PSNR-psnr) > 1 {
		t.Errorf("qa says 1080p PSNR %.2f dB, measured %.2f", q.PSNR, psnr)
	}
	// thumbnail runs at a lower priority and may finish after the asset
	// completes: its storyboard is the last thing it writes.
	waitStatus(t, s, id, "thumbnail done", func(st *asset.Status) bool { return st.Stages["thumbnail"].State == asset.StateDone })
	for _, k := range []string{a.Thumb("poster.jpg"), a.Thumb("sprite.jpg"), a.Thumb("storyboard.vtt"), a.Thumb("00000.jpg")} {
		if _, err := s.Store.Stat(ctx, s.Bucket, k); err != nil {
			t.Errorf("%s: %v", k, err)
		}
	}
	if vtt := string(get(a.Thumb("storyboard.vtt"))); !strings.Contains(vtt, "sprite.jpg#xywh=") || strings.Count(vtt, "-->") != int(seconds/2) {
		t.Errorf("storyboard:\n%s", vtt)
	}
}

// masterPlaylist reads and parses an asset's master playlist, leaving
// out its I-frame variants (iframeVariants lists those).
func masterPlaylist(t *testing.T, s *teststack.Stack, id string) *m3u8.MasterPlaylist {
	t.Helper()
	pl, _, err := m3u8.DecodeFrom(bytes.NewReader(e2ekit.Object(t, s, layout.Asset(id).Master())), true)
	if err != nil {
		t.Fatal(err)
	}
	mp := pl.(*m3u8.MasterPlaylist)
	mp.Variants = slices.DeleteFunc(mp.Variants, func(v *m3u8.Variant) bool { return v.Iframe })
	return mp
}

// fetchRendition reads a media playlist, checks it, decodes each segment
// on its own and returns the segments concatenated for timestamp checks.
func fetchRendition(t *testing.T, s *teststack.Stack, prefix, uri, out string, seconds float64, fps int) string {
	t.Helper()
	ctx := context.Background()
	b, err := s.Store.GetBytes(ctx, s.Bucket, prefix+uri)
	if err != nil {
		t.Fatal(err)
	}
	pl, _, err := m3u8.DecodeFrom(bytes.NewReader(b), true)
	if err != nil {
		t.Fatal(err)
	}
	mp := pl.(*m3u8.MediaPlaylist)
	if !mp.Closed || mp.MediaType != m3u8.VOD {
		t.Errorf("%s is not a closed VOD playlist:\n%s", uri, b)
	}
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	total := 0.0
	for i, seg := range mp.GetAllSegments() {
		total += seg.Duration
		p := filepath.Join(filepath.Dir(out), strings.ReplaceAll(seg.URI, "/", "_"))
		if _, err := s.Store.GetFile(ctx, s.Bucket, prefix+seg.URI, p); err != nil {
			t.Fatal(err)
		}
		if err := mediatest.Decodes(p); err != nil {
			t.Errorf("%s segment %d: %v", uri, i, err)
		}
		seg, _ := os.ReadFile(p)
		f.Write(seg)
	}
	if !strings.HasPrefix(uri, "audio") && math.Abs(total-seconds) > 1.0/float64(fps)+1e-3 {
		t.Errorf("%s: EXTINF total %.4fs, source %.1fs", uri, total, seconds)
	}
	return out
}

// waitSettled waits until fn has been invoked at least min times and its
// count has stopped moving for two seconds.
func waitSettled(t *testing.T, s *teststack.Stack, fn string, min float64) {
	t.Helper()
	e2ekit.WaitSettledOn(t, fn, min, s.GW)
}

// waitQA waits for the qa stage to have scored every segment of asset id
// and returns the status then.
func waitQA(t *testing.T, s *teststack.Stack, id string) *asset.Status {
	t.Helper()
	return waitStatus(t, s, id, "qa scored every segment", func(st *asset.Status) bool { return st.Stages["qa"].State == asset.StateDone })
}

// waitStatus polls asset id's status until ok says it is what the test
// waits for (what), for up to 3 minutes.
func waitStatus(t *testing.T, s *teststack.Stack, id, what string, ok func(*asset.Status) bool) *asset.Status {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for {
		st, err := asset.ReadStatus(context.Background(), s.Store, s.Bucket, id)
		if err == nil && ok(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %s never: %+v, %v\n%s", id, what, st, err, s.Log())
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// checkQuality checks the qa stage's scores: every rung named, over every
// segment, close to its source (the clips are testsrc2 at the ladder's
// rates), no warning at the default floor.
func checkQuality(t *testing.T, st *asset.Status, rungs []string, segs int) {
	t.Helper()
	for _, name := range rungs {
		q, ok := st.Quality[name]
		t.Logf("%s: qa %s SSIM %.4f (worst frame %.4f) PSNR %.2f dB over %d segments", st.ID, name, q.SSIM, q.MinSSIM, q.PSNR, q.Segments)
		if !ok || q.Segments != segs || q.SSIM < 0.95 || q.SSIM > 1 || q.MinSSIM > q.SSIM || q.PSNR < 30 {
			t.Errorf("qa %s: %+v (%d segments)", name, q, segs)
		}
	}
	if len(st.Quality) != len(rungs) || st.QualityWarning != "" {
		t.Errorf("quality %+v for rungs %v, warning %q", st.Quality, rungs, st.QualityWarning)
	}
}

func ftoa(f float64) string {
	return strings.TrimRight(strings.TrimRight(strconv.FormatFloat(f, 'f', 4, 64), "0"), ".")
}

// checkTrace follows the trace of a transcode call on the asset back to
// the upload's event: router -> split -> storage -> router -> transcode
// (watermark is off, so transcode takes source segments), one trace, with
// transcode's S3 writes under its own span.
func checkTrace(t *testing.T, col *otlptest.Collector, id string) {
	prefix := layout.Asset(id).Prefix()
	deadline := time.Now().Add(20 * time.Second)
	for {
		var transcode *otlptest.Span
		for _, sp := range col.Spans() {
			if sp.Service == "transcode" && sp.Name == "transcode" && strings.HasPrefix(sp.Attrs["cloudevents.event_subject"], prefix) {
				transcode = &sp
				break
			}
		}
		var chain []string
		var root otlptest.Span
		writes := 0
		if transcode != nil {
			root = *transcode
			chain = append(chain, root.Service+":"+root.Name)
			for {
				p, ok := col.Parent(root)
				if !ok {
					break
				}
				root = p
				chain = append(chain, p.Service+":"+p.Name)
			}
			for _, sp := range col.Spans() {
				if sp.ParentID == transcode.SpanID && strings.HasPrefix(sp.Name, "s3 PUT /media/"+prefix) {
					writes++
				}
			}
		}
		joined := strings.Join(chain, " <- ")
		ok := root.ParentID == "" && writes > 0 && subsequence(chain, "transcode:transcode", "segflow-up:deliver transcode",
			"segflow-up:route "+layout.TopicSourceSegment, "split:split", "segflow-up:deliver split",
			"segflow-up:route "+layout.TopicUpload)
		if ok {
			t.Logf("trace %s: %s; transcode wrote %d objects under its span", root.TraceID, joined, writes)
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no complete trace after 20 s (%d spans); best chain: %s (root parent %q), transcode writes %d",
				len(col.Spans()), joined, root.ParentID, writes)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// checkLogTrace reads transcode's log lines about the asset (its answer
// to each segment's event, through the gateway, as faas-cli logs shows
// them): each carries trace_id and span_id, and they name a transcode
// span the collector got, in that trace. A shipped line (Fluent Bit,
// infra/k8s/logging.yaml) thereby leads to its trace.
func checkLogTrace(t *testing.T, s *teststack.Stack, col *otlptest.Collector, id string) {
	spans := map[string]otlptest.Span{}
	for _, sp := range col.Spans() {
		spans[sp.SpanID] = sp
	}
	prefix := layout.Asset(id).Prefix()
	lines, linked := 0, 0
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err := s.GW.Logs(ctx, "transcode", 1000, false, func(m logs.Message) {
		var line struct {
			Msg     string `json:"msg"`
			Key     string `json:"key"`
			TraceID string `json:"trace_id"`
			SpanID  string `json:"span_id"`
		}
		if json.Unmarshal([]byte(m.Text), &line) != nil {
			return
		}
		if !strings.HasPrefix(line.Msg, "transcoded segment") || !strings.HasPrefix(line.Key, prefix) {
			return
		}
		lines++
		sp, ok := spans[line.SpanID]
		if !ok || sp.TraceID != line.TraceID || sp.Service != "transcode" || sp.Attrs["cloudevents.event_subject"] != line.Key {
			t.Errorf("line %s: trace_id %q span_id %q name no transcode span of %s the collector got (%+v)", m.Text, line.TraceID, line.SpanID, line.Key, sp)
			return
		}
		linked++
	})
	if err != nil {
		t.Fatal(err)
	}
	if lines == 0 || linked != lines {
		t.Fatalf("%d of %d transcode lines about %s lead to their span", linked, lines, id)
	}
	t.Logf("%d transcode lines, each with its trace and span", lines)
}

// subsequence says whether want appears in have in order, gaps allowed.
func subsequence(have []string, want ...string) bool {
	for _, h := range have {
		if len(want) > 0 && h == want[0] {
			want = want[1:]
		}
	}
	return len(want) == 0
}

// stillWaiting reports an error when the server has answered or closed c:
// a read that times out means the call is still open and unanswered.
func stillWaiting(c net.Conn) error {
	_ = c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	var b [512]byte
	n, err := c.Read(b[:])
	var ne net.Error
	if n == 0 && errors.As(err, &ne) && ne.Timeout() {
		return nil
	}
	return fmt.Errorf("read %q: %v", b[:n], err)
}
