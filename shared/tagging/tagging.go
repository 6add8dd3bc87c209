// Package tagging finds what happens in a segment: scene cuts, black and
// frozen stretches, silence and loudness (ffmpeg's detectors), on-screen
// text (tesseract) and speech (pocketsphinx), each behind one small
// interface so a model served over HTTP can join by configuration.
package tagging

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/segflow/segflow/shared/media"
)

// Tag is one finding, with times in seconds from the segment's start.
type Tag struct {
	Kind       string  `json:"kind"` // scene, black, freeze, silence, loudness, text, speech, word, ...
	Label      string  `json:"label"`
	Start      float64 `json:"start"`
	End        float64 `json:"end"`
	Confidence float64 `json:"confidence"`
	Source     string  `json:"source"` // the tagger's name
}

// Input is the segment a tagger looks at.
type Input struct {
	Path     string  // a source segment: video and (maybe) audio, or audio alone
	Duration float64 // seconds
	HasAudio bool
	// AudioOnly says there is no picture: the visual taggers have
	// nothing to look at.
	AudioOnly bool
	WorkDir   string // scratch space of this call
	// Picture makes the picture as viewers see it (upright, deinterlaced,
	// ...): text is read, and faces and objects found, on that.
	Picture media.Picture
}

// upright is the filter-chain head that turns in's picture upright.
func (in Input) upright() string {
	if f := in.Picture.Filter(); f != "" {
		return f + ","
	}
	return ""
}

// Tagger finds tags of one kind of thing.
type Tagger interface {
	Name() string
	Tag(ctx context.Context, in Input) ([]Tag, error)
}

// Result is what every tagger gave, and why the ones that failed did.
type Result struct {
	Tags   []Tag             `json:"tags"`
	Errors map[string]string `json:"errors,omitempty"`
}

// Run runs every tagger; one's failure is recorded and the others go on.
func Run(ctx context.Context, taggers []Tagger, in Input) Result {
	res := Result{Errors: map[string]string{}}
	for _, t := range taggers {
		tags, err := t.Tag(ctx, in)
		if err != nil {
			res.Errors[t.Name()] = err.Error()
			continue
		}
		for i := range tags {
			tags[i].Source = t.Name()
		}
		res.Tags = append(res.Tags, tags...)
	}
	sort.SliceStable(res.Tags, func(i, j int) bool { return res.Tags[i].Start < res.Tags[j].Start })
	if len(res.Errors) == 0 {
		res.Errors = nil
	}
	return res
}

// Default returns the built-in taggers plus, when httpURL is set, a model
// served over HTTP.
func Default(httpURL string) []Tagger {
	ts := []Tagger{Video{}, Audio{}, OCR{}, Speech{}}
	if httpURL != "" {
		ts = append(ts, HTTP{URL: httpURL})
	}
	return ts
}

// Transcript joins the speech words in order.
func Transcript(tags []Tag) string {
	var words []string
	for _, t := range tags {
		if t.Kind == "word" {
			words = append(words, t.Label)
		}
	}
	return strings.Join(words, " ")
}

// Offset moves tags by d seconds (segment -> asset time).
func Offset(tags []Tag, d float64) []Tag {
	out := make([]Tag, len(tags))
	for i, t := range tags {
		t.Start, t.End = round3(t.Start+d), round3(t.End+d)
		out[i] = t
	}
	return out
}

func round3(f float64) float64 { return float64(int64(f*1000+0.5)) / 1000 }

func errorf(name, format string, a ...any) error {
	return fmt.Errorf(name+": "+format, a...)
}

// stretches are the kinds that describe a time range which a segment seam
// may cut in two.
var stretches = map[string]bool{"black": true, "silence": true, "freeze": true, "text": true}

// Merge joins stretches of the same kind and label that meet across a
// segment seam (within gap seconds), so an asset's tags say "black from 3
// to 6" and not "3 to 3.97, 4 to 6". Other tags pass through.
func Merge(tags []Tag, gap float64) []Tag {
	sorted := append([]Tag(nil), tags...)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].Start < sorted[j].Start })
	var out []Tag
	open := map[string]int{} // kind+label -> index in out of the latest stretch
	for _, t := range sorted {
		if !stretches[t.Kind] {
			out = append(out, t)
			continue
		}
		k := t.Kind + "\x00" + t.Label
		if i, ok := open[k]; ok && t.Start-out[i].End <= gap {
			out[i].End = max(out[i].End, t.End)
			out[i].Confidence = min(out[i].Confidence, t.Confidence)
			continue
		}
		open[k] = len(out)
		out = append(out, t)
	}
	return out
}
