package media

import (
	"math"
	"strconv"
	"strings"
)

// Picture is what turns a source's decoded frames into the picture the
// viewer is meant to see, which the source segments (stream copies of
// the upload) do not carry or do not apply: the fields to weave, the
// display rotation, the black bars to crop, the HDR to map to SDR. Every
// stage that decodes a source segment applies Filter first.
type Picture struct {
	// Rotation is how far the picture is turned counterclockwise for
	// display (0, 90, 180 or 270): phones film upright into a landscape
	// frame and say so in the display matrix, which MPEG-TS drops.
	Rotation int `json:"rotation,omitempty"`
	// Interlaced says the frames hold two fields (1080i broadcast
	// files): bwdif makes one progressive frame of each.
	Interlaced bool `json:"interlaced,omitempty"`
	// Crop is the part of the stored frame to keep, "w:h:x:y" (crop
	// filter), before rotation: the bars cropdetect found.
	Crop string `json:"crop,omitempty"`
	// CFR is the constant frame rate a variable-rate source (a phone's)
	// is made at: the fps filter puts its frames on that rate's grid,
	// duplicating or dropping where they fall between.
	CFR float64 `json:"cfr,omitempty"`
	// End, set per segment, is where the segment's frames stop on the
	// timeline (the next segment's start). With CFR the segment's frames
	// are padded or trimmed to the last grid point before it: the fps
	// filter alone ends a segment on its last frame's guessed duration,
	// which leaves a hole or a doubled frame at a seam after a dropped
	// frame.
	End float64 `json:"-"`
	// HDR is the source's transfer, "pq" (HDR10) or "hlg": the renditions
	// are SDR BT.709, tone-mapped.
	HDR string `json:"hdr,omitempty"`
}

// tonemap maps PQ or HLG BT.2020 to SDR BT.709 through linear light
// (zimg does the transfers, Hable the compression of the highlights):
// what ffmpeg can do without a GPU.
const tonemap = "zscale=t=linear:npl=100,format=gbrpf32le,zscale=p=bt709,tonemap=tonemap=hable:desat=0," +
	"zscale=t=bt709:m=bt709:r=tv,format=yuv420p"

// Filter is the filter chain that makes the picture ("" for none):
// deinterlace first (fields are rows of the stored frame), a constant
// rate, crop, tone map, then turn upright.
func (p Picture) Filter() string {
	var fs []string
	if p.Interlaced {
		fs = append(fs, "bwdif=mode=send_frame:parity=auto:deint=all")
	}
	if p.CFR > 0 {
		fs = append(fs, "fps="+rateString(p.CFR))
		if p.End > 0 {
			// fps counts in frames of 1/CFR from zero: the next segment
			// starts at grid point round(End*CFR), exact in trim's end_pts
			// (its end in seconds drops a frame half a frame before it).
			end := strconv.FormatInt(int64(math.Round(p.End*p.CFR)), 10)
			fs = append(fs, "tpad=stop_mode=clone:stop_duration=1", "trim=end_pts="+end)
		}
	}
	if p.Crop != "" {
		fs = append(fs, "crop="+p.Crop)
	}
	if p.HDR != "" {
		fs = append(fs, tonemap)
	}
	if r := RotateFilter(p.Rotation); r != "" {
		fs = append(fs, r)
	}
	return strings.Join(fs, ",")
}

// head is Filter as the head of a filter chain ("" or "f,").
func (p Picture) head() string {
	if f := p.Filter(); f != "" {
		return f + ","
	}
	return ""
}

// rateString writes a frame rate as ffmpeg reads it exactly: the NTSC
// rates as n/1001, others as a decimal.
func rateString(r float64) string {
	if n := math.Round(r * 1001); math.Abs(r*1001-n) < 1e-3 && int(n)%1000 == 0 {
		return strconv.Itoa(int(n)) + "/1001"
	}
	return strconv.FormatFloat(r, 'f', -1, 64)
}
