package tagging

import (
	"context"
	"testing"
	"time"

	"github.com/segflow/segflow/shared/media"
	"github.com/segflow/segflow/shared/media/mediatest"
)

// BenchmarkAITagVsTranscode tags one minute of 1080p video segment by
// segment and transcodes the same segments to the default ladder, and
// reports the CPU seconds each takes per minute of video.
func BenchmarkAITagVsTranscode(b *testing.B) {
	ctx := context.Background()
	info, segs, rungs := mediatest.Segmented(b, b.TempDir(), mediatest.Clip{Seconds: 60, Width: 1920, Height: 1080, Audio: true})
	b.ResetTimer()
	var tagCPU, encCPU time.Duration
	for n := 0; n < b.N; n++ {
		c0 := mediatest.ChildCPU()
		for _, s := range segs {
			res := Run(ctx, Default(""), Input{Path: s.Path, Duration: s.Duration, HasAudio: true, WorkDir: b.TempDir()})
			if res.Errors != nil {
				b.Fatal(res.Errors)
			}
		}
		c1 := mediatest.ChildCPU()
		for _, s := range segs {
			if _, err := media.Transcode(ctx, s.Path, b.TempDir(), rungs, media.TranscodeOptions{FPS: info.Video.FPS, Audio: []string{"audio"}}); err != nil {
				b.Fatal(err)
			}
		}
		c2 := mediatest.ChildCPU()
		tagCPU += c1 - c0
		encCPU += c2 - c1
	}
	minutes := info.Duration / 60 * float64(b.N)
	b.ReportMetric(tagCPU.Seconds()/minutes, "aitag-cpu-s/min")
	b.ReportMetric(encCPU.Seconds()/minutes, "transcode-cpu-s/min")
	b.ReportMetric(tagCPU.Seconds()/encCPU.Seconds(), "aitag/transcode")
}
