package media

import (
	"math"
	"testing"
)

// fitRung reads the CRF for FitTarget (0.997, 25.23 dB) off the line
// through two trials in SSIM decibels, rounded down into [18, 34], and the
// bitrate off the line through their log bitrates.
func TestFitRung(t *testing.T) {
	tests := []struct {
		name       string
		a, b       trialPoint
		crf        int
		bitrate    float64
		bitrateTol float64
	}{
		// 30 dB at CRF 20, 20 dB at 28: 25.23 dB at 23.8.
		{"between", trialPoint{20, 0.999, 4e6}, trialPoint{28, 0.99, 1e6}, 23, 4e6 * math.Pow(0.25, 3.0/8), 1},
		// Past the target at both: as far as the line goes, then 34.
		{"easy", trialPoint{20, 0.9999, 2e5}, trialPoint{28, 0.9995, 1e5}, 34, 2e5 * math.Pow(0.5, 14.0/8), 1},
		// Short of it at both: the best the range allows.
		{"hopeless", trialPoint{20, 0.90, 9e7}, trialPoint{28, 0.80, 3e7}, 18, 9e7 * math.Pow(3, 2.0/8), 1},
		// No change between the trials (a still): the higher CRF.
		{"flat", trialPoint{20, 0.9991, 1e5}, trialPoint{28, 0.9991, 1e5}, 28, 1e5, 1},
	}
	for _, tc := range tests {
		f := fitRung(tc.a, tc.b)
		if f.crf != tc.crf || math.Abs(f.bitrate-tc.bitrate) > tc.bitrateTol {
			t.Errorf("%s: CRF %d at %.0f b/s; want %d at %.0f", tc.name, f.crf, f.bitrate, tc.crf, tc.bitrate)
		}
	}
}
