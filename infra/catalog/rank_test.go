package catalog

import (
	"strings"
	"testing"
)

func TestSnippetMarksWhatMatched(t *testing.T) {
	long := "one two three four five six seven eight nine ten eleven twelve thirteen fourteen target fifteen sixteen"
	for _, tc := range []struct {
		label, q string
		prefix   bool
		want     string
	}{
		{"SEGFLOW 2026", "segflow", false, "[SEGFLOW] 2026"},
		{"cards and car", "car", false, "cards and [car]"},
		{"cards and car", "car", true, "[cards] and [car]"},
		{"the opening credits roll", `"opening credits"`, false, "the [opening] [credits] roll"},
		{"credits opening", `"opening credits"`, false, "credits opening"},
		{long, "target", false, "…six seven eight nine ten eleven twelve thirteen fourteen [target] fifteen sixteen"},
		{long, "one", false, "[one] two three four five six seven eight nine ten eleven twelve…"},
	} {
		if got := snippet(tc.label, terms(tc.q), tc.prefix); got != tc.want {
			t.Errorf("snippet(%q, %s, prefix %v) = %q, want %q", tc.label, tc.q, tc.prefix, got, tc.want)
		}
	}
}

// A row holding the words more often, or in fewer words, ranks first;
// equals keep their order (newest first).
func TestRankMatches(t *testing.T) {
	ms := []match{
		{Hit{Asset: "newest"}, "a long label that mentions goal once among many other words here"},
		{Hit{Asset: "short"}, "goal"},
		{Hit{Asset: "twice"}, "goal goal scored"},
		{Hit{Asset: "none"}, "nothing here"},
	}
	var got []string
	for _, h := range rankMatches(ms, "goal", false, 3) {
		got = append(got, h.Asset)
	}
	if strings.Join(got, ",") != "twice,short,newest" {
		t.Errorf("ranked %v", got)
	}
}
