// Package thumbnail is the thumbnail stage: per source segment a thumbnail
// and a strip of scrub-preview tiles (the first segment also gives the
// poster); once every segment's strip is in the bucket, the sprite sheet
// and its WebVTT storyboard (#xywh cues) that players use for scrubbing.
package thumbnail

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"strconv"

	"github.com/segflow/segflow/shared/layout"
	"github.com/segflow/segflow/shared/media"
	"github.com/segflow/segflow/shared/stage"
	"github.com/segflow/segflow/shared/storage"
)

const name = "thumbnail"

// Tile geometry and spacing of the storyboard.
const (
	tileW, tileH = 160, 90
	tileEvery    = 2.0 // seconds
	thumbWidth   = 320
	posterWidth  = 1280
)

// Handle receives the triggering object's CloudEvent.
var Handle = stage.Handler(name, []layout.Kind{layout.KindSourceSegment}, func(ctx context.Context, e *stage.Env, t *stage.Trigger, _ *http.Request) (string, error) {
	return thumbs(ctx, e, t)
})

func thumbs(ctx context.Context, e *stage.Env, t *stage.Trigger) (string, error) {
	id, n := t.Layout.AssetID, t.Layout.Index
	m, err := e.Manifest(ctx, t)
	if err != nil {
		return "", err
	}
	if n >= len(m.Segments) {
		return "", stage.Permanent(fmt.Errorf("segment %d is not in the manifest of %s", n, id))
	}
	if m.AudioOnly() { // split made the poster from the cover art, if any
		if err := e.SegmentSkipped(ctx, t); err != nil {
			return "", err
		}
		return fmt.Sprintf("segment %d of %s has no picture", n, id), nil
	}
	seg := m.Segments[n]
	a := layout.Asset(id)
	dir, cleanup, err := e.WorkDir(ctx)
	if err != nil {
		return "", err
	}
	defer cleanup()
	in := filepath.Join(dir, "in"+t.Layout.Ext)
	if _, err := e.GetTrigger(ctx, t, in); err != nil {
		return "", err
	}
	jpeg := storage.PutOptions{ContentType: "image/jpeg", Metadata: e.Meta()}
	thumb := filepath.Join(dir, "thumb.jpg")
	if err := media.Thumbnail(ctx, in, thumb, 0, thumbWidth, m.Picture); err != nil {
		return "", e.FailSegment(ctx, t, err)
	}
	if err := e.Store.PutFile(ctx, t.Bucket, a.Thumb(layout.SegmentName(n, ".jpg")), thumb, jpeg); err != nil {
		return "", err
	}
	if n == 0 {
		poster := filepath.Join(dir, "poster.jpg")
		if err := media.Thumbnail(ctx, in, poster, min(1.0, seg.Duration/2), posterWidth, m.Picture); err != nil {
			return "", e.FailSegment(ctx, t, err)
		}
		if err := e.Store.PutFile(ctx, t.Bucket, a.Thumb("poster.jpg"), poster, jpeg); err != nil {
			return "", err
		}
	}
	strip := filepath.Join(dir, "strip.jpg")
	tiles, err := media.TileStrip(ctx, in, strip, seg.Duration, tileEvery, tileW, tileH, m.Picture)
	if err != nil {
		return "", e.FailSegment(ctx, t, err)
	}
	stripOpts := jpeg
	stripOpts.Metadata = e.Meta("Tiles", strconv.Itoa(tiles))
	if err := e.Store.PutFile(ctx, t.Bucket, a.Thumb("strips/"+layout.SegmentName(n, ".jpg")), strip, stripOpts); err != nil {
		return "", err
	}
	if err := e.SegmentDone(ctx, t); err != nil {
		return "", err
	}
	done, err := storyboard(ctx, e, t.Bucket, m)
	if err != nil {
		return "", err
	}
	if done {
		if err := e.AssetDone(ctx, t); err != nil {
			return "", err
		}
		return fmt.Sprintf("thumbnails of segment %d of %s; storyboard complete", n, id), nil
	}
	return fmt.Sprintf("thumbnails of segment %d of %s", n, id), nil
}
