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
