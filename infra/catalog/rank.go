package catalog

import (
	"slices"
	"strings"
	"unicode"
)

// SQLite's bm25() counts, on its first call in a query, every row that
// holds each searched word, to weigh the words: for a word in every other
// video that read 10^6 postings (55 ms of a 60 ms search at 10^7 rows),
// while the newest 1,000 matches alone came in half a millisecond. So the
// SQLite catalog takes the matches unranked with their labels and ranks
// and marks them here: BM25's term-frequency and length parts, the words
// weighed alike, which is what tells apart rows that all hold every word.

// match is a search row before ranking.
type match struct {
	Hit
	label string
}

// rankMatches orders ms best first (newest first among equals: ms comes
// newest first), keeps limit and marks each snippet.
func rankMatches(ms []match, q string, prefix bool, limit int) []Hit {
	ts := terms(q)
	score := make([]float64, len(ms))
	for i, m := range ms {
		score[i] = bm25Part(tokens(m.label), ts, prefix)
	}
	order := make([]int, len(ms))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int {
		switch {
		case score[a] > score[b]:
			return -1
		case score[a] < score[b]:
			return 1
		}
		return 0
	})
	out := make([]Hit, 0, min(limit, len(ms)))
	for _, i := range order[:min(limit, len(order))] {
		h := ms[i].Hit
		h.Snippet = snippet(ms[i].label, ts, prefix)
		out = append(out, h)
	}
	return out
}

// token is a word of a label and where it is.
type token struct {
	word       string // lower case
	start, end int
}

// tokens splits s as FTS5's unicode61 does: runs of letters and digits.
func tokens(s string) []token {
	var out []token
	start := -1
	for i, r := range s + " " {
		word := unicode.IsLetter(r) || unicode.IsDigit(r)
		switch {
		case word && start < 0:
			start = i
		case !word && start >= 0:
			out = append(out, token{strings.ToLower(s[start:i]), start, i})
			start = -1
		}
	}
	return out
}

// matchesAt reports whether term t (a word, or a phrase's words) starts at
// toks[i].
func matchesAt(toks []token, i int, t []string, prefix bool) bool {
	if len(t) == 1 {
		w := strings.ToLower(t[0])
		return toks[i].word == w || prefix && strings.HasPrefix(toks[i].word, w)
	}
	if i+len(t) > len(toks) {
		return false
	}
	for j, w := range t {
		if toks[i+j].word != strings.ToLower(w) {
			return false
		}
	}
	return true
}

// bm25Part is BM25 without the words' weights (k1 1.2, b 0.75, an
// average label of 10 words).
func bm25Part(toks []token, ts [][]string, prefix bool) float64 {
	const k1, b, avg = 1.2, 0.75, 10.0
	norm := k1 * (1 - b + b*float64(len(toks))/avg)
	total := 0.0
	for _, t := range ts {
		tf := 0.0
		for i := range toks {
			if matchesAt(toks, i, t, prefix) {
				tf++
			}
		}
		total += tf * (k1 + 1) / (tf + norm)
	}
	return total
}

// snippetWords is how many words of a long label a snippet shows.
const snippetWords = 12

// snippet is the label with the matched words in [ ], cut to snippetWords
// words from a little before the first match ("…" where it is cut).
func snippet(label string, ts [][]string, prefix bool) string {
	toks := tokens(label)
	marked := make([]bool, len(toks))
	first := -1
	for i := range toks {
		for _, t := range ts {
			if matchesAt(toks, i, t, prefix) {
				for j := range len(t) {
					marked[i+j] = true
				}
				if first < 0 {
					first = i
				}
			}
		}
	}
	from, to := 0, len(toks)
	if len(toks) > snippetWords {
		from = max(0, min(first-2, len(toks)-snippetWords))
		to = from + snippetWords
	}
	var sb strings.Builder
	if from > 0 {
		sb.WriteString("…")
	}
	pos := 0
	if from > 0 {
		pos = toks[from].start
	}
	for i := from; i < to; i++ {
		sb.WriteString(label[pos:toks[i].start])
		if marked[i] {
			sb.WriteString("[" + label[toks[i].start:toks[i].end] + "]")
		} else {
			sb.WriteString(label[toks[i].start:toks[i].end])
		}
		pos = toks[i].end
	}
	if to < len(toks) {
		sb.WriteString("…")
	} else {
		sb.WriteString(label[pos:])
	}
	return sb.String()
}
