// Package watermark is the watermark stage: when the upload asked for a
// watermark, it burns the text or PNG into each source segment and writes
// assets/<id>/marked/<n>.ts, which transcode takes instead of the source.
// Without one it does nothing.
package watermark

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"

	"github.com/segflow/segflow/shared/asset"
	"github.com/segflow/segflow/shared/layout"
	"github.com/segflow/segflow/shared/media"
	"github.com/segflow/segflow/shared/stage"
	"github.com/segflow/segflow/shared/storage"
)

const name = "watermark"

// Handle receives the triggering object's CloudEvent.
var Handle = stage.Handler(name, []layout.Kind{layout.KindSourceSegment}, func(ctx context.Context, e *stage.Env, t *stage.Trigger, _ *http.Request) (string, error) {
	return mark(ctx, e, t)
})

func mark(ctx context.Context, e *stage.Env, t *stage.Trigger) (string, error) {
	id, n := t.Layout.AssetID, t.Layout.Index
	m, err := e.Manifest(ctx, t)
	if err != nil {
		return "", err
	}
	if m.Watermark == nil {
		return fmt.Sprintf("no watermark asked for %s", id), nil
	}
	dir, cleanup, err := e.WorkDir(ctx)
	if err != nil {
		return "", err
	}
	defer cleanup()
	in, out := filepath.Join(dir, "in"+t.Layout.Ext), filepath.Join(dir, "marked.ts")
	srcInfo, err := e.GetTrigger(ctx, t, in)
	if err != nil {
		return "", err
	}
	seg, _ := m.SegmentOf(n, srcInfo)
	pic := m.Picture
	pic.End = seg.Start + seg.Duration
	o := media.WatermarkOptions{Text: m.Watermark.Text, Position: m.Watermark.Position,
		Opacity: m.Watermark.Opacity, FPS: m.FPS, Live: m.Live, First: n == 0, Last: m.InTail(seg), Picture: pic}
	if m.Watermark.Text == "" {
		o.Image = filepath.Join(dir, "mark.png")
		if _, err := e.Store.GetFile(ctx, t.Bucket, m.Watermark.Image, o.Image); err != nil {
			if errors.Is(err, storage.ErrNotFound) {
				return "", e.FailSegment(ctx, t, fmt.Errorf("watermark image %s: %w", m.Watermark.Image, err))
			}
			return "", err
		}
	}
	if err := media.Watermark(ctx, in, out, o); err != nil {
		return "", e.FailSegment(ctx, t, err)
	}
	// The marked copy carries the source segment's timing on to transcode.
	meta := e.Meta()
	if sm, err := asset.ReadSegmentMeta(srcInfo); err == nil {
		meta = asset.SegmentMeta{Index: sm.Index, Start: sm.Start, Duration: sm.Duration, Wallclock: sm.Wallclock}.Encode(meta)
	}
	if err := e.Store.PutFile(ctx, t.Bucket, layout.Asset(id).Marked(n), out,
		storage.PutOptions{ContentType: "video/mp2t", Metadata: meta}); err != nil {
		return "", err
	}
	if err := e.SegmentDone(ctx, t); err != nil {
		return "", err
	}
	return fmt.Sprintf("watermarked segment %d of %s", n, id), nil
}
