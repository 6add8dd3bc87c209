package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net/url"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/Eyevinn/dash-mpd/mpd"
	"github.com/chromedp/chromedp"

	"github.com/segflow/segflow/infra/internal/e2ekit"
	"github.com/segflow/segflow/infra/internal/teststack"
	"github.com/segflow/segflow/shared/layout"
)

// TestLiveCMAF publishes over RTMP to a stream key packaged cmaf: while
// it runs, the asset has a dynamic MPD whose segments are the HLS
// playlists' fMP4 ones, and dash.js and hls.js in Chromium play it live;
// once it stops, the MPD turns static and ffmpeg plays it and the media
// playlists through without a warning.
func TestLiveCMAF(t *testing.T) {
	if testing.Short() {
		t.Skip("publishes for real time")
	}
	s := teststack.UpWithKeys(t, "cmaf=cmafkey-1234 packaging=cmaf\n")
	publish := s.Env.RTMPURL[:strings.LastIndex(s.Env.RTMPURL, "/")+1] + "cmafkey-1234"
	since := time.Now()
	done := e2ekit.Publishing(e2ekit.TestPublisher("640x360", 30, "flv", publish))
	id := e2ekit.WaitAsset(t, s, "live-cmaf-", since)
	a := layout.Asset(id)
	public := "http://" + s.Env.S3Endpoint + "/" + s.Bucket + "/" + a.Prefix()

	// While it publishes: a dynamic MPD over fMP4 segments that exist.
	body := waitContent(t, s, a.DASH(), 60*time.Second, func(b []byte) bool {
		return bytes.Contains(b, []byte(`type="dynamic"`)) && bytes.Count(b, []byte("<S "))+bytes.Count(b, []byte(` r="`)) >= 4
	})
	m, err := mpd.MPDFromBytes(body)
	if err != nil {
		t.Fatalf("MPD does not parse: %v\n%s", err, body)
	}
	if m.AvailabilityStartTime == "" || m.MinimumUpdatePeriod == nil {
		t.Errorf("dynamic MPD without availabilityStartTime or minimumUpdatePeriod:\n%s", body)
	}
	for _, as := range m.Periods[0].AdaptationSets {
		for _, r := range as.Representations {
			st := r.SegmentTemplate
			first := strings.Replace(st.Media, "$Number%05d$", fmt.Sprintf("%05d", *st.StartNumber), 1)
			for _, key := range []string{a.Prefix() + st.Initialization, a.Prefix() + first} {
				if _, err := s.Store.Stat(context.Background(), s.Bucket, key); err != nil {
					t.Errorf("%s: the MPD names %s: %v", r.Id, key, err)
				}
			}
		}
	}

	page := playersPage(t)
	b := newBrowser(t)
	for _, p := range []struct{ player, src string }{{"dash", public + "manifest.mpd"}, {"hls", public + "master.m3u8"}} {
		t.Run(p.player, func(t *testing.T) {
			listed := lastSegment(t, e2ekit.Object(t, s, a.DASH()))
			b.do(t, 20*time.Second, chromedp.Navigate(page+"/?p="+p.player+"&src="+url.QueryEscape(p.src)))
			waitPage(t, b, 30*time.Second, "live playback", `document.getElementById("v").currentTime > 0`)
			at := eval[float64](t, b, `document.getElementById("v").currentTime`)
			waitPage(t, b, 30*time.Second, "live playback going on", fmt.Sprintf(`document.getElementById("v").currentTime > %f`, at+3))
			if errs := eval[[]string](t, b, `errors`); len(errs) > 0 {
				t.Errorf("%s: %v", p.player, errs)
			}
			if p.player == "dash" {
				// It follows the MPD as it grows: it fetches a segment
				// two past the last one the MPD named when it started.
				waitPage(t, b, 30*time.Second, "dash.js following the live edge", fmt.Sprintf(
					`log.some(e => e.startsWith("360p/") && parseInt(e.slice(5), 10) >= %d)`, listed+2))
			}
		})
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	// Once it stops: static, and everything plays without a warning.
	body = waitContent(t, s, a.DASH(), 90*time.Second, func(b []byte) bool { return bytes.Contains(b, []byte(`type="static"`)) })
	playlists := map[string][]byte{"master.m3u8": e2ekit.Object(t, s, a.Master())}
	for _, name := range []string{"360p", "audio"} {
		playlists[name+".m3u8"] = e2ekit.WaitPlaylist(t, s, a.Playlist(name), func(last int, ended bool) bool { return ended })
	}
	parsersAccept(t, playlists)
	if _, err := mpd.MPDFromBytes(body); err != nil {
		t.Fatalf("static MPD does not parse: %v\n%s", err, body)
	}
	// (The media playlists, not the master: ffmpeg warns of any
	// SUBTITLES group, and aitag may have captioned the tone.)
	for _, u := range []string{public + "360p.m3u8", public + "audio.m3u8", public + "manifest.mpd"} {
		if out, err := exec.Command("ffmpeg", "-hide_banner", "-nostdin", "-v", "warning", "-i", u, "-map", "0", "-f", "null", "-").CombinedOutput(); err != nil || len(out) > 0 {
			t.Errorf("ffmpeg playing %s: %v\n%s", u, err, out)
		}
	}
}

// waitContent reads key until ok says it is there.
func waitContent(t testing.TB, s *teststack.Stack, key string, within time.Duration, ok func([]byte) bool) []byte {
	t.Helper()
	var b []byte
	for deadline := time.Now().Add(within); time.Now().Before(deadline); time.Sleep(250 * time.Millisecond) {
		var err error
		if b, err = s.Store.GetBytes(context.Background(), s.Bucket, key); err == nil && ok(b) {
			return b
		}
	}
	t.Fatalf("%s never got there:\n%s\n%s", key, b, s.Log())
	return nil
}

// lastSegment is the number of the last video segment an MPD names.
func lastSegment(t testing.TB, body []byte) int {
	t.Helper()
	m, err := mpd.MPDFromBytes(body)
	if err != nil {
		t.Fatalf("MPD does not parse: %v\n%s", err, body)
	}
	st := m.Periods[0].AdaptationSets[0].Representations[0].SegmentTemplate
	n := int(*st.StartNumber) - 1
	for _, e := range st.SegmentTimeline.S {
		n += e.R + 1
	}
	return n
}
