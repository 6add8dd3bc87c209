package catalog

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/segflow/segflow/shared/asset"
	"github.com/segflow/segflow/shared/tagging"
)

// BenchmarkCatalogAtSize fills the catalog with synthetic assets, tags and
// transcript text (SEGFLOW_CATALOG_TAGS tag rows, default 10^6; the
// issue's size is 10^7) through the indexing path, in SQLite and in
// PostgreSQL, and reports the ingest rate and /api/search p50/p99 for a
// common word, a rare word and a phrase, and /api/assets paging.
func BenchmarkCatalogAtSize(b *testing.B) {
	rows := 1_000_000
	if v, err := strconv.Atoi(os.Getenv("SEGFLOW_CATALOG_TAGS")); err == nil && v > 0 {
		rows = v
	}
	for _, be := range []struct {
		name string
		dsn  func(testing.TB) string
	}{
		// SEGFLOW_CATALOG_KEEP names a SQLite file to fill once and
		// query again on later runs (no ingest figure then).
		{"sqlite", func(t testing.TB) string {
			if keep := os.Getenv("SEGFLOW_CATALOG_KEEP"); keep != "" {
				return keep
			}
			return filepath.Join(t.TempDir(), "catalog.db")
		}},
		{"postgres", func(t testing.TB) string { return startPostgresDurable(t) }},
	} {
		b.Run(be.name, func(b *testing.B) { catalogAtSize(b, be.dsn(b), rows) })
	}
}

// tagsPerAsset: 20 objects, 20 on-screen texts, 60 utterances.
const tagsPerAsset = 100

func catalogAtSize(b *testing.B, dsn string, rows int) {
	ctx := context.Background()
	c, err := Open(dsn, nil, "media")
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	corpus := newCorpus()
	assets := rows / tagsPerAsset
	began := time.Now()
	created := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var have int
	_ = c.db.QueryRow(`SELECT count(*) FROM assets`).Scan(&have)
	for i := range assets {
		if have == assets {
			break // a kept catalog, filled by an earlier run
		}
		id := fmt.Sprintf("asset-%07d", i)
		at := created.Add(time.Duration(i) * time.Minute)
		man := &asset.Manifest{ID: id, Source: "uploads/" + id + ".mp4", Duration: 600, Width: 1920, Height: 1080, Created: at}
		st := &asset.Status{Source: man.Source, State: "complete", Updated: at}
		if err := c.write(ctx, id, "fp", st, man, corpus.asset(i)); err != nil {
			b.Fatal(err)
		}
		if i > 0 && i%(assets/10) == 0 {
			b.Logf("%d tags in %v", i*tagsPerAsset, time.Since(began).Round(time.Second))
		}
	}
	ingestRate := 0.0 // reported after ResetTimer, which drops the metrics reported before it
	if have != assets {
		ingest := time.Since(began)
		b.Logf("%d tags in %v", assets*tagsPerAsset, ingest.Round(time.Second))
		ingestRate = float64(assets*tagsPerAsset) / ingest.Seconds()
	}

	if c.d.driver == "pgx" {
		// What autovacuum does to a table that grew by inserts, before
		// the queries, as a catalog in service has had it done: the
		// statistics, on which the planner's choice between the GIN index
		// (a rare word) and the id index walked back (a common one) rests;
		// and the vacuum, which sets the rows' hint bits and flushes the
		// GIN index's pending list. Without it, the first query to read a
		// page of fresh rows writes it back (a phrase's p99: 148 ms in one
		// run, 49 in another, with autovacuum running beside the queries).
		if _, err := c.db.Exec(`VACUUM ANALYZE`); err != nil {
			b.Fatal(err)
		}
	}
	if os.Getenv("SEGFLOW_CATALOG_EXPLAIN") != "" {
		explain(b, c, corpus)
	}
	h := (&API{Catalog: c, MediaBase: "http://media.example/media"}).Handler()
	get := func(path string) (time.Duration, int) {
		req := httptest.NewRequest(http.MethodGet, path, nil)
		w := httptest.NewRecorder()
		t0 := time.Now()
		h.ServeHTTP(w, req)
		d := time.Since(t0)
		if w.Code != http.StatusOK {
			b.Fatalf("%s: %d %s", path, w.Code, w.Body.String())
		}
		return d, strings.Count(w.Body.String(), `"asset"`) + strings.Count(w.Body.String(), `"id"`)
	}
	b.ResetTimer()
	if ingestRate > 0 {
		b.ReportMetric(ingestRate, "ingest-tags/s")
	}
	for _, kind := range []string{"common", "rare", "phrase"} {
		var lat []time.Duration
		found := 0
		for i := range 200 {
			d, n := get("/api/search?q=" + url.QueryEscape(corpus.query(kind, i)))
			lat = append(lat, d)
			found += n
		}
		report(b, "search-"+kind, lat)
		if found == 0 {
			b.Fatalf("%s queries found nothing", kind)
		}
	}
	var first, deep []time.Duration
	for range 100 {
		d, _ := get("/api/assets?limit=50")
		first = append(first, d)
	}
	for i := range 100 {
		// A page deep in the list: the one after the asset at the i-th
		// percent of the library.
		d, _ := get("/api/assets?limit=50&after=" + url.QueryEscape(pageCursor(created, assets, i)))
		deep = append(deep, d)
	}
	report(b, "assets-first-page", first)
	report(b, "assets-deep-page", deep)
}

// pageCursor names the asset at i percent down the newest-first list.
func pageCursor(created time.Time, assets, i int) string {
	n := assets - 1 - assets*i/100
	return assetCursor(Asset{ID: fmt.Sprintf("asset-%07d", n), Created: created.Add(time.Duration(n) * time.Minute)})
}

func report(b *testing.B, name string, lat []time.Duration) {
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, name+"-p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, name+"-p99-ms")
}

// corpus makes deterministic synthetic tags: words drawn from a Zipf
// distribution over a made-up vocabulary (as real speech and on-screen
// text are), with a few phrases planted in some utterances.
type corpus struct {
	vocab   []string
	objects []string
	phrases []string
	rng     *rand.Rand
	zipf    *rand.Zipf
	objZipf *rand.Zipf
}

const vocabSize = 20000

func newCorpus() *corpus {
	syl := []string{"ka", "lo", "mi", "ne", "su", "ta", "ri", "po", "ve", "du", "an", "el", "or", "is", "um", "ba", "ge", "ho", "ju", "zo"}
	c := &corpus{rng: rand.New(rand.NewPCG(1, 2))}
	seen := map[string]bool{}
	for i := 0; len(c.vocab) < vocabSize; i++ {
		n := 2 + i%3
		var w strings.Builder
		x := i
		for range n {
			w.WriteString(syl[x%len(syl)])
			x /= len(syl)
		}
		w.WriteString(syl[(i*7+3)%len(syl)])
		if s := w.String(); !seen[s] {
			seen[s] = true
			c.vocab = append(c.vocab, s)
		}
	}
	c.objects = c.vocab[:500]
	for i := range 20 {
		c.phrases = append(c.phrases, c.vocab[200+i]+" "+c.vocab[300+i])
	}
	c.zipf = rand.NewZipf(c.rng, 1.07, 2, vocabSize-1)
	c.objZipf = rand.NewZipf(c.rng, 1.2, 1, uint64(len(c.objects)-1))
	return c
}

func (c *corpus) words(n int) string {
	ws := make([]string, n)
	for i := range ws {
		ws[i] = c.vocab[c.zipf.Uint64()]
	}
	return strings.Join(ws, " ")
}

func (c *corpus) asset(i int) []tagging.Tag {
	tags := make([]tagging.Tag, 0, tagsPerAsset)
	t := 0.0
	for range 20 {
		tags = append(tags, tagging.Tag{Kind: "object", Label: c.objects[c.objZipf.Uint64()], Start: t, End: t + 5, Confidence: 0.8, Source: "yolo"})
		tags = append(tags, tagging.Tag{Kind: "text", Label: c.words(2 + c.rng.IntN(3)), Start: t, End: t + 5, Confidence: 0.9, Source: "tesseract"})
		t += 10
	}
	for j := range 60 {
		text := c.words(8 + c.rng.IntN(5))
		// One utterance in 200 carries a planted phrase.
		if (i*60+j)%200 == 7 {
			text += " " + c.phrases[(i*60+j)/200%len(c.phrases)] + " " + c.words(2)
		}
		tags = append(tags, tagging.Tag{Kind: "speech", Label: text, Start: float64(j) * 10, End: float64(j)*10 + 9, Confidence: 0.7, Source: "pocketsphinx"})
	}
	return tags
}

// query is the i-th query of a kind: common words (the most frequent
// ones), rare ones (seen a handful of times in 10^7 rows), or a planted
// phrase in quotes.
func (c *corpus) query(kind string, i int) string {
	switch kind {
	case "common":
		return c.vocab[2+i%10]
	case "rare":
		return c.vocab[15000+i]
	default:
		return `"` + c.phrases[i%len(c.phrases)] + `"`
	}
}

// explain logs each search kind's query plan (SEGFLOW_CATALOG_EXPLAIN=1):
// EXPLAIN ANALYZE on PostgreSQL, EXPLAIN QUERY PLAN on SQLite.
func explain(b *testing.B, c *Catalog, corpus *corpus) {
	how := "EXPLAIN QUERY PLAN "
	if c.d.driver == "pgx" {
		how = "EXPLAIN ANALYZE "
	}
	for _, kind := range []string{"common", "rare", "phrase"} {
		rows, err := c.db.Query(how+c.q(c.d.search), c.d.query(corpus.query(kind, 0), false), 50)
		if err != nil {
			b.Fatal(err)
		}
		cols, _ := rows.Columns()
		var plan []string
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				b.Fatal(err)
			}
			plan = append(plan, fmt.Sprint(vals...))
		}
		rows.Close()
		// stderr: a benchmark's log is cut to a few lines
		fmt.Fprintf(os.Stderr, "%s %s:\n%s\n", kind, corpus.query(kind, 0), strings.Join(plan, "\n"))
	}
}
