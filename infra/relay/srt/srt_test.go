package srt

import "testing"

// The stream id forms publishers send: the key, "publish:<key>", and
// SRT's access-control syntax.
func TestStreamKey(t *testing.T) {
	for id, want := range map[string]string{
		"k3y":                      "k3y",
		"publish:k3y":              "k3y",
		"publish:live/k3y":         "k3y",
		"#!::r=live/k3y,m=publish": "k3y",
		"#!::m=publish,r=k3y":      "k3y",
		"#!::m=publish":            "",
		"":                         ".",
	} {
		if got := streamKey(id); got != want {
			t.Errorf("streamKey(%q) = %q, want %q", id, got, want)
		}
	}
}
