package asset

import (
	"fmt"
	"sort"
	"strings"

	"github.com/segflow/segflow/shared/media"
)

// RungQuality sums up a rendition's quality over the segments measured so
// far: frame-weighted means, and the worst frame of all.
type RungQuality struct {
	SSIM     float64 `json:"ssim"`
	MinSSIM  float64 `json:"minSSIM"`
	PSNR     float64 `json:"psnr"`
	Segments int     `json:"segments"`
}

// SetQuality records the qa stage's scores for segment index (rendition
// name to score), sums each rendition up again over every segment, and
// sets or clears the quality warning: a rendition whose mean SSIM is under
// floor. A warning says look at this asset, not that it failed.
func (s *Status) SetQuality(index int, scores map[string]media.Quality, floor float64) {
	s.SetSegment(index, "qa", StateDone, nil)
	for i := range s.Segments {
		if s.Segments[i].Index == index {
			s.Segments[i].Quality = scores
		}
	}
	type sum struct {
		ssim, psnr float64
		frames     int
		q          RungQuality
	}
	sums := map[string]*sum{}
	for _, seg := range s.Segments {
		for name, q := range seg.Quality {
			x := sums[name]
			if x == nil {
				x = &sum{q: RungQuality{MinSSIM: 1}}
				sums[name] = x
			}
			x.ssim += q.SSIM * float64(q.Frames)
			x.psnr += q.PSNR * float64(q.Frames)
			x.frames += q.Frames
			x.q.MinSSIM = min(x.q.MinSSIM, q.MinSSIM)
			x.q.Segments++
		}
	}
	s.Quality = map[string]RungQuality{}
	var under []string
	for name, x := range sums {
		if x.frames > 0 {
			x.q.SSIM, x.q.PSNR = x.ssim/float64(x.frames), x.psnr/float64(x.frames)
		}
		s.Quality[name] = x.q
		if floor > 0 && x.q.SSIM < floor {
			under = append(under, fmt.Sprintf("%s mean SSIM %.4f", name, x.q.SSIM))
		}
	}
	sort.Strings(under)
	s.QualityWarning = ""
	if len(under) > 0 {
		s.QualityWarning = fmt.Sprintf("%s under the floor %.4g", strings.Join(under, ", "), floor)
	}
}
