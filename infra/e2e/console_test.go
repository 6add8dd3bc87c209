package e2e

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/segflow/segflow/infra/internal/e2ekit"
	"github.com/segflow/segflow/infra/internal/testgw"
	"github.com/segflow/segflow/infra/internal/teststack"
	"github.com/segflow/segflow/infra/stack"
	"github.com/segflow/segflow/shared/media/mediatest"
)

// browser is a headless Debian chromium driven over CDP, collecting every
// console error, uncaught exception and browser-log error of its pages.
type browser struct {
	ctx    context.Context
	mu     sync.Mutex
	errors []string
}

// newBrowser starts chromium with extra flags, if any.
func newBrowser(t testing.TB, extra ...chromedp.ExecAllocatorOption) *browser {
	exe := "/usr/bin/chromium"
	if _, err := os.Stat(exe); err != nil {
		t.Fatalf("chromium missing (scripts/setup.sh installs it): %v", err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.Flag("disable-quic", true),
		chromedp.Flag("autoplay-policy", "no-user-gesture-required"),
		chromedp.UserDataDir(t.TempDir()))
	opts = append(opts, extra...)
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelB := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelB(); cancelA() })
	b := &browser{ctx: ctx}
	// The first action starts the browser (with no deadline: it lives as
	// long as ctx).
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatal(err)
	}
	messages := chromedp.Console(ctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			if m.Type == chromedp.ConsoleError || m.IsException() {
				b.mu.Lock()
				b.errors = append(b.errors, fmt.Sprintf("%s (%s:%d)", m.Text, m.URL, m.Line+1))
				b.mu.Unlock()
			}
		}
	}()
	return b
}

func (b *browser) Errors() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.errors...)
}

// do runs actions with a deadline.
func (b *browser) do(t testing.TB, within time.Duration, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, within)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		t.Fatalf("browser: %v (page errors %v)", err, b.Errors())
	}
}

// eval evaluates a JavaScript expression in the page, awaiting a promise.
func eval[T any](t testing.TB, b *browser, js string) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("evaluate %s: %v (page errors %v)", js, err, b.Errors())
	}
	return v
}

// poll evaluates js every 250 ms until it is true.
func (b *browser) poll(t *testing.T, within time.Duration, what, js string, s *teststack.Stack) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !eval[bool](t, b, js) {
		if time.Now().After(deadline) {
			dump := eval[string](t, b, `document.querySelector("#detail").innerText + " | " + document.querySelector("#upload-status").innerText`)
			t.Fatalf("%s: not after %s; page: %s; errors %v\n%s", what, within, dump, b.Errors(), s.Log())
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// TestConsoleInBrowser drives the console in headless chromium: upload
// through the page, the stage grid to completion, playback with hls.js
// levels, a search hit seeking the player, a failed upload's reason, and
// no console errors on the way.
func TestConsoleInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the stack and a browser")
	}
	// A floor no encode reaches: every rung warns.
	s := teststack.Up(t, "QA_SSIM_FLOOR=0.9999")
	dir := t.TempDir()
	clip := filepath.Join(dir, "kestrel.mp4")
	font := "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"
	// A word on screen from 6 to 9 s, white on a black box: OCR finds it
	// and the search hit must seek there.
	mediatest.Make(t, clip, mediatest.Clip{Seconds: 12, Width: 1280, Height: 720, FPS: 30, Audio: true,
		VideoFilter: "drawtext=fontfile=" + font + ":text='KESTREL':fontsize=120:fontcolor=white:box=1:boxcolor=black:boxborderw=30:x=(w-tw)/2:y=(h-th)/2:enable='between(t,6,9)'"})
	junk := filepath.Join(dir, "notes.mp4")
	if err := os.WriteFile(junk, []byte(strings.Repeat("these are not video frames\n", 4000)), 0o644); err != nil {
		t.Fatal(err)
	}

	u, _ := url.Parse(s.Env.Console)
	u.User = url.UserPassword(s.Env.GatewayUser, s.Env.GatewayPassword)
	b := newBrowser(t)
	b.do(t, 30*time.Second, chromedp.Navigate(u.String()), chromedp.WaitVisible(chromedp.CSS("#drop")))

	// Upload through the page's file input (the drop zone's fallback).
	start := time.Now()
	b.do(t, 10*time.Second, chromedp.SetUploadFiles(chromedp.CSS("#file"), []string{clip}))
	b.poll(t, 60*time.Second, "upload completes", `!!document.querySelector("#upload-status").dataset.asset`, s)
	id := eval[string](t, b, `document.querySelector("#upload-status").dataset.asset`)
	if want := e2ekit.AssetOf(t, s, "uploads/kestrel.mp4"); id != want {
		t.Fatalf("page says asset %s, the bucket's upload is %s", id, want)
	}
	b.poll(t, 4*time.Minute, "stage grid complete", `document.querySelector("#detail").dataset.state === "complete"`, s)
	t.Logf("asset %s complete in the page %s after upload", id, time.Since(start).Round(time.Millisecond))
	grid := eval[struct {
		Cols   []string `json:"cols"`
		Rows   int      `json:"rows"`
		Failed int      `json:"failed"`
		Why    []string `json:"why"`
	}](t, b, `({cols: [...document.querySelectorAll("#grid thead th")].map(th => th.textContent).slice(1),
		rows: document.querySelectorAll("#grid tbody tr").length,
		failed: document.querySelectorAll("#grid td.failed").length,
		why: [...document.querySelectorAll("#grid td.failed")].map(td => td.title)})`)
	// One row per segment: a 12 s clip is two 6 s segments.
	if segs := len(e2ekit.ReadManifest(t, s, id).Segments); grid.Rows != segs || segs < 2 || grid.Failed > 0 || !containsAll(grid.Cols, "split", "transcode", "transcode/720p", "transcode/480p", "transcode/360p", "transcode/audio") {
		t.Fatalf("stage grid: %+v", grid)
	}

	// Playback: hls.js with every rung, and the clock moves.
	b.poll(t, 30*time.Second, "hls.js levels", `!!(segflow.hls && segflow.hls.levels && segflow.hls.levels.length >= 3)`, s)
	levels := eval[int](t, b, `segflow.hls.levels.length`)
	eval[bool](t, b, `(async () => { segflow.video.muted = true; await segflow.video.play(); return true })()`)
	b.poll(t, 30*time.Second, "video.currentTime advances", `segflow.video.currentTime > 1.5`, s)
	t.Logf("hls.js reports %d levels; playing", levels)
	// The poster shows once thumbnail has made it (thumbnail runs at a
	// lower priority than transcode: the asset may complete first), and
	// the page never asked for it before (page errors, at the end).
	b.poll(t, 60*time.Second, "poster shown", `segflow.video.poster.endsWith("/thumbs/poster.jpg")`, s)
	// Which ladder split chose, each rung's rate.
	b.poll(t, 30*time.Second, "ladder shown", `document.querySelector("#asset-ladder").textContent.startsWith("ladder fixed: 720p 3 Mb/s, 480p")`, s)
	options := eval[int](t, b, `document.querySelectorAll("#levels option").length`)
	if levels < 3 || options != levels+1 {
		t.Fatalf("levels %d, quality menu %d entries", levels, options)
	}
	// The qa stage's chart per rung and the asset's quality warning, on
	// the page and in the gateway's metrics.
	b.poll(t, 2*time.Minute, "quality charts", `document.querySelectorAll("#quality figure svg circle").length >= 6 &&
		document.querySelector("#quality-warning").textContent.includes("under the floor 0.9999")`, s)
	charts := eval[[]string](t, b, `[...document.querySelectorAll("#quality figure")].map(f => f.dataset.rung + " " + f.dataset.ssim)`)
	t.Logf("quality charts: %v; %s", charts, eval[string](t, b, `document.querySelector("#quality-warning").textContent`))
	if len(charts) != 3 {
		t.Errorf("quality charts %v, want one per rung", charts)
	}
	if v := gatewayMetric(t, s, "segflow_catalog_assets_quality_warning"); v < 1 {
		t.Errorf("segflow_catalog_assets_quality_warning = %v", v)
	}

	// Search for the on-screen word: the hit seeks the player to it.
	eval[bool](t, b, `(async () => { segflow.video.pause(); segflow.video.currentTime = 0; return true })()`)
	deadline := time.Now().Add(2 * time.Minute)
	for {
		b.do(t, 10*time.Second, chromedp.SetValue(chromedp.CSS("#search"), "kestrel"), chromedp.Click(chromedp.CSS("#search-form button")))
		time.Sleep(500 * time.Millisecond)
		if eval[int](t, b, `document.querySelectorAll("#hits li.hit").length`) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no search hit for kestrel\n%s", s.Log())
		}
		time.Sleep(time.Second)
	}
	hitStart := eval[float64](t, b, `Number(document.querySelector("#hits li.hit").dataset.start)`)
	if hitStart < 5.5 || hitStart >= 9 {
		t.Fatalf("hit at %.2f s, the word is on screen from 6 to 9 s", hitStart)
	}
	b.do(t, 10*time.Second, chromedp.Click(chromedp.CSS("#hits li.hit")))
	b.poll(t, 10*time.Second, "player seeks to the hit", fmt.Sprintf(`Math.abs(segflow.video.currentTime - %f) < 0.5`, hitStart), s)
	at := eval[float64](t, b, `segflow.video.currentTime`)
	if math.Abs(at-hitStart) >= 0.5 {
		t.Fatalf("player at %.2f, hit at %.2f", at, hitStart)
	}

	// The timeline has the tags, and the scrub bar the storyboard's frames.
	b.poll(t, 30*time.Second, "tags on the timeline and storyboard previews",
		`document.querySelectorAll("#tags .tag.text").length > 0 && segflow.state.cues.length >= 3`, s)
	// Once aitag and thumbnail mark themselves done for the asset, the page
	// stops reading the tags and the storyboard while it keeps polling the
	// status.
	b.poll(t, 30*time.Second, "aitag and thumbnail done for the asset",
		`["aitag", "thumbnail"].every((n) => ((segflow.state.status.stages || {})[n] || {}).state === "done")`, s)
	eval[bool](t, b, `(() => { segflow.rereads = 0; const real = window.fetch;
		window.fetch = (u, o) => { if (/\/ui\/api\/tags\/|storyboard\.vtt/.test(String(u))) segflow.rereads++; return real(u, o) };
		return true })()`)
	time.Sleep(3 * time.Second)
	if n := eval[int](t, b, `segflow.rereads`); n != 0 {
		t.Errorf("the page read the tags or the storyboard %d times in 3 s after both were done", n)
	}

	// A private upload: the bucket refuses its files to anyone, and the
	// page plays it through the gateway's signed, expiring /play/ URLs.
	short := filepath.Join(dir, "board-meeting.mp4")
	mediatest.Make(t, short, mediatest.Clip{Seconds: 6, Width: 640, Height: 360, FPS: 30, Audio: true})
	b.do(t, 10*time.Second, chromedp.Click(chromedp.CSS("#private")), chromedp.SetUploadFiles(chromedp.CSS("#file"), []string{short}))
	b.poll(t, 60*time.Second, "private upload completes", `(document.querySelector("#upload-status").dataset.asset || "").startsWith("private_")`, s)
	priv := eval[string](t, b, `document.querySelector("#upload-status").dataset.asset`)
	if want := e2ekit.AssetOf(t, s, "uploads/private/board-meeting.mp4"); priv != want {
		t.Fatalf("page says asset %s, the bucket's private upload is %s", priv, want)
	}
	b.do(t, 10*time.Second, chromedp.Click(chromedp.CSS("#private"))) // later uploads are public again
	b.poll(t, 4*time.Minute, "private asset complete", fmt.Sprintf(`document.querySelector("#detail").dataset.state === "complete" && segflow.state.media.master.includes("/play/") && segflow.state.media.master.includes(%q)`, priv), s)
	b.poll(t, 30*time.Second, "hls.js levels of the private asset", `!!(segflow.hls && segflow.hls.levels && segflow.hls.levels.length >= 1 && segflow.hls.url.includes("/play/"))`, s)
	eval[bool](t, b, `(async () => { segflow.video.muted = true; segflow.video.currentTime = 0; await segflow.video.play(); return true })()`)
	b.poll(t, 30*time.Second, "private asset plays", `segflow.video.currentTime > 1.5`, s)
	master := eval[string](t, b, `segflow.state.media.master`)
	anon := s.Env.S3Endpoint
	for _, u := range []string{"http://" + anon + "/" + s.Bucket + "/assets/" + priv + "/master.m3u8", "http://" + anon + "/" + s.Bucket + "/assets/" + priv + "/source/00000.ts"} {
		resp, err := http.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Fatalf("anonymous %s = %d, want 403", u, resp.StatusCode)
		}
	}
	if resp, err := http.Get(master); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("signed %s: %v %v", master, resp, err)
	} else {
		resp.Body.Close()
	}
	eval[bool](t, b, `(() => { segflow.video.pause(); return true })()`)

	// Resume after a reload: the first part goes up, then the page is
	// reloaded before the rest; dropping the same file again sends only what
	// is missing.
	big := filepath.Join(dir, "resume.mp4")
	data := make([]byte, 20<<20)
	for i := range data {
		data[i] = byte(i*7 + i>>11)
	}
	if err := os.WriteFile(big, data, 0o644); err != nil {
		t.Fatal(err)
	}
	// The page under test, with every part after the first held back.
	eval[bool](t, b, `(() => { let signed = 0; const real = window.fetch;
		window.fetch = (u, o) => String(u).includes("/ui/api/uploads/sign") && ++signed > 1 ? new Promise(() => {}) : real(u, o);
		return true })()`)
	b.do(t, 10*time.Second, chromedp.SetUploadFiles(chromedp.CSS("#file"), []string{big}))
	b.poll(t, 30*time.Second, "first part uploaded", `document.querySelector("#progress").value >= 0.39`, s)
	b.do(t, 30*time.Second, chromedp.Navigate(u.String()), chromedp.WaitVisible(chromedp.CSS("#drop")))
	eval[bool](t, b, `(() => { window.seen = []; const el = document.querySelector("#upload-status");
		new MutationObserver(() => seen.push(el.textContent)).observe(el, {childList: true, characterData: true, subtree: true});
		return true })()`)
	b.do(t, 10*time.Second, chromedp.SetUploadFiles(chromedp.CSS("#file"), []string{big}))
	b.poll(t, 60*time.Second, "resumed upload completes", `(document.querySelector("#upload-status").dataset.asset || "").startsWith("resume-")`, s)
	if seen := eval[[]string](t, b, `seen`); !slices.ContainsFunc(seen, func(m string) bool { return strings.Contains(m, "Resuming resume.mp4: 1 of 3 parts") }) {
		t.Fatalf("the page did not resume: %q", seen)
	}
	if info, err := s.Store.Stat(context.Background(), s.Bucket, "uploads/resume.mp4"); err != nil || info.Size != int64(len(data)) || !strings.HasSuffix(info.ETag, "-3") {
		t.Fatalf("resumed upload: %+v %v", info, err)
	}

	// A function that always fails (split with storage out of reach) takes
	// uploads too, so the next one ends in the dead letters: the page lists
	// it, and its Replay button delivers it again.
	st, err := stack.Parse(filepath.Join(testgw.RepoRoot(), "stack.yml"))
	if err != nil {
		t.Fatal(err)
	}
	broken, err := st.LocalDeployment("split")
	if err != nil {
		t.Fatal(err)
	}
	broken.Service = "brokensplit"
	broken.Secrets = nil // no storage credentials: every call fails
	(*broken.Annotations)["com.segflow.max-attempts"] = "1"
	if err := s.GW.Deploy(context.Background(), broken); err != nil {
		t.Fatal(err)
	}
	s.WaitRouted(broken.Service, true)

	// A file that is not media: the page shows why it failed.
	b.do(t, 10*time.Second, chromedp.SetUploadFiles(chromedp.CSS("#file"), []string{junk}))
	b.poll(t, 60*time.Second, "failed upload shows its reason",
		`document.querySelector("#detail").dataset.state === "failed" && document.querySelector("#asset-error").textContent.includes("not a media file")`, s)

	b.poll(t, 60*time.Second, "dead letter listed",
		`[...document.querySelectorAll("#deadletters li.deadletter")].some(li => li.textContent.includes("brokensplit") && li.textContent.includes("notes.mp4"))`, s)
	before, err := s.GW.GetFunction(context.Background(), "brokensplit", "")
	if err != nil {
		t.Fatal(err)
	}
	b.do(t, 10*time.Second, chromedp.Click(chromedp.CSS("#deadletters li.deadletter button")))
	deadline = time.Now().Add(30 * time.Second)
	for {
		after, err := s.GW.GetFunction(context.Background(), "brokensplit", "")
		if err == nil && after.InvocationCount > before.InvocationCount {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("replay from the page did not deliver again (%v invocations)\n%s", before.InvocationCount, s.Log())
		}
		time.Sleep(250 * time.Millisecond)
	}

	// A stream publishing now is listed with its viewer URL.
	since := time.Now()
	pub := e2ekit.TestPublisher("640x360", 30, "flv", s.Env.RTMPURL)
	if err := pub.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = pub.Process.Kill(); _ = pub.Wait() }()
	live := e2ekit.WaitLiveAsset(t, s, since)
	b.poll(t, 30*time.Second, "live stream listed", fmt.Sprintf(
		`[...document.querySelectorAll("#live li.live")].some(li => li.dataset.id === %q && li.querySelector("a.viewer").href.endsWith("/assets/%s/master.m3u8"))`, live, live), s)

	if errs := b.Errors(); len(errs) > 0 {
		t.Fatalf("page errors: %v", errs)
	}
}

func containsAll(have []string, want ...string) bool {
	set := map[string]bool{}
	for _, h := range have {
		set[h] = true
	}
	for _, w := range want {
		if !set[w] {
			return false
		}
	}
	return true
}

// gatewayMetric polls the gateway's /metrics for an unlabelled gauge until
// it is at least 1 (the catalog indexes every 2 s) or 30 s pass, and
// returns its last value.
func gatewayMetric(t *testing.T, s *teststack.Stack, name string) float64 {
	t.Helper()
	v := -1.0
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline) && v < 1; time.Sleep(time.Second) {
		if m := e2ekit.Metrics(t, s); m.Has(name) {
			v = m.Sum(name, nil)
		}
	}
	return v
}
