package layout

import (
	"strings"
	"testing"
)

func TestParseAndTopic(t *testing.T) {
	tests := []struct {
		key   string
		topic string
		want  Key
	}{
		{"uploads/film.mp4", TopicUpload, Key{Kind: KindUpload}},
		{"uploads/dir/film.mov", TopicUpload, Key{Kind: KindUpload}},
		{"uploads/", "", Key{}},
		{"assets/a1/source/00003.ts", TopicSourceSegment, Key{Kind: KindSourceSegment, AssetID: "a1", Index: 3, Ext: ".ts"}},
		{"assets/a1/source/00004.mkv", TopicSourceSegment, Key{Kind: KindSourceSegment, AssetID: "a1", Index: 4, Ext: ".mkv"}},
		{"assets/a1/720p/00004.mkv", "", Key{}},
		{"assets/a1/marked/00000.ts", TopicMarkedSegment, Key{Kind: KindMarkedSegment, AssetID: "a1", Index: 0, Ext: ".ts"}},
		{"assets/a1/720p/00012.ts", TopicRenditionSegment, Key{Kind: KindRenditionSegment, AssetID: "a1", Rendition: "720p", Index: 12, Ext: ".ts"}},
		{"assets/a1/av1-720p/00001.m4s", TopicRenditionSegment, Key{Kind: KindRenditionSegment, AssetID: "a1", Rendition: "av1-720p", Index: 1, Ext: ".m4s"}},
		{"assets/a1/720p/init.mp4", "", Key{}},
		{"assets/a1/subs/00002.vtt", TopicRenditionSegment, Key{Kind: KindRenditionSegment, AssetID: "a1", Rendition: "subs", Index: 2, Ext: ".vtt"}},
		{"assets/a1/720p/00002.vtt", "", Key{}},
		{"assets/a1/subs-fr/00000.vtt", TopicRenditionSegment, Key{Kind: KindRenditionSegment, AssetID: "a1", Rendition: "subs-fr", Index: 0, Ext: ".vtt"}},
		{"assets/a1/subs-/00000.vtt", "", Key{}},
		{"assets/a1/720p.m3u8", "", Key{}},
		{"assets/a1/thumbs/00001.jpg", "", Key{}},
		{"assets/a1/meta/transcode/00001.json", "", Key{}},
		{"assets/a1/tags/00001.json", "", Key{}},
		{"assets/a1/status.json", "", Key{}},
		{"deadletter/x.json", "", Key{}},
		{"assets//source/00001.ts", "", Key{}},
		{"assets/a1/source/-1.ts", "", Key{}},
	}
	for _, tc := range tests {
		if got := Parse(tc.key); got != tc.want {
			t.Errorf("Parse(%q) = %+v, want %+v", tc.key, got, tc.want)
		}
		if got := Topic(tc.key); got != tc.topic {
			t.Errorf("Topic(%q) = %q, want %q", tc.key, got, tc.topic)
		}
		if tc.topic != "" && !notified(tc.key) {
			t.Errorf("%q raises %s but no notification rule covers it", tc.key, tc.topic)
		}
	}
	// What stages write beside segments is not announced at all.
	for _, key := range []string{"assets/a1/status.json", "assets/a1/manifest.json", "assets/a1/master.m3u8",
		"assets/a1/720p.m3u8", "assets/a1/thumbs/00001.jpg", "assets/a1/tags/00001.json", "deadletter/x.json"} {
		if notified(key) {
			t.Errorf("%q is announced", key)
		}
	}
	// One target's rules may not overlap (S3 and MinIO refuse them).
	fs := EventFilters()
	for i := range fs {
		for j := i + 1; j < len(fs); j++ {
			a, b := fs[i], fs[j]
			prefixes := strings.HasPrefix(a.Prefix, b.Prefix) || strings.HasPrefix(b.Prefix, a.Prefix)
			suffixes := strings.HasSuffix(a.Suffix, b.Suffix) || strings.HasSuffix(b.Suffix, a.Suffix)
			if prefixes && suffixes {
				t.Errorf("rules %+v and %+v overlap", a, b)
			}
		}
	}
}

func notified(key string) bool {
	for _, f := range EventFilters() {
		if strings.HasPrefix(key, f.Prefix) && strings.HasSuffix(key, f.Suffix) {
			return true
		}
	}
	return false
}

func TestAssetID(t *testing.T) {
	a := AssetID("uploads/My Film (2026).mp4", `"abc"`)
	if a != AssetID("uploads/My Film (2026).mp4", "abc") {
		t.Fatal("etag quoting changes the id")
	}
	if a == AssetID("uploads/My Film (2026).mp4", "def") {
		t.Fatal("new content, same id")
	}
	if len(a) < 12 || a[:13] != "my-film-2026-" {
		t.Fatalf("id = %q", a)
	}
	if got := AssetID("uploads/../..", "x"); got[:6] != "asset-" {
		t.Fatalf("hostile name id = %q", got)
	}
	if k := Asset(a).Source(7, ".ts"); Parse(k).Kind != KindSourceSegment || Parse(k).AssetID != a || Parse(k).Index != 7 {
		t.Fatalf("builder and parser disagree on %q", k)
	}
}

// Only an upload under uploads/private/ makes a private asset, whatever
// the file is called.
func TestPrivateAssetID(t *testing.T) {
	for _, tc := range []struct {
		key     string
		private bool
	}{
		{"uploads/private/talk.mp4", true},
		{"uploads/private/sub/talk.mp4", true},
		{"uploads/private_talk.mp4", false},
		{"uploads/Private Talk.mp4", false},
		{"uploads/private-talk.mp4", false},
		{"uploads/privately/talk.mp4", false},
	} {
		id := AssetID(tc.key, "e")
		if Private(id) != tc.private {
			t.Errorf("%s: id %q private=%v, want %v", tc.key, id, Private(id), tc.private)
		}
		if k := Asset(id).Rendition("720p", 3, ".ts"); Parse(k).AssetID != id || Parse(k).Kind != KindRenditionSegment {
			t.Errorf("%s: %q parses as %+v", tc.key, k, Parse(k))
		}
	}
}

func TestSidecar(t *testing.T) {
	for _, tc := range []struct {
		key, video, lang, format string
		ok                       bool
	}{
		{"uploads/talk.en.srt", "uploads/talk", "en", "srt", true},
		{"uploads/dir/Été à Paris.fr.vtt", "uploads/dir/Été à Paris", "fr", "vtt", true},
		{"uploads/film.pt-BR.srt", "uploads/film", "pt-br", "srt", true},
		{"uploads/film.srt", "", "", "", false},
		{"uploads/film.en.mp4", "", "", "", false},
		{"assets/a/subs/00000.vtt", "", "", "", false},
	} {
		video, lang, format, ok := Sidecar(tc.key)
		if video != tc.video || lang != tc.lang || format != tc.format || ok != tc.ok {
			t.Errorf("Sidecar(%q) = %q %q %q %v", tc.key, video, lang, format, ok)
		}
	}
}
