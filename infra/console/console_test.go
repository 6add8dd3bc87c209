package console_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segflow/segflow/infra/console"
	"github.com/segflow/segflow/shared/asset"
	"github.com/segflow/segflow/shared/layout"
	"github.com/segflow/segflow/shared/media"
	"github.com/segflow/segflow/shared/storage"
	"github.com/segflow/segflow/shared/testenv"
)

type client struct {
	t   *testing.T
	url string
}

func (c client) call(method, path string, in any, wantCode int, out any) {
	c.t.Helper()
	var body io.Reader
	if in != nil {
		b, _ := json.Marshal(in)
		body = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, c.url+path, body)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != wantCode {
		c.t.Fatalf("%s %s: %d %s, want %d", method, path, resp.StatusCode, b, wantCode)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			c.t.Fatalf("%s %s: %v: %s", method, path, err, b)
		}
	}
}

// TestResumableUpload runs the page's upload protocol against real MinIO:
// start, one part, a "reload" that lists what arrived, the rest, complete.
func TestResumableUpload(t *testing.T) {
	m := testenv.StartMinIO(t)
	bucket := m.Bucket(t, "media")
	ui := &console.Console{Store: m.Client, Bucket: bucket, MediaBase: "http://" + m.Options.Endpoint + "/" + bucket, PartSize: 5 << 20}
	srv := httptest.NewServer(ui.Handler())
	defer srv.Close()
	c := client{t, srv.URL}

	data := bytes.Repeat([]byte("0123456789abcdef"), (11<<20)/16) // 11 MiB: three parts
	var plan struct {
		Key, UploadID string
		PartSize      int64
		Parts         int
	}
	c.call("POST", "/ui/api/uploads", map[string]any{"name": "../../My Film (final).mp4", "size": len(data), "type": "video/mp4"}, 200, &plan)
	if plan.Key != "uploads/My Film _final_.mp4" || plan.Parts != 3 || plan.PartSize != 5<<20 {
		t.Fatalf("plan %+v", plan)
	}
	put := func(n int) {
		var signed struct{ URL string }
		c.call("POST", "/ui/api/uploads/sign", map[string]any{"key": plan.Key, "uploadId": plan.UploadID, "part": n}, 200, &signed)
		end := min(int64(len(data)), int64(n)*plan.PartSize)
		req, _ := http.NewRequest("PUT", signed.URL, bytes.NewReader(data[int64(n-1)*plan.PartSize:end]))
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("part %d: %v %v", n, err, resp)
		}
		resp.Body.Close()
	}
	put(2)
	// The page reloads: it asks what arrived and sends only the rest.
	var parts []struct {
		Number int
		Size   int64
	}
	c.call("GET", "/ui/api/uploads/parts?key="+strings.ReplaceAll(plan.Key, " ", "%20")+"&uploadId="+plan.UploadID, nil, 200, &parts)
	if len(parts) != 1 || parts[0].Number != 2 || parts[0].Size != 5<<20 {
		t.Fatalf("parts after reload: %+v", parts)
	}
	put(1)
	put(3)
	var done struct{ Key, Asset string }
	c.call("POST", "/ui/api/uploads/complete", map[string]any{"key": plan.Key, "uploadId": plan.UploadID}, 200, &done)
	info, err := m.Client.Stat(t.Context(), bucket, plan.Key)
	if err != nil || info.Size != int64(len(data)) {
		t.Fatalf("uploaded object: %+v %v", info, err)
	}
	if done.Asset != layout.AssetID(plan.Key, info.ETag) {
		t.Fatalf("asset %s, split will call it %s", done.Asset, layout.AssetID(plan.Key, info.ETag))
	}
	// Until split writes the asset's status, the page that uploaded it
	// names the upload and gets a pending status; nothing else vouches for
	// the id.
	var pending struct{ ID, Source, State string }
	c.call("GET", "/ui/api/status/"+done.Asset+"?source="+url.QueryEscape(plan.Key), nil, 200, &pending)
	if pending.ID != done.Asset || pending.Source != plan.Key || pending.State != "pending" {
		t.Fatalf("status before split: %+v", pending)
	}
	for _, path := range []string{
		"/ui/api/status/" + done.Asset,
		"/ui/api/status/" + done.Asset + "?source=" + url.QueryEscape("uploads/other.mp4"),
		"/ui/api/status/" + done.Asset + "?source=" + url.QueryEscape("assets/"+done.Asset+"/manifest.json"),
		"/ui/api/status/" + done.Asset + "?source=" + url.QueryEscape("uploads/../"+plan.Key),
		"/ui/api/status/other-0123456789?source=" + url.QueryEscape(plan.Key),
	} {
		c.call("GET", path, nil, 404, nil)
	}
	// Another file of the same name does not replace it.
	var second struct{ Key string }
	c.call("POST", "/ui/api/uploads", map[string]any{"name": "My Film (final).mp4", "size": 10}, 200, &second)
	if second.Key != "uploads/My Film _final_-2.mp4" {
		t.Fatalf("second upload of one name goes to %q", second.Key)
	}
	// Nor does a third started while the second is still going up, nor
	// uploads of one new name started at the same moment.
	var third struct{ Key string }
	c.call("POST", "/ui/api/uploads", map[string]any{"name": "My Film (final).mp4", "size": 10}, 200, &third)
	if third.Key != "uploads/My Film _final_-3.mp4" {
		t.Fatalf("upload started while another of its name is going up goes to %q", third.Key)
	}
	keys := make([]string, 4)
	var wg sync.WaitGroup
	for i := range keys {
		wg.Go(func() {
			var p struct{ Key string }
			c.call("POST", "/ui/api/uploads", map[string]any{"name": "clip.mov", "size": 10}, 200, &p)
			keys[i] = p.Key
		})
	}
	wg.Wait()
	slices.Sort(keys)
	if strings.Join(keys, " ") != "uploads/clip-2.mov uploads/clip-3.mov uploads/clip-4.mov uploads/clip.mov" {
		t.Fatalf("four uploads of one name at once go to %v", keys)
	}
	// A completed upload is gone: a stale page starts over.
	c.call("GET", "/ui/api/uploads/parts?key="+strings.ReplaceAll(plan.Key, " ", "%20")+"&uploadId="+plan.UploadID, nil, 404, nil)

	// Bad requests get a reason, not a crash.
	for _, tc := range []struct {
		name, method, path string
		body               any
		code               int
	}{
		{"empty file", "POST", "/ui/api/uploads", map[string]any{"name": "a.mp4", "size": 0}, 400},
		{"nameless file", "POST", "/ui/api/uploads", map[string]any{"name": "../..", "size": 10}, 400},
		{"not json", "POST", "/ui/api/uploads", "{", 400},
		{"key outside uploads", "POST", "/ui/api/uploads/sign", map[string]any{"key": "assets/x/status.json", "uploadId": "u", "part": 1}, 400},
		{"part 0", "POST", "/ui/api/uploads/sign", map[string]any{"key": "uploads/a.mp4", "uploadId": "u", "part": 0}, 400},
		{"unknown upload", "POST", "/ui/api/uploads/complete", map[string]any{"key": "uploads/a.mp4", "uploadId": "nope"}, 404},
		{"unknown asset", "GET", "/ui/api/status/none-0000000000", nil, 404},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out struct{ Error string }
			client{t, srv.URL}.call(tc.method, tc.path, tc.body, tc.code, &out)
			if out.Error == "" {
				t.Fatal("no reason given")
			}
		})
	}

	// The page and its media URLs.
	resp, err := http.Get(srv.URL + "/ui/")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !bytes.Contains(page, []byte(`src="vendor/hls.min.js"`)) {
		t.Fatalf("/ui/: %d %.200s", resp.StatusCode, page)
	}
	var tags struct {
		Duration float64
		Tags     []any
	}
	c.call("GET", "/ui/api/tags/abc-123", nil, 200, &tags)
	if tags.Tags == nil || len(tags.Tags) != 0 {
		t.Fatalf("tags of an untagged asset: %+v", tags)
	}
	var media map[string]string
	c.call("GET", "/ui/api/media/abc-123", nil, 200, &media)
	if media["master"] != ui.MediaBase+"/"+layout.Asset("abc-123").Master() {
		t.Fatalf("media %v", media)
	}
}

// TestExpiredClaimFreesTheName: an upload that was started and never
// completed (the page was closed) stops holding its name once its claim
// expires; a completed upload's name stays taken.
func TestExpiredClaimFreesTheName(t *testing.T) {
	m := testenv.StartMinIO(t)
	bucket := m.Bucket(t, "media")
	ui := &console.Console{Store: m.Client, Bucket: bucket, ClaimExpiry: time.Nanosecond}
	srv := httptest.NewServer(ui.Handler())
	defer srv.Close()
	c := client{t, srv.URL}
	start := func(name string) string {
		var p struct{ Key string }
		c.call("POST", "/ui/api/uploads", map[string]any{"name": name, "size": 10}, 200, &p)
		return p.Key
	}
	if k := start("left.mp4"); k != "uploads/left.mp4" {
		t.Fatalf("first start: %q", k)
	}
	// Abandoned: its claim has expired, so the name is free again.
	if k := start("left.mp4"); k != "uploads/left.mp4" {
		t.Fatalf("start after an abandoned upload's claim expired: %q", k)
	}
	if err := m.Client.PutBytes(t.Context(), bucket, "uploads/kept.mp4", []byte("x"), storage.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	if k := start("kept.mp4"); k != "uploads/kept-2.mp4" {
		t.Fatalf("start over a completed upload: %q", k)
	}
}

// TestPagesCarrySecurityHeaders: the console cannot be framed, runs only
// its own scripts, and reaches no origin but its own and the bucket's.
func TestPagesCarrySecurityHeaders(t *testing.T) {
	srv := httptest.NewServer((&console.Console{MediaBase: "http://127.0.0.1:9000/media"}).Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/ui/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	csp := resp.Header.Get("Content-Security-Policy")
	for _, want := range []string{"frame-ancestors 'none'", "script-src 'self';", "connect-src 'self' http://127.0.0.1:9000;", "worker-src 'self' blob:"} {
		if !strings.Contains(csp, want) {
			t.Errorf("CSP %q lacks %q", csp, want)
		}
	}
	if resp.Header.Get("X-Content-Type-Options") != "nosniff" || resp.Header.Get("Referrer-Policy") != "no-referrer" {
		t.Errorf("headers: %v", resp.Header)
	}
}

// TestCompleteChecksDeclaredSize: parts that add up to more (or less) than
// the upload declared are not joined into an upload.
func TestCompleteChecksDeclaredSize(t *testing.T) {
	m := testenv.StartMinIO(t)
	bucket := m.Bucket(t, "media")
	ui := &console.Console{Store: m.Client, Bucket: bucket, MediaBase: "http://" + m.Options.Endpoint + "/" + bucket}
	srv := httptest.NewServer(ui.Handler())
	defer srv.Close()
	c := client{t, srv.URL}
	var plan struct{ Key, UploadID string }
	c.call("POST", "/ui/api/uploads", map[string]any{"name": "small.mp4", "size": 1000, "type": "video/mp4"}, 200, &plan)
	var signed struct{ URL string }
	c.call("POST", "/ui/api/uploads/sign", map[string]any{"key": plan.Key, "uploadId": plan.UploadID, "part": 1}, 200, &signed)
	req, _ := http.NewRequest("PUT", signed.URL, bytes.NewReader(make([]byte, 64<<10)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("part: %v %v", err, resp)
	}
	resp.Body.Close()
	var refused struct{ Error string }
	c.call("POST", "/ui/api/uploads/complete", map[string]any{"key": plan.Key, "uploadId": plan.UploadID}, 400, &refused)
	if !strings.Contains(refused.Error, "65536 bytes, 1000 were declared") {
		t.Fatalf("refusal: %q", refused.Error)
	}
	if _, err := m.Client.Stat(t.Context(), bucket, plan.Key); err == nil {
		t.Fatal("the oversized upload became an object")
	}
}

// The media answer names a running publish's WHEP endpoint, and for a
// private stream's publish a token for it; a VOD asset gets neither.
func TestMediaNamesWHEP(t *testing.T) {
	ui := &console.Console{MediaBase: "http://127.0.0.1:9000/media", WHEPURL: "/whep",
		WHEPToken: func(stream string) string { return "token-for-" + stream }}
	srv := httptest.NewServer(ui.Handler())
	defer srv.Close()
	for _, tc := range []struct{ id, whep, token string }{
		{"live-cam-1700000000", "/whep/cam", ""},
		{"live-my-cam-1700000000", "/whep/my-cam", ""},
		{"private_live-vip-1700000000", "/whep/vip", "token-for-vip"},
		{"talk-3f2a", "", ""},
		{"private_talk-3f2a", "", ""},
	} {
		resp, err := http.Get(srv.URL + "/ui/api/media/" + tc.id)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]string
		err = json.NewDecoder(resp.Body).Decode(&m)
		resp.Body.Close()
		if err != nil || m["whep"] != tc.whep || m["whepToken"] != tc.token {
			t.Errorf("%s: whep %q token %q (%v), want %q %q", tc.id, m["whep"], m["whepToken"], err, tc.whep, tc.token)
		}
	}
}

// The media answer says which ladder an asset got and each rung's rate,
// once split has written the manifest; before that it names none.
func TestMediaNamesTheLadder(t *testing.T) {
	m := testenv.StartMinIO(t)
	bucket := m.Bucket(t, "media")
	ui := &console.Console{Store: m.Client, Bucket: bucket, MediaBase: "http://127.0.0.1:9000/media"}
	srv := httptest.NewServer(ui.Handler())
	defer srv.Close()
	c := client{t, srv.URL}
	for _, tc := range []struct {
		id   string
		man  *asset.Manifest
		want string
	}{
		{"deck-1", &asset.Manifest{Options: asset.UploadOptions{Ladder: media.LadderContentAware}, Ladder: []media.Rung{
			{Name: "1080p", Width: 1920, Height: 1080, Bitrate: 6_000_000, CRF: 33},
			{Name: "480p", Width: 854, Height: 480, Bitrate: 1_200_000},
			{Name: "vp9-360p", Codec: media.VP9, Width: 640, Height: 360, Bitrate: 59_876},
		}}, "content-aware: 1080p CRF 33 (at most 6 Mb/s), 480p 1.2 Mb/s, vp9-360p 60 kb/s"},
		{"talk-2", &asset.Manifest{Ladder: []media.Rung{{Name: "720p", Width: 1280, Height: 720, Bitrate: 3_000_000}}}, "fixed: 720p 3 Mb/s"},
		{"not-split-yet-3", nil, ""},
	} {
		if tc.man != nil {
			b, err := json.Marshal(tc.man)
			if err != nil {
				t.Fatal(err)
			}
			if err := m.Client.PutBytes(t.Context(), bucket, layout.Asset(tc.id).Manifest(), b, storage.PutOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		var got map[string]string
		c.call("GET", "/ui/api/media/"+tc.id, nil, 200, &got)
		if got["ladder"] != tc.want {
			t.Errorf("%s: ladder %q, want %q", tc.id, got["ladder"], tc.want)
		}
	}
}
