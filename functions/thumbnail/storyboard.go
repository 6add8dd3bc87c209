package thumbnail

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/draw"
	"image/jpeg"
	"math"
	"strings"

	"github.com/segflow/segflow/shared/asset"
	"github.com/segflow/segflow/shared/layout"
	"github.com/segflow/segflow/shared/stage"
	"github.com/segflow/segflow/shared/storage"
)

// storyboard builds thumbs/sprite.jpg and thumbs/storyboard.vtt once every
// segment's strip is in the bucket: one sprite row per segment. Whichever
// call sees the last strip writes them; a repeat writes the same bytes.
func storyboard(ctx context.Context, e *stage.Env, bucket string, m *asset.Manifest) (bool, error) {
	m, err := asset.Settled(ctx, e.Store, bucket, m)
	if err != nil || m.Splitting {
		return false, err
	}
	a := layout.Asset(m.ID)
	listed, err := e.Store.List(ctx, bucket, a.Thumb("strips/"), storage.ListOptions{Recursive: true})
	if err != nil {
		return false, err
	}
	if len(listed) < len(m.Segments) {
		return false, nil
	}
	strips := make([]image.Image, len(m.Segments))
	for i := range m.Segments {
		b, err := e.Store.GetBytes(ctx, bucket, a.Thumb("strips/"+layout.SegmentName(i, ".jpg")))
		if err != nil {
			return false, err
		}
		img, err := jpeg.Decode(bytes.NewReader(b))
		if err != nil {
			return false, fmt.Errorf("strip %d of %s: %w", i, m.ID, err)
		}
		strips[i] = img
	}
	sprite, vtt, err := buildStoryboard(strips, m, "sprite.jpg")
	if err != nil {
		return false, err
	}
	if err := e.Store.PutBytes(ctx, bucket, a.Thumb("sprite.jpg"), sprite,
		storage.PutOptions{ContentType: "image/jpeg", Metadata: e.Meta()}); err != nil {
		return false, err
	}
	if err := e.Store.PutBytes(ctx, bucket, a.Thumb("storyboard.vtt"), []byte(vtt),
		storage.PutOptions{ContentType: "text/vtt", Metadata: e.Meta()}); err != nil {
		return false, err
	}
	return true, nil
}

// buildStoryboard composes strips (one per segment, in order) into a sprite
// and writes the WebVTT cues that point into it.
func buildStoryboard(strips []image.Image, m *asset.Manifest, spriteName string) ([]byte, string, error) {
	cols := 0
	for _, s := range strips {
		cols = max(cols, s.Bounds().Dx()/tileW)
	}
	sprite := image.NewRGBA(image.Rect(0, 0, cols*tileW, len(strips)*tileH))
	for row, s := range strips {
		draw.Draw(sprite, image.Rect(0, row*tileH, s.Bounds().Dx(), (row+1)*tileH), s, s.Bounds().Min, draw.Src)
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, sprite, &jpeg.Options{Quality: 75}); err != nil {
		return nil, "", err
	}
	var vtt strings.Builder
	vtt.WriteString("WEBVTT\n\n")
	origin := m.Segments[0].Start
	for row, seg := range m.Segments {
		segStart, segEnd := seg.Start-origin, seg.Start-origin+seg.Duration
		tiles := strips[row].Bounds().Dx() / tileW
		for i := 0; i < tiles; i++ {
			from := segStart + float64(i)*tileEvery
			to := math.Min(from+tileEvery, segEnd)
			if to <= from {
				break
			}
			fmt.Fprintf(&vtt, "%s --> %s\n%s#xywh=%d,%d,%d,%d\n\n", vttTime(from), vttTime(to), spriteName, i*tileW, row*tileH, tileW, tileH)
		}
	}
	return buf.Bytes(), vtt.String(), nil
}

func vttTime(s float64) string {
	ms := int64(math.Round(s * 1000))
	return fmt.Sprintf("%02d:%02d:%02d.%03d", ms/3_600_000, ms/60_000%60, ms/1000%60, ms%1000)
}
