package media

import "testing"

func TestCropped(t *testing.T) {
	tests := []struct {
		name       string
		v          VideoStream
		c          Crop
		w, h       int
		filterCrop string
	}{
		{"letterbox", VideoStream{Width: 1920, Height: 1080, DisplayWidth: 1920, DisplayHeight: 1080}, Crop{1920, 800, 0, 140}, 1920, 800, "1920:800:0:140"},
		{"a phone's upright pillarbox", VideoStream{Width: 1280, Height: 720, DisplayWidth: 720, DisplayHeight: 1280, Rotation: 90}, Crop{1000, 720, 140, 0}, 720, 1000, "1000:720:140:0"},
		{"anamorphic", VideoStream{Width: 1440, Height: 1080, DisplayWidth: 1920, DisplayHeight: 1080}, Crop{1440, 816, 0, 132}, 1920, 816, "1440:816:0:132"},
		{"nothing to crop", VideoStream{Width: 640, Height: 360, DisplayWidth: 640, DisplayHeight: 360}, Crop{640, 360, 0, 0}, 640, 360, ""},
		{"a black file", VideoStream{Width: 640, Height: 360, DisplayWidth: 640, DisplayHeight: 360}, Crop{}, 640, 360, ""},
	}
	for _, tc := range tests {
		got := tc.v.Cropped(tc.c)
		if got.DisplayWidth != tc.w || got.DisplayHeight != tc.h || got.Picture().Crop != tc.filterCrop {
			t.Errorf("%s: %dx%d crop %q, want %dx%d crop %q", tc.name, got.DisplayWidth, got.DisplayHeight, got.Picture().Crop, tc.w, tc.h, tc.filterCrop)
		}
	}
}

func TestPictureFilter(t *testing.T) {
	tests := []struct {
		p    Picture
		want string
	}{
		{Picture{}, ""},
		{Picture{Rotation: 90}, "transpose=cclock"},
		{Picture{Interlaced: true, Crop: "1920:800:0:140", Rotation: 180}, "bwdif=mode=send_frame:parity=auto:deint=all,crop=1920:800:0:140,hflip,vflip"},
		{Picture{CFR: 30000.0 / 1001, End: 10.01}, "fps=30000/1001,tpad=stop_mode=clone:stop_duration=1,trim=end_pts=300"},
		{Picture{CFR: 25}, "fps=25"},
		{Picture{HDR: "pq"}, tonemap},
	}
	for _, tc := range tests {
		if got := tc.p.Filter(); got != tc.want {
			t.Errorf("%+v: %q, want %q", tc.p, got, tc.want)
		}
	}
	for _, tc := range []struct{ base, mean, want float64 }{
		{30, 27.4, 30}, {60, 41.2, 60}, {600, 29.6, 30000.0 / 1001}, {1200.0 / 41, 24.3, 24}, {25, 24.1, 25},
	} {
		if got := standardRate(tc.base, tc.mean); got != tc.want {
			t.Errorf("standardRate(%g, %g) = %g, want %g", tc.base, tc.mean, got, tc.want)
		}
	}
}
