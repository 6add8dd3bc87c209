package tagging

import "testing"

func TestMergeAcrossSeams(t *testing.T) {
	in := []Tag{
		{Kind: "black", Label: "black", Start: 3, End: 3.967, Confidence: 1},
		{Kind: "scene", Label: "scene cut", Start: 3, End: 3},
		{Kind: "black", Label: "black", Start: 4, End: 6, Confidence: 1},
		{Kind: "silence", Label: "silence", Start: 0, End: 4.032},
		{Kind: "silence", Label: "silence", Start: 4, End: 5.99},
		{Kind: "black", Label: "black", Start: 9, End: 10},
		{Kind: "text", Label: "A", Start: 0, End: 3.5, Confidence: 0.9},
		{Kind: "text", Label: "B", Start: 4, End: 5},
		{Kind: "text", Label: "A", Start: 4, End: 5, Confidence: 0.8},
	}
	got := Merge(in, 0.1)
	want := []Tag{
		{Kind: "silence", Label: "silence", Start: 0, End: 5.99},
		{Kind: "text", Label: "A", Start: 0, End: 3.5, Confidence: 0.9},
		{Kind: "black", Label: "black", Start: 3, End: 6, Confidence: 1},
		{Kind: "scene", Label: "scene cut", Start: 3, End: 3},
		{Kind: "text", Label: "B", Start: 4, End: 5},
		{Kind: "text", Label: "A", Start: 4, End: 5, Confidence: 0.8},
		{Kind: "black", Label: "black", Start: 9, End: 10},
	}
	if len(got) != len(want) {
		t.Fatalf("got %+v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("tag %d = %+v, want %+v", i, got[i], want[i])
		}
	}
}
