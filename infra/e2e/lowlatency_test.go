package e2e

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/segflow/segflow/infra/internal/e2ekit"
	"github.com/segflow/segflow/infra/internal/testgw"
	"github.com/segflow/segflow/infra/internal/teststack"
	"github.com/segflow/segflow/shared/asset"
	"github.com/segflow/segflow/shared/layout"
)

// clockBits is how many bits of the frame number the publisher burns in.
const clockBits = 16

// clockFilter draws a frame's number in the top-left corner of testsrc2 as
// clockBits blocks, white for a one, least significant first: a clock the
// player's picture carries, read back from the frame the browser shows.
func clockFilter(size string, fps int) string {
	f := fmt.Sprintf("testsrc2=size=%s:rate=%d,drawbox=x=0:y=0:w=%d:h=40:color=black:t=fill", size, fps, clockBits*40)
	for k := range clockBits {
		f += fmt.Sprintf(",drawbox=x=%d:y=4:w=32:h=32:color=white:t=fill:enable='mod(floor(n/%d),2)'", k*40+4, 1<<k)
	}
	return f
}

// publishClock publishes the clock at 720p30 in real time (ffmpeg -re,
// x264 for latency, a keyframe every 2 s) to the demo stream for seconds,
// and returns when the relay received its first frame (the live asset's
// creation): frame n was sent at that time plus n/30, give or take the
// publisher's encode of one frame on the same machine.
func publishClock(t testing.TB, s *teststack.Stack, seconds int) (first time.Time, done <-chan error) {
	t.Helper()
	ch := make(chan error, 1)
	cmd := exec.Command("ffmpeg", "-hide_banner", "-nostdin", "-v", "error", "-re",
		"-f", "lavfi", "-i", clockFilter("1280x720", 30)+fmt.Sprintf(",trim=duration=%d", seconds),
		"-f", "lavfi", "-i", fmt.Sprintf("sine=frequency=1000:sample_rate=48000:duration=%d", seconds),
		"-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", "60", "-b:v", "3M", "-maxrate", "3M", "-bufsize", "3M",
		"-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "128k", "-f", "flv", s.Env.RTMPURL)
	since := time.Now()
	go func() {
		out, err := cmd.CombinedOutput()
		if err != nil {
			err = fmt.Errorf("publisher: %v: %s", err, out)
		}
		ch <- err
	}()
	m, err := asset.ReadManifest(context.Background(), s.Store, s.Bucket, e2ekit.WaitLiveAsset(t, s, since))
	if err != nil {
		t.Fatal(err)
	}
	return m.Created, ch
}

// playerPage serves a page that plays ?src= with hls.js (the console's
// copy), low-latency mode on when ?ll=1, and reads the burnt-in clock off
// the frame on screen: window.clock() is [frame number, Date.now()].
func playerPage(t testing.TB) string {
	hlsJS, err := os.ReadFile(filepath.Join(testgw.RepoRoot(), "infra", "console", "web", "static", "vendor", "hls.min.js"))
	if err != nil {
		t.Fatal(err)
	}
	page := fmt.Sprintf(`<!doctype html><video id=v muted autoplay playsinline></video><canvas id=c width=%d height=40></canvas>
<script src=hls.min.js></script><script>
const q = new URLSearchParams(location.search);
const v = document.getElementById("v"), c = document.getElementById("c").getContext("2d", {willReadFrequently: true});
// Low-latency mode as an LL player runs it: parts, blocking reloads, and
// catching up to the target latency by playing up to 1.5x when behind.
// start=0: from the start, as a file still being transcoded (EVENT
// playlists, which hls.js would otherwise start near their end) plays.
window.hls = new Hls(Object.assign(q.get("ll") === "1" ? {lowLatencyMode: true, maxLiveSyncPlaybackRate: 1.5} : {},
  q.has("start") ? {startPosition: Number(q.get("start"))} : {}));
hls.loadSource(q.get("src"));
hls.attachMedia(v);
v.play();
window.clock = () => {
  c.drawImage(v, 0, 0, %d, 40, 0, 0, %d, 40);
  const px = c.getImageData(0, 0, %d, 40).data;
  let n = 0;
  for (let k = 0; k < %d; k++) {
    const i = (20 * %d + k * 40 + 20) * 4;
    if (px[i] + px[i+1] + px[i+2] > 3 * 128) n += 1 << k;
  }
  return [n, Date.now()];
};
</script>`, clockBits*40, clockBits*40, clockBits*40, clockBits*40, clockBits, clockBits*40)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/":
			w.Header().Set("Content-Type", "text/html")
			w.Write([]byte(page))
		case "/favicon.ico":
			w.WriteHeader(http.StatusNoContent)
		case "/hls.min.js":
			w.Header().Set("Content-Type", "text/javascript")
			w.Write(hlsJS)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// glassToGlass plays src in the browser until it shows frames, then reads
// the clock off the picture samples times, 200 ms apart: each sample's
// latency is its wall time minus when its frame was sent (first + n/30).
func glassToGlass(t testing.TB, b *browser, page, src string, lowLatency bool, first time.Time, samples int) []time.Duration {
	t.Helper()
	ll := "0"
	if lowLatency {
		ll = "1"
	}
	// The player starts once the stream is on: hls.js gives up on a
	// playlist that is not there yet.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		resp, err := http.Get(src)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not there after 30s (%v)", src, err)
		}
	}
	b.do(t, 20*time.Second, chromedp.Navigate(page+"/?ll="+ll+"&src="+url.QueryEscape(src)))
	deadline := time.Now().Add(60 * time.Second)
	for !eval[bool](t, b, `document.getElementById("v").currentTime > 0.5`) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: no playback after 60s; page errors %v", src, b.Errors())
		}
		time.Sleep(200 * time.Millisecond)
	}
	// Latency once playing: the join (hls.js starts at a part that begins
	// with a keyframe, then catches up) is left a few seconds to settle.
	time.Sleep(4 * time.Second)
	return readClock(t, b, first, 0, samples)
}

// readClock reads the clock off the picture (window.clock) samples times,
// 200 ms apart: each sample's latency is its wall time minus when its
// frame was sent (first + n/30). A reading earlier than -early is a frame
// read mid-repaint or a garbled block, as is one out of the clock's
// course: skipped, not counted.
func readClock(t testing.TB, b *browser, first time.Time, early time.Duration, samples int) []time.Duration {
	t.Helper()
	var lags []time.Duration
	last := -1
	for len(lags) < samples {
		s := eval[[]float64](t, b, `window.clock()`)
		n, now := int(s[0]), time.UnixMilli(int64(s[1]))
		sent := first.Add(time.Duration(n) * time.Second / 30)
		if n < last || now.Sub(sent) < -early || now.Sub(sent) > 30*time.Second {
			time.Sleep(200 * time.Millisecond)
			continue
		}
		last = n
		lags = append(lags, now.Sub(sent))
		time.Sleep(200 * time.Millisecond)
	}
	return lags
}

// lagPercentile is the p-th percentile of lags, in seconds.
func lagPercentile(lags []time.Duration, p float64) float64 {
	s := make([]float64, len(lags))
	for i, d := range lags {
		s[i] = d.Seconds()
	}
	slices.Sort(s)
	return percentile(s, p)
}

// TestLowLatencyInBrowser plays a live stream's LL-HLS rendition (the
// relay's, through the gateway) in headless chromium with hls.js in its
// low-latency mode: hls.js loads it as LL-HLS (parts in the level it
// plays) and the burnt-in clock read off the picture runs on.
func TestLowLatencyInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("publishes for real time and runs a browser")
	}
	s := teststack.Up(t)
	b := newBrowser(t)
	page := playerPage(t)
	first, done := publishClock(t, s, 30)
	lags := glassToGlass(t, b, page, s.Env.Gateway+"/live/demo/index.m3u8", true, first, 20)
	parts := eval[int](t, b, `(hls.levels[hls.currentLevel]?.details?.partList || []).length`)
	if parts == 0 {
		t.Fatalf("hls.js plays the rendition without parts (not as LL-HLS); page errors %v", b.Errors())
	}
	if !strings.Contains(eval[string](t, b, `hls.levels[hls.currentLevel].url[0] || hls.levels[hls.currentLevel].url`), "/live/demo/") {
		t.Fatalf("hls.js plays another level")
	}
	t.Logf("LL-HLS in hls.js: %d parts listed, glass to glass p50 %.2fs, p95 %.2fs",
		parts, lagPercentile(lags, 0.5), lagPercentile(lags, 0.95))
	// While it publishes, nothing fails (once it ends, a blocked reload
	// gets the 404 of a stream that is not live).
	if errs := b.Errors(); len(errs) > 0 {
		t.Fatalf("page errors: %v", errs)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// BenchmarkLowLatencyGlassToGlass measures, in one run and one browser,
// how far behind the publisher hls.js shows a 720p30 live stream: on the
// relay's LL-HLS source rendition (low-latency mode), and on the channel's
// transcoded 720p rung (2 s segments, hls.js's defaults), the baseline.
// Latency is read off the picture: the frame number the publisher burnt
// in, against when it sent that frame.
func BenchmarkLowLatencyGlassToGlass(b *testing.B) {
	s := teststack.Up(b)
	br := newBrowser(b)
	page := playerPage(b)
	for i := 0; i < b.N; i++ {
		first, done := publishClock(b, s, 70)
		ll := glassToGlass(b, br, page, s.Env.Gateway+"/live/demo/index.m3u8", true, first, 50)
		rungs := glassToGlass(b, br, page, "http://"+s.Env.S3Endpoint+"/"+s.Bucket+"/"+layout.Channel("demo").Playlist("720p"), false, first, 50)
		for _, m := range []struct {
			name string
			lags []time.Duration
		}{{"ll", ll}, {"rung", rungs}} {
			b.ReportMetric(lagPercentile(m.lags, 0.5), m.name+"-p50-s")
			b.ReportMetric(lagPercentile(m.lags, 0.95), m.name+"-p95-s")
		}
		if err := <-done; err != nil {
			b.Fatal(err)
		}
		// The next run's publish must not join this one's channel.
		time.Sleep(25 * time.Second)
	}
}
