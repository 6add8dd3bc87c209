package thumbnail

import (
	"bytes"
	"image"
	"image/color"
	"image/jpeg"
	"strings"
	"testing"

	"github.com/segflow/segflow/shared/asset"
)

func TestBuildStoryboard(t *testing.T) {
	strip := func(tiles int, c color.Gray) image.Image {
		img := image.NewGray(image.Rect(0, 0, tiles*tileW, tileH))
		for i := range img.Pix {
			img.Pix[i] = c.Y
		}
		return img
	}
	m := &asset.Manifest{Segments: []asset.Segment{{Start: 1.4, Duration: 4.5}, {Start: 5.9, Duration: 3}}}
	sprite, vtt, err := buildStoryboard([]image.Image{strip(3, color.Gray{200}), strip(2, color.Gray{40})}, m, "sprite.jpg")
	if err != nil {
		t.Fatal(err)
	}
	img, err := jpeg.Decode(bytes.NewReader(sprite))
	if err != nil || img.Bounds().Dx() != 3*tileW || img.Bounds().Dy() != 2*tileH {
		t.Fatalf("sprite %v %v", img.Bounds(), err)
	}
	want := "WEBVTT\n\n" +
		"00:00:00.000 --> 00:00:02.000\nsprite.jpg#xywh=0,0,160,90\n\n" +
		"00:00:02.000 --> 00:00:04.000\nsprite.jpg#xywh=160,0,160,90\n\n" +
		"00:00:04.000 --> 00:00:04.500\nsprite.jpg#xywh=320,0,160,90\n\n" +
		"00:00:04.500 --> 00:00:06.500\nsprite.jpg#xywh=0,90,160,90\n\n" +
		"00:00:06.500 --> 00:00:07.500\nsprite.jpg#xywh=160,90,160,90\n\n"
	if vtt != want {
		t.Fatalf("vtt:\n%s\nwant:\n%s", vtt, want)
	}
	if !strings.HasPrefix(vtt, "WEBVTT") {
		t.Fatal("not webvtt")
	}
}
