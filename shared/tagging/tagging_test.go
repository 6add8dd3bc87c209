package tagging

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/segflow/segflow/shared/media/mediatest"
)

func makeClip(t *testing.T, dir string) string {
	out := filepath.Join(dir, "clip.ts")
	mediatest.TaggedClip(t, out)
	return out
}

func near(a, b float64) bool { return math.Abs(a-b) <= 0.5 }

func TestTaggersOnGeneratedMedia(t *testing.T) {
	dir := t.TempDir()
	clip := makeClip(t, dir)
	res := Run(context.Background(), Default(""), Input{Path: clip, Duration: 12, HasAudio: true, WorkDir: dir})
	if res.Errors != nil {
		t.Fatalf("tagger errors: %v", res.Errors)
	}
	find := func(kind string, ok func(Tag) bool) *Tag {
		for _, tg := range res.Tags {
			if tg.Kind == kind && ok(tg) {
				return &tg
			}
		}
		return nil
	}
	if tg := find("text", func(tg Tag) bool { return strings.Contains(strings.ToUpper(tg.Label), "SEGFLOW 2026") }); tg == nil || !near(tg.Start, 0) || !near(tg.End, 3) {
		t.Errorf("OCR of SEGFLOW 2026: %+v (all: %+v)", tg, res.Tags)
	}
	if tg := find("black", func(Tag) bool { return true }); tg == nil || !near(tg.Start, 3) || !near(tg.End, 6) {
		t.Errorf("black 3-6 s: %+v", tg)
	}
	if tg := find("silence", func(tg Tag) bool { return tg.Start < 5 }); tg == nil || !near(tg.Start, 0) || !near(tg.End, 6) {
		t.Errorf("silence 0-6 s: %+v", tg)
	}
	if tg := find("scene", func(tg Tag) bool { return near(tg.Start, 6) }); tg == nil {
		t.Errorf("no scene cut near 6 s: %+v", res.Tags)
	}
	if tg := find("loudness", func(Tag) bool { return true }); tg == nil || !strings.HasSuffix(tg.Label, "LUFS") {
		t.Errorf("loudness: %+v", tg)
	}
	digits := map[string]bool{"one": true, "two": true, "three": true, "four": true, "five": true, "six": true, "seven": true, "eight": true, "nine": true}
	heard := 0
	for _, tg := range res.Tags {
		if tg.Kind == "word" && digits[tg.Label] {
			heard++
			if tg.Start < 5.5 {
				t.Errorf("word %q at %.2fs, before the speech starts", tg.Label, tg.Start)
			}
		}
	}
	t.Logf("transcript: %q", Transcript(res.Tags))
	if heard < 2 {
		t.Errorf("heard %d of the spoken digits: %q", heard, Transcript(res.Tags))
	}
}

func TestBadMediaFailsWithAReason(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.ts")
	os.WriteFile(bad, []byte("this is not video at all"), 0o644)
	res := Run(context.Background(), Default(""), Input{Path: bad, Duration: 4, HasAudio: true, WorkDir: dir})
	for _, name := range []string{"video", "audio", "ocr", "speech"} {
		if res.Errors[name] == "" {
			t.Errorf("%s gave no error on garbage: %+v", name, res)
		}
	}
}
