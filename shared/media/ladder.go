package media

import (
	"fmt"
	"math"
	"sort"
)

// Codec names a rendition codec.
type Codec string

// Codecs a rendition can use.
const (
	H264 Codec = "h264"
	H265 Codec = "h265"
	VP9  Codec = "vp9"
	AV1  Codec = "av1"
)

// Rung is one rendition of the ladder.
type Rung struct {
	Name    string `json:"name"` // "720p" for H.264, "h265-720p" for others
	Codec   Codec  `json:"codec"`
	Width   int    `json:"width"`
	Height  int    `json:"height"`
	Bitrate int    `json:"bitrate"` // target, bits per second; with CRF, the cap
	// CRF, when set, encodes the rung at this x264 constant rate factor,
	// capped at Bitrate: the quality FitLadder chose for its asset.
	CRF     int    `json:"crf,omitempty"`
	Profile string `json:"profile,omitempty"`
	Level   string `json:"level,omitempty"`
	// CMAF makes the rung fragmented MP4 whatever its codec: the asset is
	// packaged as CMAF, one set of segments for HLS and DASH.
	CMAF bool `json:"cmaf,omitempty"`
}

// Container is the segment format: MPEG-TS for H.264, fragmented MP4
// (with an init segment) where TS cannot carry the codec well, and for
// every rung of a CMAF asset.
func (r Rung) Container() string {
	if (r.Codec == H264 || r.Codec == "") && !r.CMAF {
		return "ts"
	}
	return "fmp4"
}

// SegmentExt is the file extension of the rung's media segments.
func (r Rung) SegmentExt() string {
	if r.Container() == "ts" {
		return ".ts"
	}
	return ".m4s"
}

// h264Rungs follow Apple's HLS authoring guidance for 16:9 H.264
// (1080p 6000k, 720p 3000k, 540p/480p ~1200k, 360p ~730k), with 1440p and
// 2160p above them for the sources that have them (a rung is never above
// the source: no upscaling).
var h264Rungs = []struct {
	height  int
	bitrate int
	profile string
	level   string
}{
	{2160, 16_000_000, "high", "5.1"},
	{1440, 9_000_000, "high", "5.0"},
	{1080, 6_000_000, "high", "4.0"},
	{720, 3_000_000, "high", "3.1"},
	{480, 1_200_000, "main", "3.1"},
	{360, 700_000, "main", "3.0"},
}

// codecEfficiency scales H.264 bitrates for the newer codecs at similar
// quality (HEVC ~60%, VP9 ~65%, AV1 ~50%, the usual rules of thumb).
var codecEfficiency = map[Codec]float64{H264: 1, H265: 0.6, VP9: 0.65, AV1: 0.5}

// Ladder picks the rungs for a source: the default sizes that do not
// upscale it, each with the source's display aspect, for every codec asked
// for (H.264 when none). A rung's "p" is the short side, so portrait video
// gets 1080x1920 for 1080p. A source below the smallest rung gets one rung
// at its own size.
func Ladder(src *VideoStream, codecs []Codec) ([]Rung, error) {
	if len(codecs) == 0 {
		codecs = []Codec{H264}
	}
	h := src.DisplayHeight
	if h == 0 {
		h = src.Height
	}
	aspect := float64(src.DisplayWidth) / float64(h)
	short := min(src.DisplayWidth, h)
	var out []Rung
	for _, c := range codecs {
		eff, ok := codecEfficiency[c]
		if !ok {
			return nil, fmt.Errorf("ladder: unknown codec %q (h264, h265, vp9, av1)", c)
		}
		added := 0
		for _, r := range h264Rungs {
			if r.height > short {
				continue
			}
			out = append(out, rung(c, r.height, aspect, int(float64(r.bitrate)*eff), r.profile, r.level))
			added++
		}
		if added == 0 {
			h := short &^ 1
			scale := float64(h) / 360
			out = append(out, rung(c, h, aspect, int(700_000*eff*scale*scale), "main", "3.0"))
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Width*out[i].Height > out[j].Width*out[j].Height })
	return out, nil
}

func rung(c Codec, p int, aspect float64, bitrate int, profile, level string) Rung {
	w, h := even(float64(p)*aspect), p
	if aspect < 1 {
		w, h = p, even(float64(p)/aspect)
	}
	name := fmt.Sprintf("%dp", p)
	if c != H264 {
		name = string(c) + "-" + name
		profile, level = "", ""
	}
	return Rung{Name: name, Codec: c, Width: w, Height: h, Bitrate: bitrate, Profile: profile, Level: level}
}

func even(f float64) int { return int(math.Round(f/2)) * 2 }
