package media

import (
	"strconv"
	"testing"
)

func TestLadder(t *testing.T) {
	tests := []struct {
		name   string
		src    VideoStream
		codecs []Codec
		want   []string // name@WxH
	}{
		{"1080p source", VideoStream{Width: 1920, Height: 1080, DisplayWidth: 1920}, nil,
			[]string{"1080p@1920x1080", "720p@1280x720", "480p@854x480", "360p@640x360"}},
		{"720p never upscales", VideoStream{Width: 1280, Height: 720, DisplayWidth: 1280}, nil,
			[]string{"720p@1280x720", "480p@854x480", "360p@640x360"}},
		{"4:3 keeps aspect", VideoStream{Width: 1440, Height: 1080, DisplayWidth: 1440}, nil,
			[]string{"1080p@1440x1080", "720p@960x720", "480p@640x480", "360p@480x360"}},
		{"anamorphic uses display width", VideoStream{Width: 720, Height: 576, DisplayWidth: 1024}, nil,
			[]string{"480p@854x480", "360p@640x360"}},
		{"vertical video", VideoStream{Width: 1080, Height: 1920, DisplayWidth: 1080}, nil,
			[]string{"1080p@1080x1920", "720p@720x1280", "480p@480x854", "360p@360x640"}},
		{"tiny source gets its own size", VideoStream{Width: 320, Height: 240, DisplayWidth: 320}, nil,
			[]string{"240p@320x240"}},
		{"tiny portrait", VideoStream{Width: 240, Height: 426, DisplayWidth: 240}, nil,
			[]string{"240p@240x426"}},
		{"2160p source gets its own rung and 1440p", VideoStream{Width: 3840, Height: 2160, DisplayWidth: 3840}, nil,
			[]string{"2160p@3840x2160", "1440p@2560x1440", "1080p@1920x1080", "720p@1280x720", "480p@854x480", "360p@640x360"}},
		{"1440p source gets its own rung", VideoStream{Width: 2560, Height: 1440, DisplayWidth: 2560}, nil,
			[]string{"1440p@2560x1440", "1080p@1920x1080", "720p@1280x720", "480p@854x480", "360p@640x360"}},
		{"a phone's upright 4K", VideoStream{Width: 3840, Height: 2160, DisplayWidth: 2160, DisplayHeight: 3840, Rotation: 270}, nil,
			[]string{"2160p@2160x3840", "1440p@1440x2560", "1080p@1080x1920", "720p@720x1280", "480p@480x854", "360p@360x640"}},
		{"a phone's upright 720p", VideoStream{Width: 1280, Height: 720, DisplayWidth: 720, DisplayHeight: 1280, Rotation: 90}, nil,
			[]string{"720p@720x1280", "480p@480x854", "360p@360x640"}},
		{"two codecs", VideoStream{Width: 1280, Height: 720, DisplayWidth: 1280}, []Codec{H264, AV1},
			[]string{"720p@1280x720", "av1-720p@1280x720", "480p@854x480", "av1-480p@854x480", "360p@640x360", "av1-360p@640x360"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Ladder(&tc.src, tc.codecs)
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, r := range got {
				names = append(names, r.Name+"@"+itoa(r.Width)+"x"+itoa(r.Height))
				if r.Width%2 != 0 || r.Height%2 != 0 || r.Bitrate <= 0 {
					t.Errorf("rung %+v: odd size or no bitrate", r)
				}
			}
			if len(names) != len(tc.want) {
				t.Fatalf("got %v, want %v", names, tc.want)
			}
			for i := range names {
				if names[i] != tc.want[i] {
					t.Fatalf("got %v, want %v", names, tc.want)
				}
			}
		})
	}
	if _, err := Ladder(&VideoStream{Width: 640, Height: 360, DisplayWidth: 640}, []Codec{"mpeg1"}); err == nil {
		t.Fatal("unknown codec accepted")
	}
	r, _ := Ladder(&VideoStream{Width: 1920, Height: 1080, DisplayWidth: 1920}, []Codec{AV1})
	if r[0].Bitrate != 3_000_000 || r[0].Container() != "fmp4" || r[0].SegmentExt() != ".m4s" {
		t.Fatalf("av1 top rung = %+v", r[0])
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
