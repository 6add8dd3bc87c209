// Package function is the watermark stage: when the upload asked for a
// watermark, it burns the text or PNG into each source segment and writes
// assets/<id>/marked/<n>.ts, which transcode takes instead of the source.
// Without one it does nothing.
package function

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"sync"

	"github.com/segflow/segflow/shared/asset"
	"github.com/segflow/segflow/shared/layout"
	"github.com/segflow/segflow/shared/media"
	"github.com/segflow/segflow/shared/stage"
	"github.com/segflow/segflow/shared/storage"
)

const name = "watermark"

var env = sync.OnceValues(func() (*stage.Env, error) { return stage.NewEnv(name) })

// Handle receives a source segment's CloudEvent.
func Handle(w http.ResponseWriter, r *http.Request) {
	e, err := env()
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	t, err := e.ReadTrigger(r)
	if err == nil && t.Layout.Kind != layout.KindSourceSegment {
		err = stage.Permanent(fmt.Errorf("watermark takes source segments, not %s", t.Key))
	}
	if err != nil {
		e.Respond(w, t, "", err)
		return
	}
	msg, err := mark(r.Context(), e, t)
	e.Respond(w, t, msg, err)
}

func mark(ctx context.Context, e *stage.Env, t *stage.Trigger) (string, error) {
	id, n := t.Layout.AssetID, t.Layout.Index
	m, err := asset.ReadManifest(ctx, e.Store, t.Bucket, id)
	if errors.Is(err, storage.ErrNotFound) {
		return "", stage.Permanent(err)
	}
	if err != nil {
		return "", err
	}
	if m.Watermark == nil {
		return fmt.Sprintf("no watermark asked for %s", id), nil
	}
	fail := func(err error) (string, error) {
		if uerr := asset.UpdateStatus(ctx, e.Store, t.Bucket, id, name, func(s *asset.Status) {
			s.SetSegment(n, name, asset.StateFailed, err)
		}); uerr != nil {
			return "", uerr
		}
		return "", stage.Permanent(err)
	}
	dir, cleanup, err := e.WorkDir(ctx)
	if err != nil {
		return "", err
	}
	defer cleanup()
	in, out := filepath.Join(dir, "in.ts"), filepath.Join(dir, "marked.ts")
	srcInfo, err := e.Store.GetFile(ctx, t.Bucket, t.Key, in)
	if err != nil {
		return "", err
	}
	o := media.WatermarkOptions{Text: m.Watermark.Text, Position: m.Watermark.Position,
		Opacity: m.Watermark.Opacity, FPS: m.FPS}
	if m.Watermark.Text == "" {
		o.Image = filepath.Join(dir, "mark.png")
		if _, err := e.Store.GetFile(ctx, t.Bucket, m.Watermark.Image, o.Image); err != nil {
			if errors.Is(err, storage.ErrNotFound) {
				return fail(fmt.Errorf("watermark image %s: %w", m.Watermark.Image, err))
			}
			return "", err
		}
	}
	if err := media.Watermark(ctx, in, out, o); err != nil {
		return fail(err)
	}
	// The marked copy carries the source segment's timing on to transcode.
	meta := e.Meta()
	for _, k := range []string{"Segment-Index", "Segment-Start", "Segment-Duration", "Segment-Wallclock"} {
		if v := srcInfo.Meta(k); v != "" {
			meta[k] = v
		}
	}
	if err := e.Store.PutFile(ctx, t.Bucket, layout.Asset(id).Marked(n), out,
		storage.PutOptions{ContentType: "video/mp2t", Metadata: meta}); err != nil {
		return "", err
	}
	if err := asset.UpdateStatus(ctx, e.Store, t.Bucket, id, name, func(s *asset.Status) {
		s.SetSegment(n, name, asset.StateDone, nil)
	}); err != nil {
		return "", err
	}
	return fmt.Sprintf("watermarked segment %d of %s", n, id), nil
}
