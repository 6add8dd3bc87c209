package media

import "strings"

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
// deinterlace first (fields are rows of the stored frame), crop, tone
// map, then turn upright.
func (p Picture) Filter() string {
	var fs []string
	if p.Interlaced {
		fs = append(fs, "bwdif=mode=send_frame:parity=auto:deint=all")
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
