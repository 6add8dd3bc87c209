package catalog

import (
	"fmt"
	"strings"
)

// dialect holds what differs between the embedded SQLite catalog and a
// PostgreSQL one shared by several nodes: schema, upsert, full-text search.
type dialect struct {
	driver string
	schema string
	// migrate brings a catalog made by an older segflow to schema: each
	// statement may fail as already done (SQLite has no ADD COLUMN IF NOT
	// EXISTS), which Open ignores.
	migrate []string
	upsert  string
	// clearFTS empties an asset's search rows ("" when the tags table is
	// searched directly); it runs before the asset's tag rows go, as it
	// finds the search rows by theirs. insertFTS adds a tag's search row
	// under the tag row's id.
	clearFTS  string
	insertFTS string
	// insertTags, when set, writes all of an asset's tags at once from
	// column arrays: asset, kinds, labels, starts, ends, confidences,
	// sources.
	insertTags string
	// rebuild, run once on a catalog older than schemaVersion, makes
	// the search rows again from the tag rows.
	rebuild []string
	search  string
	// rankHere: search returns the newest matches with their labels
	// (and takes no limit), which Search ranks and marks (rank.go).
	rankHere bool
	// query turns free text into the engine's query syntax: each word
	// as itself, or (prefix) as the start of words.
	query func(q string, prefix bool) string
	// rebind rewrites ? placeholders for the driver.
	rebind func(q string) string
}

const assetColumns = `id, source, state, error, duration, width, height, live, renditions, segments, created, updated, fingerprint, quality, warning, ladder`

var sqliteDialect = dialect{
	driver: "sqlite",
	schema: `
PRAGMA journal_mode=WAL;
CREATE TABLE IF NOT EXISTS assets (
  id TEXT PRIMARY KEY, source TEXT, state TEXT, error TEXT, duration REAL,
  width INTEGER, height INTEGER, live BOOLEAN, renditions TEXT, segments INTEGER,
  created TEXT, updated TEXT, fingerprint TEXT, quality TEXT, warning TEXT, ladder TEXT);
CREATE TABLE IF NOT EXISTS tags (
  id INTEGER PRIMARY KEY, asset TEXT, kind TEXT, label TEXT, start_s REAL, end_s REAL, confidence REAL, source TEXT);
CREATE INDEX IF NOT EXISTS tags_asset ON tags(asset);
CREATE INDEX IF NOT EXISTS assets_created ON assets(created DESC, id DESC);
CREATE VIRTUAL TABLE IF NOT EXISTS tags_fts USING fts5(label, kind UNINDEXED, asset UNINDEXED, start_s UNINDEXED, end_s UNINDEXED);
`,
	migrate: []string{`ALTER TABLE assets ADD COLUMN quality TEXT`, `ALTER TABLE assets ADD COLUMN warning TEXT`, `ALTER TABLE assets ADD COLUMN ladder TEXT`},
	upsert:  `INSERT OR REPLACE INTO assets (` + assetColumns + `) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`,
	// By the tag rows' ids, found on the asset index: asset is an
	// UNINDEXED column of the search table, so deleting by it read the
	// whole table for every asset indexed (ingest fell to 1,800 tags/s
	// at 10^5 rows).
	clearFTS:  `DELETE FROM tags_fts WHERE rowid IN (SELECT rowid FROM tags WHERE asset = ?)`,
	insertFTS: `INSERT INTO tags_fts (rowid, label, kind, asset, start_s, end_s) VALUES (?,?,?,?,?,?)`,
	rebuild: []string{`DELETE FROM tags_fts`,
		`INSERT INTO tags_fts (rowid, label, kind, asset, start_s, end_s) SELECT rowid, label, kind, asset, start_s, end_s FROM tags WHERE kind <> 'word'`},
	// The newest rankPool matches, ranked by Search (rank.go): FTS5
	// reads a match list in rowid order and stops there, where ORDER BY
	// rank scored every match (a common word at 10^7 rows: 10^6).
	search: `SELECT asset, kind, start_s, end_s, label
		FROM tags_fts WHERE tags_fts MATCH ? ORDER BY rowid DESC LIMIT ` + rankPool,
	rankHere: true,
	// Each word quoted (and matched as a prefix), a quoted phrase as
	// written, all required.
	query: func(q string, prefix bool) string {
		var parts []string
		for _, t := range terms(q) {
			if len(t) == 1 && prefix {
				parts = append(parts, `"`+t[0]+`"*`)
			} else if len(t) == 1 {
				parts = append(parts, `"`+t[0]+`"`)
			} else {
				parts = append(parts, `"`+strings.Join(t, " ")+`"`)
			}
		}
		return strings.Join(parts, " ")
	},
	rebind: func(q string) string { return q },
}

var postgresDialect = dialect{
	driver: "pgx",
	schema: `
CREATE TABLE IF NOT EXISTS assets (
  id TEXT PRIMARY KEY, source TEXT, state TEXT, error TEXT, duration DOUBLE PRECISION,
  width INTEGER, height INTEGER, live BOOLEAN, renditions TEXT, segments INTEGER,
  created TEXT, updated TEXT, fingerprint TEXT, quality TEXT, warning TEXT, ladder TEXT);
CREATE TABLE IF NOT EXISTS tags (
  id BIGSERIAL, asset TEXT, kind TEXT, label TEXT, start_s DOUBLE PRECISION, end_s DOUBLE PRECISION,
  confidence DOUBLE PRECISION, source TEXT,
  tsv tsvector GENERATED ALWAYS AS (to_tsvector('simple', label)) STORED);
CREATE INDEX IF NOT EXISTS tags_asset ON tags(asset);
CREATE INDEX IF NOT EXISTS assets_created ON assets(created DESC, id DESC);
-- fastupdate off: new rows go into the index as they are written. With
-- it on they wait in a pending list of up to 4 MB that every search
-- reads through, and the search that finds the list full merges it.
CREATE INDEX IF NOT EXISTS tags_tsv ON tags USING GIN (tsv) WITH (fastupdate = off);
`,
	insertTags: `INSERT INTO tags (asset, kind, label, start_s, end_s, confidence, source)
		SELECT ?, * FROM unnest(?::text[], ?::text[], ?::float8[], ?::float8[], ?::float8[], ?::text[])`,
	migrate: []string{`ALTER TABLE assets ADD COLUMN IF NOT EXISTS quality TEXT`, `ALTER TABLE assets ADD COLUMN IF NOT EXISTS warning TEXT`,
		`ALTER TABLE assets ADD COLUMN IF NOT EXISTS ladder TEXT`,
		// newest-first search (a catalog from before numbered no rows)
		`ALTER TABLE tags ADD COLUMN IF NOT EXISTS id BIGSERIAL`, `CREATE INDEX IF NOT EXISTS tags_id ON tags(id)`,
		// a catalog from before: its pending list merged, and no new one
		`ALTER INDEX tags_tsv SET (fastupdate = off)`, `SELECT gin_clean_pending_list('tags_tsv')`},
	upsert: `INSERT INTO assets (` + assetColumns + `) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)
		ON CONFLICT (id) DO UPDATE SET source = EXCLUDED.source, state = EXCLUDED.state, error = EXCLUDED.error,
		duration = EXCLUDED.duration, width = EXCLUDED.width, height = EXCLUDED.height, live = EXCLUDED.live,
		renditions = EXCLUDED.renditions, segments = EXCLUDED.segments, created = EXCLUDED.created,
		updated = EXCLUDED.updated, fingerprint = EXCLUDED.fingerprint, quality = EXCLUDED.quality,
		warning = EXCLUDED.warning, ladder = EXCLUDED.ladder`,
	// As SQLite's: the newest rankPool matches (by id, so a common word
	// walks the id index back and stops; a rare one takes the GIN
	// index), best first.
	search: `SELECT asset, kind, start_s, end_s, ts_headline('simple', label, q, 'StartSel=[, StopSel=]') FROM (
		SELECT asset, kind, start_s, end_s, label, tsv, q FROM tags, to_tsquery('simple', ?) q
		WHERE kind <> 'word' AND tsv @@ q ORDER BY id DESC LIMIT ` + rankPool + `) m
		ORDER BY ts_rank(tsv, q) DESC, start_s LIMIT ?`,
	query: func(q string, prefix bool) string {
		var parts []string
		for _, t := range terms(q) {
			if len(t) == 1 {
				w := strings.ToLower(t[0])
				if prefix {
					w += ":*"
				}
				parts = append(parts, w)
				continue
			}
			var phrase []string
			for _, w := range t {
				phrase = append(phrase, strings.ToLower(w))
			}
			parts = append(parts, "("+strings.Join(phrase, " <-> ")+")")
		}
		return strings.Join(parts, " & ")
	},
	rebind: func(q string) string {
		var sb strings.Builder
		n := 0
		for _, r := range q {
			if r == '?' {
				n++
				fmt.Fprintf(&sb, "$%d", n)
				continue
			}
			sb.WriteRune(r)
		}
		return sb.String()
	},
}

// rankPool is how many of the newest matches a search ranks.
const rankPool = "1000"

// terms are the search terms of free text: a word each, or the words of
// a phrase in double quotes.
func terms(q string) [][]string {
	var out [][]string
	for i, part := range strings.Split(q, `"`) {
		ws := words(part)
		if i%2 == 1 && len(ws) > 1 {
			out = append(out, ws)
			continue
		}
		for _, w := range ws {
			out = append(out, []string{w})
		}
	}
	return out
}

// words are the searchable words of free text: letters, digits, - and _.
func words(q string) []string {
	return strings.FieldsFunc(q, func(r rune) bool {
		return !(r == '-' || r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r > 127)
	})
}
