package media_test

import (
	"context"
	"testing"
	"time"

	"github.com/segflow/segflow/shared/media"
	"github.com/segflow/segflow/shared/media/mediatest"
)

// BenchmarkQAVsTranscode transcodes one minute of 1080p, segment by
// segment, to the default ladder and scores every rung of every segment
// as the qa stage does (media.Compare), and reports the CPU seconds each
// takes per minute of video: what the quality stage adds to an upload
// (scoring as it does by default: media.SpotSeconds, media.SpotStep).
func BenchmarkQAVsTranscode(b *testing.B) {
	ctx := context.Background()
	info, segs, rungs := mediatest.Segmented(b, b.TempDir(), mediatest.Clip{Seconds: 60, Width: 1920, Height: 1080, FPS: 30, Audio: true, Bitrate: 10_000_000})
	b.ResetTimer()
	var encCPU, qaCPU time.Duration
	for n := 0; n < b.N; n++ {
		for _, s := range segs {
			c0 := mediatest.ChildCPU()
			outs, err := media.Transcode(ctx, s.Path, b.TempDir(), rungs, media.TranscodeOptions{FPS: info.Video.FPS, Audio: []string{"audio"}})
			if err != nil {
				b.Fatal(err)
			}
			c1 := mediatest.ChildCPU()
			var renditions []media.Compared
			for _, o := range outs {
				if !o.Audio {
					renditions = append(renditions, media.Compared{Path: o.Path, Width: o.Rung.Width, Height: o.Rung.Height})
				}
			}
			if _, err := media.Compare(ctx, s.Path, renditions, media.CompareOptions{Seconds: media.SpotSeconds, Step: media.SpotStep, StatsDir: b.TempDir()}); err != nil {
				b.Fatal(err)
			}
			c2 := mediatest.ChildCPU()
			encCPU += c1 - c0
			qaCPU += c2 - c1
		}
	}
	minutes := info.Duration / 60 * float64(b.N)
	b.ReportMetric(encCPU.Seconds()/minutes, "transcode-cpu-s/min")
	b.ReportMetric(qaCPU.Seconds()/minutes, "qa-cpu-s/min")
	b.ReportMetric(qaCPU.Seconds()/encCPU.Seconds(), "qa/transcode")
}
