package aitag

import (
	"fmt"
	"math"
	"strings"

	"github.com/segflow/segflow/shared/tagging"
)

// captions renders a segment's words as WebVTT cues of up to seven words or
// four seconds. Cue times are asset time; X-TIMESTAMP-MAP ties asset time
// zero to the MPEG-TS timestamp of the first frame, so players keep the
// captions in step with the video.
func captions(tags []tagging.Tag, origin float64) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:%d,LOCAL:00:00:00.000\n\n", int64(math.Round(origin*90000)))
	var words []tagging.Tag
	for _, t := range tags {
		if t.Kind == "word" {
			words = append(words, t)
		}
	}
	for i := 0; i < len(words); {
		j := i
		for j < len(words) && j-i < 7 && words[j].End-words[i].Start <= 4 {
			j++
		}
		if j == i {
			j = i + 1
		}
		var text []string
		for _, w := range words[i:j] {
			text = append(text, w.Label)
		}
		fmt.Fprintf(&sb, "%s --> %s\n%s\n\n", vttTime(words[i].Start), vttTime(words[j-1].End), strings.Join(text, " "))
		i = j
	}
	return sb.String()
}

func vttTime(s float64) string {
	ms := int64(math.Round(s * 1000))
	return fmt.Sprintf("%02d:%02d:%02d.%03d", ms/3_600_000, ms/60_000%60, ms/1000%60, ms%1000)
}
