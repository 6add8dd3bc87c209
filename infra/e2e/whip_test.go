package e2e

import (
	"fmt"
	"math"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/segflow/segflow/infra/internal/e2ekit"
	"github.com/segflow/segflow/infra/internal/teststack"
	"github.com/segflow/segflow/shared/layout"
)

// TestWHIPFromConsole goes live from the console's Go live page in
// headless chromium with its fake camera and microphone: a wrong key is
// refused on the page, the right one makes a live asset whose every
// rendition grows and ends when the page stops. Chromium sends H.264 with
// a keyframe only when asked: 2 s segments show the relay's requests work
// on a real encoder.
func TestWHIPFromConsole(t *testing.T) {
	if testing.Short() {
		t.Skip("publishes for real time")
	}
	s := teststack.Up(t)
	if s.Env.WHIPURL == "" {
		t.Fatal("segflow up wrote no SEGFLOW_WHIP_URL")
	}
	streamKey := s.Env.RTMPURL[strings.LastIndex(s.Env.RTMPURL, "/")+1:]
	u, _ := url.Parse(s.Env.Console + "golive.html")
	u.User = url.UserPassword(s.Env.GatewayUser, s.Env.GatewayPassword)
	b := newBrowser(t, chromedp.Flag("use-fake-device-for-media-stream", true), chromedp.Flag("use-fake-ui-for-media-stream", true))
	b.do(t, 30*time.Second, chromedp.Navigate(u.String()), chromedp.WaitVisible(chromedp.CSS("#start")))
	state := func(want string, within time.Duration) {
		t.Helper()
		for deadline := time.Now().Add(within); eval[string](t, b, `segflowLive.state`) != want; time.Sleep(200 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("page state %q, want %q: %s; errors %v\n%s", eval[string](t, b, `segflowLive.state`), want,
					eval[string](t, b, `document.querySelector("#live-error").textContent`), b.Errors(), s.Log())
			}
		}
	}

	b.do(t, 10*time.Second, chromedp.SetValue(chromedp.CSS("#stream-key"), "not-the-key"), chromedp.Click(chromedp.CSS("#start")))
	state("failed", 20*time.Second)
	if msg := eval[string](t, b, `document.querySelector("#live-error").textContent`); !strings.Contains(msg, "401") {
		t.Errorf("wrong key shows %q", msg)
	}

	since := time.Now()
	b.do(t, 10*time.Second, chromedp.SetValue(chromedp.CSS("#stream-key"), streamKey), chromedp.Click(chromedp.CSS("#start")))
	state("live", 30*time.Second)
	id := e2ekit.WaitLiveAsset(t, s, since)
	m := e2ekit.ReadManifest(t, s, id)
	a := layout.Asset(id)
	for _, r := range m.Ladder {
		e2ekit.WaitPlaylist(t, s, a.Playlist(r.Name), func(last int, ended bool) bool { return last >= 2 })
	}
	if m.Width != 1280 || m.Height != 720 {
		t.Errorf("asset is %dx%d, the page asked the camera for 1280x720 and keeps the size", m.Width, m.Height)
	}
	if codec := eval[string](t, b, `segflowLive.codec`); codec != "video/H264" {
		t.Errorf("the page sends %q, want video/H264 (passed through)", codec)
	}
	b.do(t, 10*time.Second, chromedp.Click(chromedp.CSS("#stop")))
	state("off", 10*time.Second)
	names := []string{"audio"}
	for _, r := range m.Ladder {
		names = append(names, r.Name)
	}
	for _, name := range names {
		e2ekit.WaitPlaylist(t, s, a.Playlist(name), func(last int, ended bool) bool { return ended })
	}
	m = e2ekit.ReadManifest(t, s, id)
	if !m.Ended || !m.Audio || len(m.Segments) < 4 {
		t.Fatalf("manifest: ended %v audio %v %d segments", m.Ended, m.Audio, len(m.Segments))
	}
	var durs []float64
	for i, seg := range m.Segments[:len(m.Segments)-1] {
		durs = append(durs, math.Round(seg.Duration*1000)/1000)
		if seg.Duration < 1.95 || seg.Duration > 3 {
			t.Errorf("segment %d lasts %.3fs: keyframes not where the relay asked (2 s)", i, seg.Duration)
		}
	}
	t.Logf("asset %s from chromium over WHIP: %dx%d, segments %v", id, m.Width, m.Height, durs)
	for _, e := range b.Errors() {
		if !strings.Contains(e, "status of 401") { // the wrong key's, above
			t.Errorf("page error: %s", e)
		}
	}
}

// TestWHEPInConsole watches a live RTMP stream in the console over WebRTC
// (WHEP) in headless chromium: the asset page plays it with the WebRTC
// switch on, and the clock the publisher burnt into the picture, read off
// the frames on screen, runs a fraction of a second behind the publisher
// (logged: glass to glass p50 and p95; scripts/bench live reports them).
func TestWHEPInConsole(t *testing.T) {
	if testing.Short() {
		t.Skip("publishes for real time and runs a browser")
	}
	s := teststack.Up(t)
	since := time.Now()
	first, done := publishClock(t, s, 40)
	id := e2ekit.WaitLiveAsset(t, s, since)
	b := newBrowser(t)
	// H.264 as published, then (#codec=vp8: the page offers VP8 alone, as
	// a browser without H.264) the relay's VP8 encode of it.
	for _, codec := range []string{"h264", "vp8"} {
		lags := whepGlassToGlass(t, b, s, id, codec, first, 25)
		if !eval[bool](t, b, `!!segflow.whep && document.querySelector("#whep").checked && !segflow.hls`) {
			t.Fatal("the console plays the live stream otherwise than over WebRTC")
		}
		got := eval[string](t, b, `(async () => {
  for (const r of (await segflow.whep.pc.getStats()).values()) if (r.type === "codec" && r.mimeType.startsWith("video/")) return r.mimeType.toLowerCase();
  return "";
})()`)
		if got != "video/"+codec {
			t.Errorf("the page asked for %s and plays %q", codec, got)
		}
		// What the browser did with the frames: a starved encoder shows
		// as few frames decoded and a jitter buffer that grows.
		t.Logf("WHEP %s in chromium: %s", codec, eval[string](t, b, `(async () => {
  for (const r of (await segflow.whep.pc.getStats()).values()) if (r.type === "inbound-rtp" && r.kind === "video")
    return r.framesDecoded + " frames decoded, " + r.framesDropped + " dropped, jitter buffer " + (r.jitterBufferDelay / r.jitterBufferEmittedCount).toFixed(3) + " s, " + r.packetsLost + " packets lost";
  return "";
})()`))
		t.Logf("WHEP %s in chromium: glass to glass p50 %.3fs, p95 %.3fs over %d samples", codec, lagPercentile(lags, 0.5), lagPercentile(lags, 0.95), len(lags))
	}
	// The switch goes to HLS.
	b.do(t, 10*time.Second, chromedp.Click(chromedp.CSS("#whep")))
	for deadline := time.Now().Add(60 * time.Second); !eval[bool](t, b, `!!segflow.hls && !segflow.whep && segflow.video.currentTime > 0.5`); time.Sleep(250 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no HLS playback after switching WebRTC off; errors %v", b.Errors())
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for _, e := range b.Errors() {
		// A live publish has no status.json nor poster while it runs:
		// the page's polls of them are answered 404.
		if !strings.Contains(e, "/ui/api/status/") && !strings.Contains(e, "poster.jpg") {
			t.Errorf("page error: %s", e)
		}
	}
}

// whepGlassToGlass opens live asset id in the console (its WebRTC player
// offering codec alone, "h264" or "vp8"), waits for WebRTC
// playback and reads the burnt-in clock (clockFilter) off the picture
// samples times, 200 ms apart.
func whepGlassToGlass(t testing.TB, b *browser, s *teststack.Stack, id, codec string, first time.Time, samples int) []time.Duration {
	t.Helper()
	u, _ := url.Parse(s.Env.Console + "#asset=" + id + "&codec=" + codec)
	u.User = url.UserPassword(s.Env.GatewayUser, s.Env.GatewayPassword)
	// A new page each time: the codec is read when the page loads.
	b.do(t, 30*time.Second, chromedp.Navigate("about:blank"), chromedp.Navigate(u.String()), chromedp.WaitVisible(chromedp.CSS("#player")))
	for deadline := time.Now().Add(30 * time.Second); !eval[bool](t, b, `!!segflow.whep && segflow.video.currentTime > 0.5`); time.Sleep(200 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no WebRTC playback in the console after 30s: %s; errors %v\n%s",
				eval[string](t, b, `document.querySelector("#asset-error").textContent`), b.Errors(), s.Log())
		}
	}
	eval[bool](t, b, fmt.Sprintf(`(() => {
  const c = document.createElement("canvas"); c.width = %[1]d; c.height = 40;
  const x = c.getContext("2d", {willReadFrequently: true});
  window.clock = () => {
    x.drawImage(segflow.video, 0, 0, %[1]d, 40, 0, 0, %[1]d, 40);
    const px = x.getImageData(0, 0, %[1]d, 40).data;
    let n = 0;
    for (let k = 0; k < %[2]d; k++) {
      const i = (20 * %[1]d + k * 40 + 20) * 4;
      if (px[i] + px[i+1] + px[i+2] > 3 * 128) n += 1 << k;
    }
    return [n, Date.now()];
  };
  return true;
})()`, clockBits*40, clockBits))
	time.Sleep(2 * time.Second)
	// first is the relay's first-frame arrival; WebRTC shows a frame
	// within a second of it, and a reading up to a second early is the
	// publisher's encode ahead of that arrival.
	return readClock(t, b, first, time.Second, samples)
}
