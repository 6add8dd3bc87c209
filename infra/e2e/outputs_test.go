package e2e

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/Eyevinn/dash-mpd/mpd"
	"github.com/chromedp/chromedp"
	"github.com/grafov/m3u8"

	"github.com/segflow/segflow/infra/internal/e2ekit"
	"github.com/segflow/segflow/infra/internal/testgw"
	"github.com/segflow/segflow/infra/internal/teststack"
	"github.com/segflow/segflow/shared/asset"
	"github.com/segflow/segflow/shared/layout"
	"github.com/segflow/segflow/shared/media/mediatest"
)

// TestCMAFOutputs uploads a clip asking for CMAF packaging and reads the
// asset as the players that will fetch it: every rendition, audio too, is
// fMP4 with an init segment; the MPD names the very files the HLS
// playlists list, at their own times; parsers no one here wrote accept
// every playlist; ffmpeg plays the master and the MPD without a warning;
// every I-frame playlist entry is a keyframe on its own; and in headless
// Chromium hls.js plays the master and dash.js the MPD, each switching
// level on request and seeking.
func TestCMAFOutputs(t *testing.T) {
	if testing.Short() {
		t.Skip("encodes and plays in a browser")
	}
	s := teststack.Up(t)
	dir := t.TempDir()
	const seconds, fps = 12.0, 30
	src := filepath.Join(dir, "clip.mp4")
	mediatest.Make(t, src, mediatest.Clip{Seconds: seconds, Width: 1280, Height: 720, FPS: fps, Audio: true})
	s.Upload("uploads/cmaf.mp4", src, map[string]string{"Segflow-Packaging": "cmaf"})
	id := e2ekit.AssetOf(t, s, "uploads/cmaf.mp4")
	s.WaitStatus(id, 3*time.Minute, asset.StateComplete)
	a := layout.Asset(id)
	// qa decodes fMP4 rungs behind their init segments.
	checkQuality(t, waitQA(t, s, id), []string{"720p", "480p", "360p"}, len(e2ekit.ReadManifest(t, s, id).Segments))
	get := func(key string) []byte { return e2ekit.Object(t, s, key) }
	base := "http://" + s.Env.S3Endpoint + "/" + s.Bucket + "/" + a.Prefix()

	// HLS: every playlist fMP4, each media playlist ended.
	master := masterPlaylist(t, s, id)
	playlists := map[string][]byte{"master.m3u8": get(a.Master())}
	media := map[string]*m3u8.MediaPlaylist{}
	var uris []string
	for _, v := range master.Variants {
		uris = append(uris, v.URI)
		for _, alt := range v.Alternatives {
			if alt.URI != "" && !strings.Contains(strings.Join(uris, " "), alt.URI) {
				uris = append(uris, alt.URI)
			}
		}
	}
	if len(master.Variants) != 3 || len(uris) != 4 {
		t.Fatalf("master lists %v, want 3 video renditions and the audio:\n%s", uris, playlists["master.m3u8"])
	}
	for _, uri := range uris {
		playlists[uri] = get(a.Prefix() + uri)
		pl, _, err := m3u8.DecodeFrom(bytes.NewReader(playlists[uri]), true)
		if err != nil {
			t.Fatal(err)
		}
		mp := pl.(*m3u8.MediaPlaylist)
		if mp.Map == nil || !mp.Closed {
			t.Errorf("%s: not an ended fMP4 playlist:\n%s", uri, playlists[uri])
		}
		media[strings.TrimSuffix(uri, ".m3u8")] = mp
	}
	iframeURIs := iframeVariants(t, playlists["master.m3u8"])
	if len(iframeURIs) != 3 {
		t.Errorf("master lists I-frame playlists %v, want one per video rendition", iframeURIs)
	}
	for _, uri := range iframeURIs {
		playlists[uri] = get(a.Prefix() + uri)
		checkIFrames(t, base, uri, playlists[uri], dir)
	}
	parsersAccept(t, playlists)

	// DASH: one manifest over the same files.
	body := get(a.DASH())
	m, err := mpd.MPDFromBytes(body)
	if err != nil {
		t.Fatalf("MPD does not parse: %v\n%s", err, body)
	}
	reps := 0
	for _, as := range m.Periods[0].AdaptationSets {
		for _, r := range as.Representations {
			reps++
			mp := media[r.Id]
			if mp == nil {
				t.Errorf("MPD representation %s is no HLS rendition", r.Id)
				continue
			}
			st := r.SegmentTemplate
			if st == nil || st.SegmentTimeline == nil || st.Initialization != mp.Map.URI {
				t.Errorf("%s: template %+v, HLS map %s", r.Id, st, mp.Map.URI)
				continue
			}
			var names []string
			n := int(*st.StartNumber)
			for _, e := range st.SegmentTimeline.S {
				for range e.R + 1 {
					names = append(names, strings.Replace(st.Media, "$Number%05d$", fmt.Sprintf("%05d", n), 1))
					n++
				}
			}
			var want []string
			for _, seg := range mp.GetAllSegments() {
				want = append(want, seg.URI)
			}
			if strings.Join(names, " ") != strings.Join(want, " ") {
				t.Errorf("%s: MPD segments %v, HLS %v", r.Id, names, want)
			}
		}
	}
	if reps != len(uris) {
		t.Errorf("MPD has %d representations, HLS %d renditions:\n%s", reps, len(uris), body)
	}

	// ffmpeg's HLS and DASH readers play it all, every stream, without a
	// warning.
	for _, u := range []string{base + "master.m3u8", base + "manifest.mpd"} {
		if out, err := exec.Command("ffmpeg", "-hide_banner", "-nostdin", "-v", "warning", "-i", u, "-map", "0", "-f", "null", "-").CombinedOutput(); err != nil || len(out) > 0 {
			t.Errorf("ffmpeg playing %s: %v\n%s", u, err, out)
		}
	}

	// Browsers: hls.js and dash.js.
	page := playersPage(t)
	b := newBrowser(t)
	for _, p := range []struct{ player, src string }{{"hls", base + "master.m3u8"}, {"dash", base + "manifest.mpd"}} {
		t.Run(p.player, func(t *testing.T) {
			b.do(t, 20*time.Second, chromedp.Navigate(page+"/?p="+p.player+"&src="+url.QueryEscape(p.src)))
			waitPage(t, b, 60*time.Second, "playback", `document.getElementById("v").currentTime > 1`)
			if h := eval[[]float64](t, b, `heights()`); len(h) != 3 {
				t.Fatalf("player sees levels of heights %v, want 3", h)
			}
			// Switch to the smallest, then to the largest: the picture
			// follows.
			for _, h := range []int{360, 720} {
				eval[bool](t, b, fmt.Sprintf(`pick(%d)`, h))
				waitPage(t, b, 30*time.Second, fmt.Sprintf("the %dp level", h), fmt.Sprintf(`document.getElementById("v").videoHeight === %d`, h))
			}
			eval[bool](t, b, `(document.getElementById("v").currentTime = 8, true)`)
			waitPage(t, b, 30*time.Second, "playback after seeking to 8 s", `document.getElementById("v").currentTime > 9.5`)
			if errs := eval[[]string](t, b, `errors`); len(errs) > 0 {
				t.Errorf("%s: %v", p.player, errs)
			}
		})
	}
	if errs := b.Errors(); len(errs) > 0 {
		t.Errorf("page errors: %v", errs)
	}
}

// waitPage evaluates js every 200 ms until it is true.
func waitPage(t *testing.T, b *browser, within time.Duration, what, js string) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !eval[bool](t, b, js) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after %s; player errors %v; page errors %v; video %s", what, within, eval[[]string](t, b, `errors`), b.Errors(), eval[string](t, b, `videoState()`))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// playersPage serves a page that plays ?src= with ?p=hls (the console's
// hls.js) or ?p=dash (dash.js from npm), and gives the test the same
// handles on both: heights() of the video levels, pick(height) to hold
// one, and errors (the player's fatal ones).
func playersPage(t testing.TB) string {
	hlsJS, err := os.ReadFile(filepath.Join(testgw.RepoRoot(), "infra", "console", "web", "static", "vendor", "hls.min.js"))
	if err != nil {
		t.Fatal(err)
	}
	dashJS, err := os.ReadFile(filepath.Join(nodeModules(t), "dashjs", "dist", "modern", "umd", "dash.all.min.js"))
	if err != nil {
		t.Fatal(err)
	}
	const page = `<!doctype html><video id=v muted autoplay playsinline></video>
<script src=hls.min.js></script><script src=dash.all.min.js></script><script>
const q = new URLSearchParams(location.search);
const v = document.getElementById("v");
const license = q.get("license");
window.errors = [];
window.videoState = () => JSON.stringify({t: v.currentTime, readyState: v.readyState, paused: v.paused, log: window.log,
  buffered: Array.from({length: v.buffered.length}, (_, i) => [v.buffered.start(i), v.buffered.end(i)])});
if (q.get("p") === "dash") {
  const p = dashjs.MediaPlayer().create();
  p.on(dashjs.MediaPlayer.events.ERROR, e => errors.push(JSON.stringify(e.error || e)));
  if (license) p.setProtectionData({"org.w3.clearkey": {serverURL: license}});
  window.log = [];
  p.on(dashjs.MediaPlayer.events.MANIFEST_LOADED, () => log.push("mpd@" + v.currentTime.toFixed(2)));
  p.on(dashjs.MediaPlayer.events.FRAGMENT_LOADING_COMPLETED, e => log.push(e.request.url.split("/").slice(-2).join("/")));
  p.initialize(v, q.get("src"), true);
  window.heights = () => p.getRepresentationsByType("video").map(r => r.height);
  window.textLangs = () => p.getTracksFor("text").map(t => t.lang);
  window.pick = h => {
    p.updateSettings({streaming: {abr: {autoSwitchBitrate: {video: false}}}});
    p.setRepresentationForTypeByIndex("video", heights().indexOf(h), true);
    return true;
  };
} else {
  const h = new Hls(license ? {emeEnabled: true, drmSystems: {"org.w3.clearkey": {licenseUrl: license}}} : {});
  h.on(Hls.Events.ERROR, (_, d) => { if (d.fatal) errors.push(d.type + ": " + d.details); });
  h.loadSource(q.get("src"));
  h.attachMedia(v);
  window.heights = () => h.levels.map(l => l.height);
  window.pick = x => { h.currentLevel = heights().indexOf(x); return true; };
  v.play();
}
// (dash.js plays by itself, autoplay: a play() before it listens would
// hide the "play" that starts its live MPD refreshes.)
</script>`
	files := map[string][]byte{"/hls.min.js": hlsJS, "/dash.all.min.js": dashJS}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/":
			w.Header().Set("Content-Type", "text/html")
			io.WriteString(w, page)
		case r.URL.Path == "/favicon.ico":
			w.WriteHeader(http.StatusNoContent)
		case files[r.URL.Path] != nil:
			w.Header().Set("Content-Type", "text/javascript")
			w.Write(files[r.URL.Path])
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// iframeVariants lists the URIs of a master's EXT-X-I-FRAME-STREAM-INF
// entries.
func iframeVariants(t testing.TB, master []byte) []string {
	t.Helper()
	var out []string
	for _, line := range strings.Split(string(master), "\n") {
		if !strings.HasPrefix(line, "#EXT-X-I-FRAME-STREAM-INF:") {
			continue
		}
		_, uri, ok := strings.Cut(line, `URI="`)
		if !ok {
			t.Fatalf("I-frame variant without URI: %s", line)
		}
		out = append(out, strings.TrimSuffix(uri, `"`))
	}
	return out
}

// checkIFrames fetches every entry of an I-frame playlist over HTTP as a
// player scrubbing does (the EXT-X-MAP range, then the entry's range) and
// checks that each is one keyframe that decodes on its own, and that the
// entries' durations add up to the playlist's segments'.
func checkIFrames(t *testing.T, base, uri string, playlist []byte, dir string) {
	t.Helper()
	fetch := func(name string, offset, length int64) []byte {
		req, err := http.NewRequest("GET", base+name, nil)
		if err != nil {
			t.Fatal(err)
		}
		if length > 0 {
			req.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", offset, offset+length-1))
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil || resp.StatusCode/100 != 2 || (length > 0 && int64(len(b)) != length) {
			t.Fatalf("%s %d@%d: %s, %d bytes, %v", name, length, offset, resp.Status, len(b), err)
		}
		return b
	}
	byteRange := func(v string) (int64, int64) {
		n, at, _ := strings.Cut(strings.Trim(v, `"`), "@")
		length, err1 := strconv.ParseInt(n, 10, 64)
		offset, err2 := strconv.ParseInt(at, 10, 64)
		if err1 != nil || err2 != nil {
			t.Fatalf("%s: byte range %q", uri, v)
		}
		return offset, length
	}
	var head []byte
	var offset, length int64
	entries := 0
	sc := bufio.NewScanner(bytes.NewReader(playlist))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "#EXT-X-MAP:"):
			attrs := line[len("#EXT-X-MAP:"):]
			name, rest, _ := strings.Cut(strings.TrimPrefix(attrs, `URI="`), `"`)
			var o, l int64
			if _, r, ok := strings.Cut(rest, "BYTERANGE="); ok {
				o, l = byteRange(r)
			}
			head = fetch(name, o, l)
		case strings.HasPrefix(line, "#EXT-X-BYTERANGE:"):
			offset, length = byteRange(line[len("#EXT-X-BYTERANGE:"):])
		case line != "" && !strings.HasPrefix(line, "#"):
			if length == 0 || head == nil {
				t.Fatalf("%s: %s without a byte range or a map", uri, line)
			}
			frame := append(append([]byte(nil), head...), fetch(line, offset, length)...)
			file := filepath.Join(dir, fmt.Sprintf("iframe-%d%s", entries, map[bool]string{true: ".mp4", false: ".ts"}[strings.HasSuffix(line, ".m4s")]))
			if err := os.WriteFile(file, frame, 0o644); err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command("ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "frame=key_frame,pict_type",
				"-of", "csv=p=0", file).Output()
			if first, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n"); err != nil || !strings.HasPrefix(first, "1,I") {
				t.Errorf("%s: %s %d@%d: first frame %q (%v), want a keyframe", uri, line, length, offset, first, err)
			}
			entries, length = entries+1, 0
		}
	}
	if entries == 0 || !bytes.Contains(playlist, []byte("#EXT-X-I-FRAMES-ONLY")) || !bytes.Contains(playlist, []byte("#EXT-X-ENDLIST")) {
		t.Errorf("%s: %d entries:\n%s", uri, entries, playlist)
	}
}

// TestEncryptedAsset uploads a clip asking for AES-128 encryption and
// tries it as an attacker and as a viewer: the segments in the public
// bucket do not decode, the bucket's own playlists lead ffmpeg and hls.js
// nowhere (the key is not there), and the URL the gateway issues (a
// signed, expiring token in the path, which the playlists' relative key
// URI inherits) plays in ffmpeg without a warning and in hls.js in
// Chromium; an expired token gets nothing, the key least of all.
func TestEncryptedAsset(t *testing.T) {
	if testing.Short() {
		t.Skip("encodes and plays in a browser")
	}
	s := teststack.Up(t)
	dir := t.TempDir()
	src := filepath.Join(dir, "clip.mp4")
	mediatest.Make(t, src, mediatest.Clip{Seconds: 8, Width: 640, Height: 360, FPS: 30, Audio: true})
	s.Upload("uploads/secret.mp4", src, map[string]string{"Segflow-Encryption": "aes-128"})
	id := e2ekit.AssetOf(t, s, "uploads/secret.mp4")
	s.WaitStatus(id, 3*time.Minute, asset.StateComplete)
	a := layout.Asset(id)
	// qa scores the segments as a player sees them, decrypted.
	checkQuality(t, waitQA(t, s, id), []string{"360p"}, len(e2ekit.ReadManifest(t, s, id).Segments))
	public := "http://" + s.Env.S3Endpoint + "/" + s.Bucket + "/" + a.Prefix()

	playlists := map[string][]byte{"master.m3u8": e2ekit.Object(t, s, a.Master())}
	if got := iframeVariants(t, playlists["master.m3u8"]); len(got) != 0 {
		t.Errorf("I-frame playlists %v of encrypted segments", got)
	}
	for _, name := range []string{"360p.m3u8", "audio.m3u8"} {
		playlists[name] = e2ekit.Object(t, s, a.Prefix()+name)
		if !bytes.Contains(playlists[name], []byte(`#EXT-X-KEY:METHOD=AES-128,URI="key"`)) {
			t.Errorf("%s names no key:\n%s", name, playlists[name])
		}
	}
	parsersAccept(t, playlists)
	seg := filepath.Join(dir, "seg.ts")
	if err := os.WriteFile(seg, e2ekit.Object(t, s, a.Rendition("360p", 0, ".ts")), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := mediatest.Decodes(seg); err == nil {
		t.Error("an encrypted segment decodes as it is")
	}
	if out, err := exec.Command("ffmpeg", "-hide_banner", "-nostdin", "-v", "error", "-i", public+"master.m3u8", "-map", "0", "-f", "null", "-").CombinedOutput(); err == nil {
		t.Errorf("ffmpeg played the bucket's copy without the key:\n%s", out)
	}

	issued := issuePlay(t, s, id)
	if issued.Expires.IsZero() {
		t.Fatalf("issued URL %s has no expiry", issued.URL)
	}
	if out, err := exec.Command("ffmpeg", "-hide_banner", "-nostdin", "-v", "warning", "-i", issued.URL, "-map", "0", "-f", "null", "-").CombinedOutput(); err != nil || len(out) > 0 {
		t.Errorf("ffmpeg playing %s: %v\n%s", issued.URL, err, out)
	}
	key := strings.TrimSuffix(issued.URL, "master.m3u8") + "key"
	if resp, err := http.Get(key); err != nil || resp.StatusCode != http.StatusOK || resp.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("key with the token: %v %v", resp, err)
	}
	if resp, err := http.Get(issued.tampered("key")); err != nil || resp.StatusCode != http.StatusForbidden {
		t.Errorf("key with a tampered token: %v %v", resp, err)
	}

	// The catalog (and the console) hand out the route's URL too, once
	// the catalog has indexed the asset (it polls the bucket).
	var resp *http.Response
	var body []byte
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(500 * time.Millisecond) {
		req, _ := http.NewRequest(http.MethodGet, s.Env.Gateway+"/api/assets/"+id, nil)
		req.SetBasicAuth(s.Env.GatewayUser, s.Env.GatewayPassword)
		var err error
		if resp, err = http.DefaultClient.Do(req); err != nil {
			t.Fatal(err)
		}
		body, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound || time.Now().After(deadline) {
			break
		}
	}
	var listed struct {
		Playback string `json:"playback"`
	}
	if err := json.Unmarshal(body, &listed); err != nil || !strings.HasPrefix(listed.Playback, s.Env.Gateway+"/play/") {
		t.Errorf("catalog's playback URL of the encrypted asset: %s %s", resp.Status, body)
	}

	page := playersPage(t)
	b := newBrowser(t)
	b.do(t, 20*time.Second, chromedp.Navigate(page+"/?p=hls&src="+url.QueryEscape(issued.URL)))
	waitPage(t, b, 60*time.Second, "playback with the token", `document.getElementById("v").currentTime > 3`)
	if errs := eval[[]string](t, b, `errors`); len(errs) > 0 {
		t.Errorf("hls.js with the token: %v", errs)
	}
	b.do(t, 20*time.Second, chromedp.Navigate(page+"/?p=hls&src="+url.QueryEscape(public+"master.m3u8")))
	waitPage(t, b, 60*time.Second, "hls.js failing on the key", `errors.some(e => e.includes("keyLoadError"))`)
	if played := eval[float64](t, b, `document.getElementById("v").currentTime`); played > 0 {
		t.Errorf("hls.js played %.1fs without the key", played)
	}
}

// TestCBCSAsset: a CMAF upload asked for cbcs encryption is encrypted
// sample by sample (encv/enca with the key ID in the init segments), its
// playlists and MPD say so, and hls.js and dash.js in Chromium play it
// through EME Clear Key with the license URL the route issued, and do
// not without a valid token.
func TestCBCSAsset(t *testing.T) {
	if testing.Short() {
		t.Skip("encodes and plays in a browser")
	}
	s := teststack.Up(t)
	dir := t.TempDir()
	src := filepath.Join(dir, "clip.mp4")
	mediatest.Make(t, src, mediatest.Clip{Seconds: 8, Width: 640, Height: 360, FPS: 30, Audio: true})
	// Sidecar subtitles, which DASH lists too (in the clear).
	srt := filepath.Join(dir, "cbcs.en.srt")
	if err := os.WriteFile(srt, []byte("1\n00:00:01,000 --> 00:00:03,000\nHello\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s.Upload("uploads/cbcs.en.srt", srt, nil)
	s.Upload("uploads/cbcs.mp4", src, map[string]string{"Segflow-Packaging": "cmaf", "Segflow-Encryption": "cbcs"})
	id := e2ekit.AssetOf(t, s, "uploads/cbcs.mp4")
	s.WaitStatus(id, 3*time.Minute, asset.StateComplete)
	// qa skips cbcs (Debian's ffmpeg 5.1 does not decrypt these samples)
	// and says so on every segment.
	segs := len(e2ekit.ReadManifest(t, s, id).Segments)
	if st := waitStatus(t, s, id, "qa skipped every segment", func(st *asset.Status) bool {
		n := 0
		for _, seg := range st.Segments {
			if seg.Stages["qa"].State == asset.StateSkipped {
				n++
			}
		}
		return n == segs
	}); len(st.Quality) != 0 {
		t.Errorf("quality of a cbcs asset: %+v", st.Quality)
	}
	a := layout.Asset(id)
	kid := asset.KeyID(id)

	key := `#EXT-X-KEY:METHOD=SAMPLE-AES,URI="data:text/plain;base64,` + base64.StdEncoding.EncodeToString(kid) + `",KEYFORMAT="org.w3.clearkey"`
	playlists := map[string][]byte{"master.m3u8": e2ekit.Object(t, s, a.Master())}
	iframes := iframeVariants(t, playlists["master.m3u8"])
	if len(iframes) != 1 {
		t.Errorf("I-frame playlists %v, want the 360p one", iframes)
	}
	for _, name := range append([]string{"360p.m3u8", "audio.m3u8"}, iframes...) {
		playlists[name] = e2ekit.Object(t, s, a.Prefix()+name)
		if !bytes.Contains(playlists[name], []byte(key)) {
			t.Errorf("%s names no Clear Key SAMPLE-AES key:\n%s", name, playlists[name])
		}
	}
	parsersAccept(t, playlists)
	manifest := e2ekit.Object(t, s, a.DASH())
	if !bytes.Contains(manifest, []byte(`value="cbcs"`)) || !bytes.Contains(manifest, []byte(`urn:uuid:e2719d58-a985-b3c9-781a-b030af78d30e`)) {
		t.Errorf("MPD names no cbcs protection:\n%s", manifest)
	}
	if m, err := mpd.MPDFromBytes(manifest); err != nil {
		t.Errorf("MPD does not parse: %v", err)
	} else {
		var text []string
		for _, as := range m.Periods[0].AdaptationSets {
			if as.ContentType == "text" && len(as.ContentProtections) == 0 && len(as.Representations) == 1 && len(as.Representations[0].BaseURLs) == 1 {
				text = append(text, as.Lang+" "+string(as.Representations[0].BaseURLs[0].Value))
			}
		}
		if len(text) != 1 || text[0] != "en subs-en/00000.vtt" {
			t.Errorf("MPD subtitles %v, want the English sidecar in the clear:\n%s", text, manifest)
		}
	}
	for _, r := range []struct{ name, entry string }{{"360p", "encv"}, {"audio", "enca"}} {
		init := e2ekit.Object(t, s, a.InitSegment(r.name))
		if !bytes.Contains(init, []byte(r.entry)) || !bytes.Contains(init, kid) || !bytes.Contains(init, []byte("cbcs")) {
			t.Errorf("%s init segment is not %s cbcs with the key ID", r.name, r.entry)
		}
		if seg := e2ekit.Object(t, s, a.Rendition(r.name, 0, ".m4s")); !bytes.Contains(seg, []byte("senc")) {
			t.Errorf("%s segment 0 has no senc", r.name)
		}
	}

	issued := issuePlay(t, s, id)
	if issued.License != strings.TrimSuffix(issued.URL, "master.m3u8")+"license" {
		t.Fatalf("issued license URL %q beside %s", issued.License, issued.URL)
	}
	mpdURL := strings.TrimSuffix(issued.URL, "master.m3u8") + "manifest.mpd"
	badLicense := issued.tampered("license")

	page := playersPage(t)
	b := newBrowser(t)
	for _, p := range []struct{ player, src string }{{"hls", issued.URL}, {"dash", mpdURL}} {
		t.Run(p.player, func(t *testing.T) {
			b.do(t, 20*time.Second, chromedp.Navigate(page+"/?p="+p.player+"&src="+url.QueryEscape(p.src)+"&license="+url.QueryEscape(issued.License)))
			waitPage(t, b, 60*time.Second, "playback with the license", `document.getElementById("v").currentTime > 3`)
			if errs := eval[[]string](t, b, `errors`); len(errs) > 0 {
				t.Errorf("%s with the license: %v", p.player, errs)
			}
			if p.player == "dash" {
				if langs := eval[[]string](t, b, `textLangs()`); len(langs) != 1 || langs[0] != "en" {
					t.Errorf("dash.js subtitle tracks %v, want en", langs)
				}
			}
			b.do(t, 20*time.Second, chromedp.Navigate(page+"/?p="+p.player+"&src="+url.QueryEscape(p.src)+"&license="+url.QueryEscape(badLicense)))
			waitPage(t, b, 60*time.Second, "the player failing on the license", `errors.length > 0`)
			if played := eval[float64](t, b, `document.getElementById("v").currentTime`); played > 0.5 {
				t.Errorf("%s played %.1fs with a tampered token", p.player, played)
			}
		})
	}
	// The console plays it too: it hands hls.js the license URL beside
	// the master the route signed.
	t.Run("console", func(t *testing.T) {
		u, _ := url.Parse(s.Env.Console)
		u.User = url.UserPassword(s.Env.GatewayUser, s.Env.GatewayPassword)
		u.Fragment = "asset=" + id
		b.do(t, 30*time.Second, chromedp.Navigate(u.String()))
		b.poll(t, 30*time.Second, "hls.js levels of the cbcs asset", `!!(segflow.hls && segflow.hls.levels && segflow.hls.levels.length >= 1 && segflow.hls.url.includes("/play/"))`, s)
		eval[bool](t, b, `(async () => { segflow.video.muted = true; segflow.video.currentTime = 0; await segflow.video.play(); return true })()`)
		b.poll(t, 30*time.Second, "the cbcs asset plays in the console", `segflow.video.currentTime > 1.5`, s)
		if msg := eval[string](t, b, `document.querySelector("#asset-error").textContent`); msg != "" {
			t.Errorf("console says %q", msg)
		}
	})
}

// issued is what /api/play/<id> answers.
type issued struct {
	URL     string    `json:"url"`
	Expires time.Time `json:"expires"`
	License string    `json:"license"`
}

// tampered is the URL of file beside the issued master with one bit of
// its token flipped.
func (i issued) tampered(file string) string {
	base := strings.TrimSuffix(i.URL, "master.m3u8")
	at := strings.Index(base, "/play/") + len("/play/")
	end := at + strings.IndexByte(base[at:], '/')
	tok := []byte(base[at:end])
	tok[len(tok)-1] ^= 1
	return base[:at] + string(tok) + base[end:] + file
}

// issuePlay asks the gateway for a five-minute playback URL of asset id,
// which must be the route's (a token in the path).
func issuePlay(t *testing.T, s *teststack.Stack, id string) issued {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, s.Env.Gateway+"/api/play/"+id+"?ttl=5m", nil)
	req.SetBasicAuth(s.Env.GatewayUser, s.Env.GatewayPassword)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var out issued
	if err := json.Unmarshal(body, &out); err != nil || resp.StatusCode != http.StatusOK || !strings.HasPrefix(out.URL, s.Env.Gateway+"/play/") {
		t.Fatalf("issue = %s %s", resp.Status, body)
	}
	return out
}
