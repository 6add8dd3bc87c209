package catalog

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"math"
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

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/segflow/segflow/shared/asset"
	"github.com/segflow/segflow/shared/layout"
	"github.com/segflow/segflow/shared/media"
	"github.com/segflow/segflow/shared/storage"
	"github.com/segflow/segflow/shared/tagging"
	"github.com/segflow/segflow/shared/testenv"
)

// TestIndexAndSearch runs against the embedded SQLite catalog and against
// a PostgreSQL server the test starts.
func TestIndexAndSearch(t *testing.T) {
	tests := []struct {
		name string
		dsn  func(t *testing.T) string
	}{
		{"sqlite", func(t *testing.T) string { return filepath.Join(t.TempDir(), "catalog.db") }},
		{"postgres", startPostgres},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { indexAndSearch(t, tc.dsn(t)) })
	}
}

// bucketWithJSON starts MinIO with a media bucket and returns a writer of
// JSON objects into it.
func bucketWithJSON(t *testing.T) (*testenv.MinIO, string, func(key string, v any)) {
	m := testenv.StartMinIO(t)
	bucket := m.Bucket(t, "media")
	return m, bucket, func(key string, v any) {
		if err := m.Client.PutJSON(context.Background(), bucket, key, v, storage.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
}

func indexAndSearch(t *testing.T, dsn string) {
	m, bucket, put := bucketWithJSON(t)
	ctx := context.Background()
	for _, id := range []string{"film-a", "film-b"} {
		a := layout.Asset(id)
		man := asset.Manifest{ID: id, Source: "uploads/" + id + ".mp4", Duration: 8, Width: 1280, Height: 720,
			Segments: []asset.Segment{{Index: 0, Duration: 4}, {Index: 1, Start: 4, Duration: 4}}, Created: time.Now().UTC(),
			Ladder: []media.Rung{{Name: "720p", Width: 1280, Height: 720, Bitrate: 3_000_000}}}
		if id == "film-a" {
			man.Options.Ladder, man.Ladder[0].CRF = media.LadderContentAware, 24
		}
		put(a.Manifest(), man)
		st := asset.Status{ID: id, State: asset.StateComplete}
		if id == "film-a" {
			st.SetQuality(0, map[string]media.Quality{"720p": {SSIM: 0.8, MinSSIM: 0.7, PSNR: 29, Frames: 120}}, 0.9)
		}
		put(a.Status(), st)
	}
	put(layout.Asset("film-a").Tags(1), map[string]any{"tags": []tagging.Tag{
		{Kind: "text", Label: "SEGFLOW 2026", Start: 4.5, End: 7.5, Confidence: 0.93, Source: "ocr"},
		{Kind: "black", Label: "black", Start: 7.5, End: 8, Confidence: 1, Source: "video"},
	}})
	put(layout.Asset("film-b").Tags(0), map[string]any{"tags": []tagging.Tag{
		{Kind: "speech", Label: "two three four", Start: 1, End: 2.5, Confidence: 1, Source: "speech"},
		{Kind: "word", Label: "three", Start: 1.5, End: 1.9, Confidence: 0.8, Source: "speech"},
	}})

	c, err := Open(dsn, m.Client, bucket)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if n, err := c.Sync(ctx); err != nil || n != 2 {
		t.Fatalf("Sync = %d, %v", n, err)
	}
	if n, _ := c.Sync(ctx); n != 0 {
		t.Fatalf("second Sync re-indexed %d unchanged assets", n)
	}

	srv := httptest.NewServer((&API{Catalog: c, MediaBase: "http://media.example/media"}).Handler())
	defer srv.Close()
	get := func(path string, v any) int {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if v != nil {
			json.NewDecoder(resp.Body).Decode(v)
		}
		return resp.StatusCode
	}
	var hits []struct {
		Asset, Kind, Snippet, Playback string
		Start, End                     float64
	}
	if code := get("/api/search?q=segflow", &hits); code != 200 || len(hits) != 1 {
		t.Fatalf("search segflow = %d %+v", code, hits)
	}
	h := hits[0]
	if h.Asset != "film-a" || h.Kind != "text" || math.Abs(h.Start-4.5) > 0.5 || math.Abs(h.End-7.5) > 0.5 ||
		h.Playback != "http://media.example/media/assets/film-a/master.m3u8#t=4.500" || h.Snippet != "[SEGFLOW] 2026" {
		t.Fatalf("hit = %+v", h)
	}
	if get("/api/search?q=three", &hits); len(hits) != 1 || hits[0].Asset != "film-b" || hits[0].Start != 1 {
		t.Fatalf("search three = %+v", hits)
	}
	// A quoted phrase matches its words in order and next to each other.
	for q, want := range map[string]int{`"three four"`: 1, `"four three"`: 0, `"two four"`: 0, `two four`: 1} {
		if get("/api/search?q="+url.QueryEscape(q), &hits); len(hits) != want {
			t.Errorf("search %s = %+v, want %d hits", q, hits, want)
		}
	}
	if get(`/api/search?q="unbalanced(`, &hits); len(hits) != 0 {
		t.Fatalf("odd query = %+v", hits)
	}
	if code := get("/api/search?q=", nil); code != 400 {
		t.Fatalf("empty q = %d", code)
	}
	var list []Asset
	if get("/api/assets", &list); len(list) != 2 {
		t.Fatalf("assets = %+v", list)
	}
	var d Detail
	if code := get("/api/assets/film-a", &d); code != 200 || len(d.Tags) != 2 || d.State != "complete" || d.Segments != 2 {
		t.Fatalf("detail = %d %+v", code, d)
	}
	// The qa stage's scores and warning, from the status, and the gauge
	// that counts warned assets.
	if q := d.Quality["720p"]; q.SSIM != 0.8 || q.Segments != 1 || d.QualityWarning != "720p mean SSIM 0.8000 under the floor 0.9" {
		t.Fatalf("detail quality %+v, warning %q", d.Quality, d.QualityWarning)
	}
	// Which ladder chose the rates: the upload's option, fixed unless named.
	ladders := map[string]string{}
	for _, a := range list {
		ladders[a.ID] = a.Ladder
	}
	if d.Ladder != media.LadderContentAware || ladders["film-a"] != media.LadderContentAware || ladders["film-b"] != media.LadderFixed {
		t.Fatalf("ladders: detail %q, list %v", d.Ladder, ladders)
	}
	reg := prometheus.NewRegistry()
	c.RegisterMetrics(reg)
	if n, err := testutil.GatherAndCount(reg, "segflow_catalog_assets_quality_warning"); err != nil || n != 1 {
		t.Fatalf("gauge: %d series, %v", n, err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if v := mf.GetMetric()[0].GetGauge().GetValue(); mf.GetName() == "segflow_catalog_assets_quality_warning" && v != 1 ||
			mf.GetName() == "segflow_catalog_assets" && v != 2 {
			t.Errorf("%s = %v", mf.GetName(), v)
		}
	}
	if code := get("/api/assets/nope", nil); code != 404 {
		t.Fatalf("missing asset = %d", code)
	}
	// A change in the bucket reaches the index on the next sync.
	put(layout.Asset("film-b").Status(), asset.Status{ID: "film-b", State: asset.StateFailed, Error: "split: boom"})
	if n, _ := c.Sync(ctx); n != 1 {
		t.Fatalf("changed asset not re-indexed (%d)", n)
	}
	if d, _ := c.Get(ctx, "film-b"); d.State != "failed" || d.Error != "split: boom" {
		t.Fatalf("after change: %+v", d)
	}
}

// startPostgres runs a throwaway PostgreSQL server (Debian's packages) on a
// free port and returns its URL. As root it runs the server as the
// postgres user, which PostgreSQL insists on.
func startPostgres(t *testing.T) string { return startPostgresWith(t, false) }

// startPostgresDurable is startPostgres with fsync on, as a server that
// keeps its data runs: for the ingest rate a benchmark reports.
func startPostgresDurable(t testing.TB) string { return startPostgresWith(t, true) }

func startPostgresWith(t testing.TB, durable bool) string {
	t.Helper()
	bin := ""
	if m, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb"); len(m) > 0 {
		bin = filepath.Dir(m[len(m)-1])
	} else if p, err := exec.LookPath("initdb"); err == nil {
		bin = filepath.Dir(p)
	} else {
		t.Fatal("PostgreSQL server not installed: run scripts/setup.sh")
	}
	dir, err := os.MkdirTemp("", "segflow-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	run := func(args ...string) {
		t.Helper()
		cmd := exec.Command(args[0], args[1:]...)
		if os.Geteuid() == 0 {
			cmd = exec.Command("runuser", append([]string{"-u", "postgres", "--"}, args...)...)
		}
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
	}
	if os.Geteuid() == 0 {
		if out, err := exec.Command("chown", "postgres", dir).CombinedOutput(); err != nil {
			t.Fatalf("chown: %v %s", err, out)
		}
	}
	data := filepath.Join(dir, "data")
	run(filepath.Join(bin, "initdb"), "-D", data, "-A", "trust", "-U", "segflow", "--no-sync")
	port := strings.TrimPrefix(testenv.FreeAddr(t), "127.0.0.1:")
	opts := "-p " + port + " -k " + dir + " -c listen_addresses=127.0.0.1"
	if !durable {
		opts += " -c fsync=off"
	}
	run(filepath.Join(bin, "pg_ctl"), "-D", data, "-l", filepath.Join(dir, "log"), "-w", "-o", opts, "start")
	t.Cleanup(func() {
		cmd := exec.Command(filepath.Join(bin, "pg_ctl"), "-D", data, "-m", "immediate", "stop")
		if os.Geteuid() == 0 {
			cmd = exec.Command("runuser", "-u", "postgres", "--", filepath.Join(bin, "pg_ctl"), "-D", data, "-m", "immediate", "stop")
		}
		cmd.Run()
	})
	return "postgres://segflow@127.0.0.1:" + port + "/postgres?sslmode=disable"
}

// TestSettledAssetsAreCheckedSeldom: a finished asset whose status has been
// quiet is looked at again only every recheck, so a large library costs
// MinIO nothing between polls; an asset still processing is looked at on
// every Sync.
func TestSettledAssetsAreCheckedSeldom(t *testing.T) {
	m, bucket, put := bucketWithJSON(t)
	ctx := context.Background()
	put(layout.Asset("done").Status(), asset.Status{ID: "done", State: asset.StateComplete})
	put(layout.Asset("busy").Status(), asset.Status{ID: "busy", State: asset.StateProcessing})
	c, err := Open(filepath.Join(t.TempDir(), "catalog.db"), m.Client, bucket)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.settleAfter, c.recheck = 0, time.Hour
	if n, err := c.Sync(ctx); err != nil || n != 2 {
		t.Fatalf("first Sync = %d, %v", n, err)
	}
	if n, err := c.Sync(ctx); err != nil || n != 0 { // finds "done" settled
		t.Fatalf("second Sync = %d, %v", n, err)
	}
	tag := map[string]any{"tags": []tagging.Tag{{Kind: "text", Label: "late", Start: 1, End: 2, Confidence: 1, Source: "ocr"}}}
	put(layout.Asset("done").Tags(0), tag)
	put(layout.Asset("busy").Tags(0), tag)
	if n, err := c.Sync(ctx); err != nil || n != 1 {
		t.Fatalf("Sync after both changed = %d, %v; want only the busy asset", n, err)
	}
	c.recheck = 0
	if n, err := c.Sync(ctx); err != nil || n != 1 {
		t.Fatalf("Sync once the recheck is due = %d, %v; want the settled asset's change", n, err)
	}
}

// TestOpenMigratesOlderCatalog opens a SQLite catalog an older segflow
// made (no quality or ladder columns) and indexes into it.
func TestOpenMigratesOlderCatalog(t *testing.T) {
	m, bucket, put := bucketWithJSON(t)
	path := filepath.Join(t.TempDir(), "catalog.db")
	old, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := old.Exec(`CREATE TABLE assets (id TEXT PRIMARY KEY, source TEXT, state TEXT, error TEXT, duration REAL,
  width INTEGER, height INTEGER, live BOOLEAN, renditions TEXT, segments INTEGER, created TEXT, updated TEXT, fingerprint TEXT)`); err != nil {
		t.Fatal(err)
	}
	old.Close()
	put(layout.Asset("film-c").Status(), asset.Status{ID: "film-c", State: asset.StateComplete, QualityWarning: "360p mean SSIM 0.8 under the floor 0.9"})
	put(layout.Asset("film-c").Manifest(), asset.Manifest{ID: "film-c", Ladder: []media.Rung{{Name: "360p", Width: 640, Height: 360, Bitrate: 700_000}}})
	c, err := Open(path, m.Client, bucket)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if n, err := c.Sync(context.Background()); err != nil || n != 1 {
		t.Fatalf("Sync = %d, %v", n, err)
	}
	if d, err := c.Get(context.Background(), "film-c"); err != nil || d.QualityWarning == "" || d.Ladder != media.LadderFixed {
		t.Fatalf("Get = %+v, %v", d, err)
	}
}

// TestAssetsPages: /api/assets hands the list out newest first, a page at
// a time, each page naming the next in its Link header; every asset comes
// once; a cursor the catalog did not make is refused.
func TestAssetsPages(t *testing.T) {
	for _, tc := range []struct {
		name string
		dsn  func(t *testing.T) string
	}{
		{"sqlite", func(t *testing.T) string { return filepath.Join(t.TempDir(), "catalog.db") }},
		{"postgres", startPostgres},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Open(tc.dsn(t), nil, "media")
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			at := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
			var want []string
			for i := range 7 {
				id := fmt.Sprintf("a%d", i)
				// two share a creation time: the id breaks the tie
				created := at.Add(time.Duration(i/2*2) * time.Minute)
				if err := c.write(context.Background(), id, "fp", &asset.Status{State: "complete"},
					&asset.Manifest{ID: id, Created: created}, nil); err != nil {
					t.Fatal(err)
				}
				want = append([]string{id}, want...)
			}
			h := (&API{Catalog: c, MediaBase: "http://m/media"}).Handler()
			var got []string
			next := "/api/assets?limit=3"
			for pages := 0; next != ""; pages++ {
				if pages > 5 {
					t.Fatal("pages never end")
				}
				w := httptest.NewRecorder()
				h.ServeHTTP(w, httptest.NewRequest("GET", next, nil))
				if w.Code != 200 {
					t.Fatalf("%s: %d %s", next, w.Code, w.Body)
				}
				var page []Asset
				if err := json.Unmarshal(w.Body.Bytes(), &page); err != nil {
					t.Fatal(err)
				}
				for _, a := range page {
					got = append(got, a.ID)
				}
				next = ""
				if l := w.Header().Get("Link"); l != "" {
					next = strings.TrimSuffix(strings.TrimPrefix(l, "<"), `>; rel="next"`)
				}
			}
			if strings.Join(got, ",") != strings.Join(want, ",") {
				t.Errorf("pages gave %v, want %v", got, want)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, httptest.NewRequest("GET", "/api/assets?after=bm90LWEtY3Vyc29y", nil))
			if w.Code != http.StatusBadRequest {
				t.Errorf("a forged cursor: %d, want 400", w.Code)
			}
		})
	}
}

// TestSearchRowsFollowTheirAsset: a catalog whose search rows were
// numbered apart from its tag rows (before schema version 1) is rebuilt
// on Open, and from then on re-indexing an asset replaces its search rows
// and no other asset's.
func TestSearchRowsFollowTheirAsset(t *testing.T) {
	path := filepath.Join(t.TempDir(), "catalog.db")
	old, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`CREATE TABLE tags (asset TEXT, kind TEXT, label TEXT, start_s REAL, end_s REAL, confidence REAL, source TEXT)`,
		`CREATE VIRTUAL TABLE tags_fts USING fts5(label, kind UNINDEXED, asset UNINDEXED, start_s UNINDEXED, end_s UNINDEXED)`,
		`INSERT INTO tags VALUES ('a', 'text', 'alpha sign', 1, 2, 1, 'ocr'), ('b', 'text', 'beta sign', 1, 2, 1, 'ocr')`,
		// the old layout: search rows in another order, other numbers
		`INSERT INTO tags_fts (rowid, label, kind, asset, start_s, end_s) VALUES (7, 'beta sign', 'text', 'b', 1, 2), (9, 'alpha sign', 'text', 'a', 1, 2)`,
	} {
		if _, err := old.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	old.Close()
	c, err := Open(path, nil, "media")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	if err := c.write(ctx, "a", "fp2", &asset.Status{State: "complete"}, &asset.Manifest{ID: "a"},
		[]tagging.Tag{{Kind: "text", Label: "gamma sign", Start: 3, End: 4}}); err != nil {
		t.Fatal(err)
	}
	for q, want := range map[string]string{"alpha": "", "gamma": "a", "beta": "b", "sign": "a,b"} {
		hits, err := c.Search(ctx, q, 10)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, h := range hits {
			got = append(got, h.Asset)
		}
		slices.Sort(got)
		if strings.Join(got, ",") != want {
			t.Errorf("search %q found %v, want %q", q, got, want)
		}
	}
}

// TestSearchPrefersTheWordAsWritten: a word finds itself before the longer
// words it starts, which only fill what is left of the page.
func TestSearchPrefersTheWordAsWritten(t *testing.T) {
	c, err := Open(filepath.Join(t.TempDir(), "catalog.db"), nil, "media")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	if err := c.write(ctx, "a", "fp", &asset.Status{State: "complete"}, &asset.Manifest{ID: "a"}, []tagging.Tag{
		{Kind: "text", Label: "car", Start: 1, End: 2},
		{Kind: "text", Label: "cards cards cards", Start: 3, End: 4},
		{Kind: "text", Label: "carbon", Start: 5, End: 6},
	}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		q     string
		limit int
		want  string
	}{{"car", 1, "1"}, {"car", 10, "1,3,5"}, {"card", 10, "3"}} {
		hits, err := c.Search(ctx, tc.q, tc.limit)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, h := range hits {
			got = append(got, fmt.Sprint(h.Start))
		}
		if first := strings.Join(got, ","); (tc.limit == 1 && first != tc.want) || (tc.limit > 1 && !sameSet(got, strings.Split(tc.want, ","))) {
			t.Errorf("search %q (limit %d) = %v, want %s", tc.q, tc.limit, got, tc.want)
		}
	}
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// TestPostgresSearchIndexWritesAtOnce: the GIN index takes new rows as
// they are written (fastupdate off), also on a catalog made before with
// PostgreSQL's default, whose pending list is merged on Open: with it on,
// every search read through up to 4 MB of rows not yet merged.
func TestPostgresSearchIndexWritesAtOnce(t *testing.T) {
	dsn := startPostgres(t)
	old, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`CREATE TABLE tags (id BIGSERIAL, asset TEXT, kind TEXT, label TEXT, start_s DOUBLE PRECISION, end_s DOUBLE PRECISION,
			confidence DOUBLE PRECISION, source TEXT, tsv tsvector GENERATED ALWAYS AS (to_tsvector('simple', label)) STORED)`,
		`CREATE INDEX tags_tsv ON tags USING GIN (tsv)`,
		`INSERT INTO tags (asset, kind, label, start_s, end_s) VALUES ('a', 'text', 'alpha sign', 1, 2)`,
	} {
		if _, err := old.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	old.Close()
	c, err := Open(dsn, nil, "media")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var opts string
	if err := c.db.QueryRow(`SELECT coalesce(array_to_string(reloptions, ','), '') FROM pg_class WHERE relname = 'tags_tsv'`).Scan(&opts); err != nil {
		t.Fatal(err)
	}
	if opts != "fastupdate=off" {
		t.Errorf("tags_tsv options %q, want fastupdate=off", opts)
	}
	var pending int
	if err := c.db.QueryRow(`SELECT gin_clean_pending_list('tags_tsv')`).Scan(&pending); err != nil {
		t.Fatal(err)
	}
	if pending != 0 {
		t.Errorf("%d pending pages merged after Open, want none left", pending)
	}
	hits, err := c.Search(context.Background(), `"alpha sign"`, 10)
	if err != nil || len(hits) != 1 {
		t.Fatalf("search: %v %v", hits, err)
	}
}
