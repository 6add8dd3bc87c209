package e2e

import (
	"math"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

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
	id := waitLiveAsset(t, s, since)
	m := readManifest(t, s, id)
	a := layout.Asset(id)
	for _, r := range m.Ladder {
		waitPlaylist(t, s, a.Playlist(r.Name), func(last int, ended bool) bool { return last >= 2 })
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
		waitPlaylist(t, s, a.Playlist(name), func(last int, ended bool) bool { return ended })
	}
	m = readManifest(t, s, id)
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
