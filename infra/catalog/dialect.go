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
	// searched directly).
	clearFTS  string
	insertFTS string
	search    string
	// query turns free text into the engine's query syntax.
	query func(q string) string
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
  asset TEXT, kind TEXT, label TEXT, start_s REAL, end_s REAL, confidence REAL, source TEXT);
CREATE INDEX IF NOT EXISTS tags_asset ON tags(asset);
CREATE VIRTUAL TABLE IF NOT EXISTS tags_fts USING fts5(label, kind UNINDEXED, asset UNINDEXED, start_s UNINDEXED, end_s UNINDEXED);
`,
	migrate:   []string{`ALTER TABLE assets ADD COLUMN quality TEXT`, `ALTER TABLE assets ADD COLUMN warning TEXT`, `ALTER TABLE assets ADD COLUMN ladder TEXT`},
	upsert:    `INSERT OR REPLACE INTO assets (` + assetColumns + `) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`,
	clearFTS:  `DELETE FROM tags_fts WHERE asset = ?`,
	insertFTS: `INSERT INTO tags_fts (label, kind, asset, start_s, end_s) VALUES (?,?,?,?,?)`,
	search: `SELECT asset, kind, start_s, end_s, snippet(tags_fts, 0, '[', ']', '…', 12)
		FROM tags_fts WHERE tags_fts MATCH ? ORDER BY rank LIMIT ?`,
	// Each word quoted and matched as a prefix, all required.
	query: func(q string) string {
		var terms []string
		for _, w := range words(q) {
			terms = append(terms, `"`+w+`"*`)
		}
		return strings.Join(terms, " ")
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
  asset TEXT, kind TEXT, label TEXT, start_s DOUBLE PRECISION, end_s DOUBLE PRECISION,
  confidence DOUBLE PRECISION, source TEXT,
  tsv tsvector GENERATED ALWAYS AS (to_tsvector('simple', label)) STORED);
CREATE INDEX IF NOT EXISTS tags_asset ON tags(asset);
CREATE INDEX IF NOT EXISTS tags_tsv ON tags USING GIN (tsv);
`,
	migrate: []string{`ALTER TABLE assets ADD COLUMN IF NOT EXISTS quality TEXT`, `ALTER TABLE assets ADD COLUMN IF NOT EXISTS warning TEXT`,
		`ALTER TABLE assets ADD COLUMN IF NOT EXISTS ladder TEXT`},
	upsert: `INSERT INTO assets (` + assetColumns + `) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)
		ON CONFLICT (id) DO UPDATE SET source = EXCLUDED.source, state = EXCLUDED.state, error = EXCLUDED.error,
		duration = EXCLUDED.duration, width = EXCLUDED.width, height = EXCLUDED.height, live = EXCLUDED.live,
		renditions = EXCLUDED.renditions, segments = EXCLUDED.segments, created = EXCLUDED.created,
		updated = EXCLUDED.updated, fingerprint = EXCLUDED.fingerprint, quality = EXCLUDED.quality,
		warning = EXCLUDED.warning, ladder = EXCLUDED.ladder`,
	search: `SELECT asset, kind, start_s, end_s, ts_headline('simple', label, q, 'StartSel=[, StopSel=]')
		FROM tags, to_tsquery('simple', ?) q
		WHERE kind <> 'word' AND tsv @@ q ORDER BY ts_rank(tsv, q) DESC, start_s LIMIT ?`,
	query: func(q string) string {
		var terms []string
		for _, w := range words(q) {
			terms = append(terms, strings.ToLower(w)+":*")
		}
		return strings.Join(terms, " & ")
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

// words are the searchable words of free text: letters, digits, - and _.
func words(q string) []string {
	return strings.FieldsFunc(q, func(r rune) bool {
		return !(r == '-' || r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r > 127)
	})
}
