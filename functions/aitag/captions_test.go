package aitag

import (
	"strings"
	"testing"

	"github.com/segflow/segflow/shared/tagging"
)

func TestCaptions(t *testing.T) {
	var tags []tagging.Tag
	for i, w := range strings.Fields("one two three four five six seven eight nine") {
		tags = append(tags, tagging.Tag{Kind: "word", Label: w, Start: 10 + float64(i)*0.4, End: 10.3 + float64(i)*0.4})
	}
	tags = append(tags, tagging.Tag{Kind: "black", Label: "black", Start: 1, End: 2})
	got := captions(tags, 1.4)
	want := "WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:126000,LOCAL:00:00:00.000\n\n" +
		"00:00:10.000 --> 00:00:12.700\none two three four five six seven\n\n" +
		"00:00:12.800 --> 00:00:13.500\neight nine\n\n"
	if got != want {
		t.Fatalf("got:\n%s\nwant:\n%s", got, want)
	}
	if empty := captions(nil, 0); empty != "WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:0,LOCAL:00:00:00.000\n\n" {
		t.Fatalf("empty = %q", empty)
	}
}
