package media

import (
	"context"
	"fmt"
	"regexp"
)

// Crop is the part of a stored frame to keep, in pixels.
type Crop struct{ W, H, X, Y int }

// String is the crop filter's argument, "w:h:x:y".
func (c Crop) String() string { return fmt.Sprintf("%d:%d:%d:%d", c.W, c.H, c.X, c.Y) }

var reCrop = regexp.MustCompile(`crop=(\d+):(\d+):(\d+):(\d+)`)

// DetectCrop finds the black bars of a whole file with cropdetect: one
// crop that keeps every picture of it (reset=0 grows the box over all
// the frames looked at), in stored-frame coordinates (no autorotate), so
// every segment gets the same one. Only keyframes are decoded: spread
// over the file every few seconds, they see what the bars leave out at
// a fraction of a full decode.
func DetectCrop(ctx context.Context, in string) (Crop, error) {
	_, log, err := runOutput(ctx, "ffmpeg", "-hide_banner", "-nostdin", "-noautorotate", "-skip_frame", "nokey", "-i", in,
		"-map", "0:v:0", "-vf", "cropdetect=limit=24:round=2:reset=0:skip=0", "-f", "null", "-")
	if err != nil {
		return Crop{}, fmt.Errorf("cropdetect %s: %w", in, err)
	}
	all := reCrop.FindAllStringSubmatch(log, -1)
	if len(all) == 0 {
		return Crop{}, fmt.Errorf("cropdetect %s: no picture to look at", in)
	}
	m := all[len(all)-1]
	var c Crop
	fmt.Sscanf(m[1]+" "+m[2]+" "+m[3]+" "+m[4], "%d %d %d %d", &c.W, &c.H, &c.X, &c.Y)
	return c, nil
}

// Cropped is v as it shows once cropped to c: the display size follows
// (sample aspect and quarter turn kept), and Picture crops. A crop that
// keeps the whole frame, or none at all (a black file), changes nothing.
func (v VideoStream) Cropped(c Crop) *VideoStream {
	if c.W <= 0 || c.H <= 0 || (c.W >= v.Width && c.H >= v.Height) {
		return &v
	}
	sar := float64(v.DisplayWidth) / float64(v.Width)
	if v.Rotation == 90 || v.Rotation == 270 {
		sar = float64(v.DisplayHeight) / float64(v.Width)
	}
	w, h := int(float64(c.W)*sar+0.5), c.H
	if v.Rotation == 90 || v.Rotation == 270 {
		w, h = h, w
	}
	v.DisplayWidth, v.DisplayHeight, v.Crop = w, h, c.String()
	return &v
}
