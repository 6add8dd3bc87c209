package asset

import (
	"math"
	"testing"

	"github.com/segflow/segflow/shared/media"
)

func TestSetQuality(t *testing.T) {
	s := &Status{State: StateProcessing, Stages: map[string]StageStatus{}}
	const floor = 0.95
	s.SetQuality(1, map[string]media.Quality{
		"720p": {SSIM: 0.99, MinSSIM: 0.98, PSNR: 44, Frames: 180},
		"360p": {SSIM: 0.97, MinSSIM: 0.96, PSNR: 40, Frames: 180},
	}, floor)
	if s.QualityWarning != "" {
		t.Fatalf("warning with every rung over the floor: %q", s.QualityWarning)
	}
	// A short starved segment pulls 360p under the floor by its frames'
	// weight, and its worst frame becomes the rung's.
	s.SetQuality(0, map[string]media.Quality{
		"720p": {SSIM: 0.98, MinSSIM: 0.97, PSNR: 42, Frames: 60},
		"360p": {SSIM: 0.85, MinSSIM: 0.70, PSNR: 30, Frames: 60},
	}, floor)
	q := s.Quality["360p"]
	if want := (0.97*180 + 0.85*60) / 240; math.Abs(q.SSIM-want) > 1e-9 || q.MinSSIM != 0.70 || q.Segments != 2 || math.Abs(q.PSNR-37.5) > 1e-9 {
		t.Errorf("360p %+v, want SSIM %.4f over 2 segments, worst 0.70, PSNR 37.5", q, want)
	}
	if want := "360p mean SSIM 0.9400 under the floor 0.95"; s.QualityWarning != want {
		t.Errorf("warning %q, want %q", s.QualityWarning, want)
	}
	if s.State != StateProcessing || s.Segments[0].Index != 0 || s.Segments[0].Stages["qa"].State != StateDone || s.Segments[0].Quality["720p"].Frames != 60 {
		t.Errorf("segments %+v, state %s", s.Segments, s.State)
	}
	// Measured again (a re-encode), the segment's scores are replaced.
	s.SetQuality(0, map[string]media.Quality{
		"720p": {SSIM: 0.98, MinSSIM: 0.97, PSNR: 42, Frames: 60},
		"360p": {SSIM: 0.97, MinSSIM: 0.96, PSNR: 40, Frames: 60},
	}, floor)
	if s.QualityWarning != "" || s.Quality["360p"].Segments != 2 {
		t.Errorf("after the re-encode: warning %q, 360p %+v", s.QualityWarning, s.Quality["360p"])
	}
}
