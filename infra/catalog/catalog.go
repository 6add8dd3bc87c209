// Package catalog indexes every asset (state, renditions, segments, tags,
// transcript) in an embedded SQLite database with FTS5, so "where in which
// video does X happen or get said" is one query. SQLite (modernc.org/sqlite,
// pure Go) over bleve: one file, transactions, and FTS5's ranking and
// snippets, with no cgo and nothing to run beside the gateway. Given a
// postgres:// URL it uses PostgreSQL (pgx) instead, with tsvector search,
// so several gateways share one catalog.
//
// The index is a cache of the bucket: Sync reads what changed there and
// rewrites those assets' rows, so losing the database loses nothing.
package catalog

import (
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"
	_ "modernc.org/sqlite"

	"github.com/segflow/segflow/shared/asset"
	"github.com/segflow/segflow/shared/layout"
	"github.com/segflow/segflow/shared/storage"
	"github.com/segflow/segflow/shared/tagging"
)

// Catalog is the index.
type Catalog struct {
	db     *sql.DB
	d      dialect
	store  *storage.Client
	bucket string
	mu     sync.Mutex // one writer

	stopWatch context.CancelFunc // nil until Watch
	watching  sync.WaitGroup

	// A finished asset whose status has not changed for settleAfter is
	// settled: Sync looks at it again only every recheck, so a library's
	// idle cost is its active assets, not three requests per asset every
	// poll. settled holds when each was last found settled.
	settleAfter, recheck time.Duration
	settledMu            sync.Mutex
	settled              map[string]time.Time
}

// Open opens (creating) the catalog: a SQLite file at path, or the
// PostgreSQL database of a postgres:// URL.
func Open(path string, store *storage.Client, bucket string) (*Catalog, error) {
	d, dsn := sqliteDialect, path+"?_pragma=busy_timeout(5000)"
	if strings.HasPrefix(path, "postgres://") || strings.HasPrefix(path, "postgresql://") {
		d, dsn = postgresDialect, path
	}
	db, err := sql.Open(d.driver, dsn)
	if err != nil {
		return nil, fmt.Errorf("catalog: %w", err)
	}
	if _, err := db.Exec(d.schema); err != nil {
		db.Close()
		return nil, fmt.Errorf("catalog: schema: %w", err)
	}
	for _, m := range d.migrate {
		_, _ = db.Exec(m) // fails once done: see dialect.migrate
	}
	if err := upgrade(db, d); err != nil {
		db.Close()
		return nil, fmt.Errorf("catalog: upgrade: %w", err)
	}
	return &Catalog{db: db, d: d, store: store, bucket: bucket,
		settleAfter: 30 * time.Second, recheck: time.Minute, settled: map[string]time.Time{}}, nil
}

func (c *Catalog) q(query string) string { return c.d.rebind(query) }

// schemaVersion is the catalog layout this segflow writes (SQLite's
// user_version): 1 keys each search row by its tag row's id.
const schemaVersion = 1

// upgrade runs the dialect's rebuild once on a catalog from before
// schemaVersion.
func upgrade(db *sql.DB, d dialect) error {
	if len(d.rebuild) == 0 {
		return nil
	}
	var v int
	if err := db.QueryRow(`PRAGMA user_version`).Scan(&v); err != nil {
		return err
	}
	if v >= schemaVersion {
		return nil
	}
	tx, err := db.Begin()
	if err != nil {
		return err
	}
	defer tx.Rollback()
	for _, q := range append(d.rebuild, fmt.Sprintf(`PRAGMA user_version = %d`, schemaVersion)) {
		if _, err := tx.Exec(q); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// Close stops Watch's syncing, waits for it, and closes the database.
func (c *Catalog) Close() error {
	if c.stopWatch != nil {
		c.stopWatch()
	}
	c.watching.Wait()
	return c.db.Close()
}

// Sync indexes the assets whose status or tags changed since last time.
func (c *Catalog) Sync(ctx context.Context) (int, error) {
	objs, err := c.store.List(ctx, c.bucket, layout.AssetsPrefix, storage.ListOptions{})
	if err != nil {
		return 0, err
	}
	n := 0
	for _, o := range objs {
		id := strings.TrimSuffix(strings.TrimPrefix(o.Key, layout.AssetsPrefix), "/")
		if id == "" || strings.Contains(id, "/") || id == layout.ChannelsFolder {
			continue // live channels are playlists of other assets' segments
		}
		now := time.Now()
		c.settledMu.Lock()
		at, ok := c.settled[id]
		c.settledMu.Unlock()
		if ok && now.Sub(at) < c.recheck {
			continue
		}
		changed, settled, err := c.syncAsset(ctx, id, now)
		if err != nil {
			return n, fmt.Errorf("catalog: %s: %w", id, err)
		}
		c.settledMu.Lock()
		if settled {
			c.settled[id] = now
		} else {
			delete(c.settled, id)
		}
		c.settledMu.Unlock()
		if changed {
			n++
		}
	}
	return n, nil
}

// fingerprint is what tells an asset changed: the ETags of its status
// and its tags. statusAt is when the status was last written (zero when
// there is none).
func (c *Catalog) fingerprint(ctx context.Context, id string) (fp string, statusAt time.Time, err error) {
	a := layout.Asset(id)
	var parts []string
	for i, k := range []string{a.Status(), a.Tags(-1)} {
		info, err := c.store.Stat(ctx, c.bucket, k)
		switch {
		case errors.Is(err, storage.ErrNotFound):
			parts = append(parts, "-")
		case err != nil:
			return "", time.Time{}, err
		default:
			parts = append(parts, info.ETag)
			if i == 0 {
				statusAt = info.LastModified
			}
		}
	}
	tags, err := c.store.List(ctx, c.bucket, a.Prefix()+"tags/", storage.ListOptions{})
	if err != nil {
		return "", time.Time{}, err
	}
	parts = append(parts, fmt.Sprint(len(tags)))
	return strings.Join(parts, ","), statusAt, nil
}

// syncAsset re-indexes the asset if its fingerprint changed. It is
// settled when it was already indexed as it is, finished, and its status
// has been quiet for settleAfter.
func (c *Catalog) syncAsset(ctx context.Context, id string, now time.Time) (changed, settled bool, err error) {
	fp, statusAt, err := c.fingerprint(ctx, id)
	if err != nil {
		return false, false, err
	}
	var old string
	var state sql.NullString
	_ = c.db.QueryRowContext(ctx, c.q(`SELECT fingerprint, state FROM assets WHERE id = ?`), id).Scan(&old, &state)
	if old == fp {
		finished := state.String == asset.StateComplete || state.String == asset.StateFailed
		return false, finished && !statusAt.IsZero() && now.Sub(statusAt) >= c.settleAfter, nil
	}
	st, err := asset.ReadStatus(ctx, c.store, c.bucket, id)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return false, false, err
	}
	m, err := asset.ReadManifest(ctx, c.store, c.bucket, id)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return false, false, err
	}
	tags, err := c.segmentTags(ctx, id)
	if err != nil {
		return false, false, err
	}
	return true, false, c.write(ctx, id, fp, st, m, tags)
}

// segmentTags reads the asset's merged tags (tags/asset.json) once aitag
// has written them, and until then every tags/<n>.json there is, joined
// across seams as aitag's merge does, so that text on screen across a cut
// is one hit and not one per segment.
func (c *Catalog) segmentTags(ctx context.Context, id string) ([]tagging.Tag, error) {
	objs, err := c.store.List(ctx, c.bucket, layout.Asset(id).Prefix()+"tags/", storage.ListOptions{})
	if err != nil {
		return nil, err
	}
	for _, o := range objs {
		if strings.HasSuffix(o.Key, "/asset.json") {
			objs = []storage.Info{o}
			break
		}
	}
	var out []tagging.Tag
	for _, o := range objs {
		b, err := c.store.GetBytes(ctx, c.bucket, o.Key)
		if err != nil {
			return nil, err
		}
		var st struct {
			Tags []tagging.Tag `json:"tags"`
		}
		if json.Unmarshal(b, &st) == nil {
			out = append(out, st.Tags...)
		}
	}
	return tagging.Merge(out, 0.1), nil
}

func (c *Catalog) write(ctx context.Context, id, fp string, st *asset.Status, m *asset.Manifest, tags []tagging.Tag) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	tx, err := c.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	row := Asset{ID: id}
	if st != nil {
		row.Source, row.State, row.Error, row.Updated = st.Source, st.State, st.Error, st.Updated
	}
	if m != nil {
		row.Source, row.Duration, row.Width, row.Height, row.Live, row.Created = m.Source, m.Duration, m.Width, m.Height, m.Live, m.Created
		row.Segments = len(m.Segments)
		for _, r := range m.Ladder {
			row.Renditions = append(row.Renditions, r.Name)
		}
		if len(m.Ladder) > 0 {
			row.Ladder = m.LadderKind()
		}
	}
	if st != nil {
		row.Quality, row.QualityWarning = st.Quality, st.QualityWarning
	}
	rend, _ := json.Marshal(row.Renditions)
	quality, _ := json.Marshal(row.Quality)
	if _, err := tx.ExecContext(ctx, c.q(c.d.upsert), id, row.Source, row.State, row.Error, row.Duration, row.Width, row.Height,
		row.Live, string(rend), row.Segments, row.Created.Format(time.RFC3339), row.Updated.Format(time.RFC3339), fp,
		string(quality), row.QualityWarning, row.Ladder); err != nil {
		return err
	}
	for _, q := range []string{c.d.clearFTS, `DELETE FROM tags WHERE asset = ?`} {
		if q == "" {
			continue
		}
		if _, err := tx.ExecContext(ctx, c.q(q), id); err != nil {
			return err
		}
	}
	if c.d.insertTags != "" {
		if err := c.insertTagsAtOnce(ctx, tx, id, tags); err != nil {
			return err
		}
		return tx.Commit()
	}
	// Each statement prepared once per asset, not once per tag: an asset
	// has hundreds of tags.
	insTag, err := tx.PrepareContext(ctx, c.q(`INSERT INTO tags (asset, kind, label, start_s, end_s, confidence, source) VALUES (?,?,?,?,?,?,?)`))
	if err != nil {
		return err
	}
	defer insTag.Close()
	var insFTS *sql.Stmt
	if c.d.insertFTS != "" {
		if insFTS, err = tx.PrepareContext(ctx, c.q(c.d.insertFTS)); err != nil {
			return err
		}
		defer insFTS.Close()
	}
	for _, t := range tags {
		res, err := insTag.ExecContext(ctx, id, t.Kind, t.Label, t.Start, t.End, t.Confidence, t.Source)
		if err != nil {
			return err
		}
		// The utterances carry the words for search.
		if t.Kind == "word" || insFTS == nil {
			continue
		}
		row, err := res.LastInsertId()
		if err != nil {
			return err
		}
		if _, err := insFTS.ExecContext(ctx, row, t.Label, t.Kind, id, t.Start, t.End); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// insertTagsAtOnce writes an asset's tags with one statement (the
// dialect's insertTags, of column arrays): a round trip per tag to a
// PostgreSQL server held ingest near 7,700 tags/s.
func (c *Catalog) insertTagsAtOnce(ctx context.Context, tx *sql.Tx, id string, tags []tagging.Tag) error {
	kinds, labels, sources := make([]string, len(tags)), make([]string, len(tags)), make([]string, len(tags))
	starts, ends, confs := make([]float64, len(tags)), make([]float64, len(tags)), make([]float64, len(tags))
	for i, t := range tags {
		kinds[i], labels[i], sources[i] = t.Kind, t.Label, t.Source
		starts[i], ends[i], confs[i] = t.Start, t.End, t.Confidence
	}
	_, err := tx.ExecContext(ctx, c.q(c.d.insertTags), id, kinds, labels, starts, ends, confs, sources)
	return err
}

// Asset is an asset's catalog row.
type Asset struct {
	ID         string    `json:"id"`
	Source     string    `json:"source"`
	State      string    `json:"state"`
	Error      string    `json:"error,omitempty"`
	Duration   float64   `json:"duration"`
	Width      int       `json:"width"`
	Height     int       `json:"height"`
	Live       bool      `json:"live"`
	Renditions []string  `json:"renditions"`
	Segments   int       `json:"segments"`
	Created    time.Time `json:"created"`
	Updated    time.Time `json:"updated"`
	// Quality is each rendition's quality so far (the qa stage's, from
	// status.json) and QualityWarning names those under the SSIM floor.
	Quality        map[string]asset.RungQuality `json:"quality,omitempty"`
	QualityWarning string                       `json:"qualityWarning,omitempty"`
	// Ladder is what chose the rungs' rates: media.LadderFixed or
	// media.LadderContentAware ("" before split has, or with no video).
	Ladder string `json:"ladder,omitempty"`
}

func scanAsset(s interface{ Scan(...any) error }) (Asset, error) {
	var a Asset
	var rend, created, updated string
	var errText, quality, warning, ladder sql.NullString
	if err := s.Scan(&a.ID, &a.Source, &a.State, &errText, &a.Duration, &a.Width, &a.Height, &a.Live, &rend, &a.Segments, &created, &updated,
		&quality, &warning, &ladder); err != nil {
		return a, err
	}
	a.Error, a.QualityWarning, a.Ladder = errText.String, warning.String, ladder.String
	_ = json.Unmarshal([]byte(quality.String), &a.Quality)
	_ = json.Unmarshal([]byte(rend), &a.Renditions)
	a.Created, _ = time.Parse(time.RFC3339, created)
	a.Updated, _ = time.Parse(time.RFC3339, updated)
	return a, nil
}

const assetCols = `id, source, state, error, duration, width, height, live, renditions, segments, created, updated, quality, warning, ladder`

// AssetsPage asks for one page of the asset list.
type AssetsPage struct {
	// Limit is the page's size (default 100, at most 1000).
	Limit int
	// After is the cursor the previous page ended with ("": the first).
	After string
}

// Assets lists a page of assets, newest first, and the cursor of the next
// page ("" after the last). Pages are found by key (created, id) on an
// index, so a page deep in a library of 10^5 assets costs what the first
// does.
func (c *Catalog) Assets(ctx context.Context, page AssetsPage) ([]Asset, string, error) {
	limit := page.Limit
	if limit <= 0 {
		limit = 100
	}
	limit = min(limit, 1000)
	query, args := `SELECT `+assetCols+` FROM assets ORDER BY created DESC, id DESC LIMIT ?`, []any{limit}
	if page.After != "" {
		created, id, err := parseCursor(page.After)
		if err != nil {
			return nil, "", err
		}
		query = `SELECT ` + assetCols + ` FROM assets WHERE (created, id) < (?, ?) ORDER BY created DESC, id DESC LIMIT ?`
		args = []any{created, id, limit}
	}
	rows, err := c.db.QueryContext(ctx, c.q(query), args...)
	if err != nil {
		return nil, "", err
	}
	defer rows.Close()
	out := []Asset{}
	for rows.Next() {
		a, err := scanAsset(rows)
		if err != nil {
			return nil, "", err
		}
		out = append(out, a)
	}
	next := ""
	if len(out) == limit {
		next = assetCursor(out[len(out)-1])
	}
	return out, next, rows.Err()
}

// ErrBadCursor is returned for a page cursor this catalog did not make.
var ErrBadCursor = errors.New("bad page cursor")

// assetCursor is the opaque cursor of the page after a.
func assetCursor(a Asset) string {
	return base64.RawURLEncoding.EncodeToString([]byte(a.Created.UTC().Format(time.RFC3339) + "|" + a.ID))
}

func parseCursor(cur string) (created, id string, err error) {
	b, err := base64.RawURLEncoding.DecodeString(cur)
	if err != nil {
		return "", "", fmt.Errorf("%w: %v", ErrBadCursor, err)
	}
	created, id, ok := strings.Cut(string(b), "|")
	if _, err := time.Parse(time.RFC3339, created); !ok || err != nil || id == "" {
		return "", "", ErrBadCursor
	}
	return created, id, nil
}

// ErrNotFound is returned for an unknown asset.
var ErrNotFound = errors.New("asset not found")

// Detail is an asset with its tags.
type Detail struct {
	Asset
	Tags []tagging.Tag `json:"tags"`
}

// Get returns one asset with its tags.
func (c *Catalog) Get(ctx context.Context, id string) (*Detail, error) {
	a, err := scanAsset(c.db.QueryRowContext(ctx, c.q(`SELECT `+assetCols+` FROM assets WHERE id = ?`), id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%s: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	d := &Detail{Asset: a, Tags: []tagging.Tag{}}
	rows, err := c.db.QueryContext(ctx, c.q(`SELECT kind, label, start_s, end_s, confidence, source FROM tags WHERE asset = ? ORDER BY start_s`), id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var t tagging.Tag
		if err := rows.Scan(&t.Kind, &t.Label, &t.Start, &t.End, &t.Confidence, &t.Source); err != nil {
			return nil, err
		}
		d.Tags = append(d.Tags, t)
	}
	return d, rows.Err()
}

// Hit is one search result: where in which asset.
type Hit struct {
	Asset   string  `json:"asset"`
	Kind    string  `json:"kind"`
	Start   float64 `json:"start"`
	End     float64 `json:"end"`
	Snippet string  `json:"snippet"`
}

// Search finds tags and speech matching every word of q, best first:
// the words as written, and, when those fill less than the page, as the
// starts of longer words. (A prefix query reads every posting of the
// words it expands to: at 10^7 rows a common word took 177 ms that way and
// a few ms as itself.)
func (c *Catalog) Search(ctx context.Context, q string, limit int) ([]Hit, error) {
	if limit <= 0 || limit > 200 {
		limit = 50
	}
	out := []Hit{}
	// A row both queries find is one hit (its snippets may differ).
	type place struct {
		asset, kind string
		start, end  float64
	}
	seen := map[place]bool{}
	last := ""
	for _, prefix := range []bool{false, true} {
		query := c.d.query(q, prefix)
		if query == "" {
			return out, nil
		}
		if query == last {
			break // phrases only: the prefix query is the same query
		}
		last = query
		hits, err := c.search(ctx, q, query, prefix, limit)
		if err != nil {
			return nil, fmt.Errorf("search %q: %w", q, err)
		}
		for _, h := range hits {
			if p := (place{h.Asset, h.Kind, h.Start, h.End}); len(out) < limit && !seen[p] {
				seen[p] = true
				out = append(out, h)
			}
		}
		if len(out) == limit {
			break
		}
	}
	return out, nil
}

func (c *Catalog) search(ctx context.Context, q, query string, prefix bool, limit int) ([]Hit, error) {
	args := []any{query, limit}
	if c.d.rankHere {
		args = args[:1]
	}
	rows, err := c.db.QueryContext(ctx, c.q(c.d.search), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Hit
	var ms []match
	for rows.Next() {
		var h Hit
		var label string
		if err := rows.Scan(&h.Asset, &h.Kind, &h.Start, &h.End, &label); err != nil {
			return nil, err
		}
		if c.d.rankHere {
			ms = append(ms, match{h, label})
			continue
		}
		h.Snippet = label
		out = append(out, h)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if c.d.rankHere {
		return rankMatches(ms, q, prefix, limit), nil
	}
	return out, nil
}
