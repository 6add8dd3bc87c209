// Package function is the split stage: an upload becomes an asset. It
// probes the file, refuses what is not usable media with a failed status
// that says why, cuts the video at keyframes into ~4 s source segments
// (stream copy; audio encoded once so its seams are clean), and writes the
// manifest and the segments, whose writes trigger the next stages.
package function

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/segflow/segflow/shared/asset"
	"github.com/segflow/segflow/shared/config"
	"github.com/segflow/segflow/shared/layout"
	"github.com/segflow/segflow/shared/media"
	"github.com/segflow/segflow/shared/stage"
	"github.com/segflow/segflow/shared/storage"
)

const name = "split"

// env is created on the first call and lives as long as the process.
// Handle receives the triggering object's CloudEvent.
var Handle = stage.Handler(name, []layout.Kind{layout.KindUpload}, func(ctx context.Context, e *stage.Env, t *stage.Trigger, _ *http.Request) (string, error) {
	return split(ctx, e, t)
})

func split(ctx context.Context, e *stage.Env, t *stage.Trigger) (string, error) {
	info, err := e.Store.Stat(ctx, t.Bucket, t.Key)
	if errors.Is(err, storage.ErrNotFound) {
		return "", stage.Permanent(fmt.Errorf("upload %s is gone: %w", t.Key, err))
	}
	if err != nil {
		return "", err
	}
	id := layout.AssetID(t.Key, info.ETag)
	a := layout.Asset(id)
	log := e.Log.With("asset", id)
	fail := func(err error) (string, error) {
		log.Error("upload refused", "key", t.Key, "err", err.Error())
		if uerr := asset.UpdateStatus(ctx, e.Store, t.Bucket, id, name, func(s *asset.Status) {
			s.Source = t.Key
			s.SetStage(name, asset.StateFailed, err)
		}); uerr != nil {
			return "", uerr
		}
		return "", stage.Permanent(fmt.Errorf("asset %s: %w", id, err))
	}
	maxBytes, err := config.Int("SEGFLOW_MAX_UPLOAD_BYTES", 50<<30)
	if err != nil {
		return "", err
	}
	switch {
	case info.Size == 0:
		return fail(media.ErrEmpty)
	case info.Size > int64(maxBytes):
		return fail(fmt.Errorf("upload of %d bytes is over the %d byte limit", info.Size, maxBytes))
	}
	opts, err := uploadOptions(info)
	if err != nil {
		return fail(err)
	}
	if err := asset.UpdateStatus(ctx, e.Store, t.Bucket, id, name, func(s *asset.Status) {
		s.Source = t.Key
		s.SetStage(name, asset.StateProcessing, nil)
	}); err != nil {
		return "", err
	}

	dir, cleanup, err := e.WorkDir(ctx)
	if err != nil {
		return "", err
	}
	defer cleanup()
	src := filepath.Join(dir, "upload"+strings.ToLower(filepath.Ext(t.Key)))
	if _, err := e.Store.GetFile(ctx, t.Bucket, t.Key, src); err != nil {
		return "", err
	}
	probe, err := media.Probe(ctx, src)
	if err != nil {
		return fail(err)
	}
	if err := media.CheckIntegrity(ctx, src); err != nil {
		return fail(err)
	}
	ladder, err := media.Ladder(probe.Video, opts.codecs)
	if err != nil {
		return fail(err)
	}
	segs, err := media.Split(ctx, src, filepath.Join(dir, "segments"), probe, media.SplitOptions{})
	if err != nil {
		return fail(err)
	}
	m := asset.Manifest{
		ID: id, Source: t.Key, SourceETag: info.ETag, Duration: probe.Duration,
		Width: probe.Video.DisplayWidth, Height: probe.Video.Height, FPS: probe.Video.FPS,
		VideoCodec: probe.Video.Codec, Audio: probe.Audio != nil, Ladder: ladder,
		Watermark: opts.watermark, Created: info.LastModified.UTC(),
		Options: asset.UploadOptions{Codecs: opts.codecs},
	}
	for _, s := range segs {
		m.Segments = append(m.Segments, asset.Segment{Index: s.Index, Start: s.Start, Duration: s.Duration})
	}
	// The manifest goes first: every later stage reads it.
	if err := e.Store.PutJSON(ctx, t.Bucket, a.Manifest(), m, storage.PutOptions{Metadata: e.Meta()}); err != nil {
		return "", err
	}
	if err := asset.UpdateStatus(ctx, e.Store, t.Bucket, id, name, func(s *asset.Status) {
		s.SetStage(name, asset.StateDone, nil)
		for _, seg := range segs {
			s.SetSegment(seg.Index, name, asset.StateDone, nil)
		}
	}); err != nil {
		return "", err
	}
	if err := putSegments(ctx, e, t.Bucket, a, segs); err != nil {
		return "", err
	}
	return fmt.Sprintf("split %s into %d segments (%.2fs, %dx%d, %d renditions)", id, len(segs),
		probe.Duration, m.Width, m.Height, len(ladder)), nil
}

// putSegments uploads the segments a few at a time, lowest index first:
// each write starts a transcode, so the first ones run while the rest are
// still going up. The first error stops the others.
func putSegments(ctx context.Context, e *stage.Env, bucket string, a layout.Asset, segs []media.Segment) error {
	const parallel = 3
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	next := make(chan media.Segment)
	var wg sync.WaitGroup
	for range parallel {
		wg.Go(func() {
			for s := range next {
				err := e.Store.PutFile(ctx, bucket, a.Source(s.Index), s.Path, storage.PutOptions{
					ContentType: "video/mp2t",
					Metadata: e.Meta("Segment-Index", strconv.Itoa(s.Index),
						"Segment-Start", strconv.FormatFloat(s.Start, 'f', 6, 64),
						"Segment-Duration", strconv.FormatFloat(s.Duration, 'f', 6, 64)),
				})
				if err != nil {
					cancel(fmt.Errorf("segment %d: %w", s.Index, err))
				}
			}
		})
	}
feed:
	for _, s := range segs {
		select {
		case next <- s:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	return context.Cause(ctx)
}

type options struct {
	codecs    []media.Codec
	watermark *asset.Watermark
}

// uploadOptions reads what the uploader asked for in object metadata:
// Segflow-Codecs ("h264,av1"), Watermark-Text or Watermark-Image (a key in
// the bucket), Watermark-Position and Watermark-Opacity.
func uploadOptions(info storage.Info) (options, error) {
	var o options
	if v := info.Meta("Segflow-Codecs"); v != "" {
		for _, c := range strings.Split(v, ",") {
			o.codecs = append(o.codecs, media.Codec(strings.ToLower(strings.TrimSpace(c))))
		}
	}
	text, image := info.Meta("Watermark-Text"), info.Meta("Watermark-Image")
	if text == "" && image == "" {
		return o, nil
	}
	wm := &asset.Watermark{Text: text, Image: image, Position: info.Meta("Watermark-Position"), Opacity: 0.7}
	if wm.Position == "" {
		wm.Position = "bottom-right"
	}
	if err := media.ValidPosition(wm.Position); err != nil {
		return o, err
	}
	if v := info.Meta("Watermark-Opacity"); v != "" {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || f <= 0 || f > 1 {
			return o, fmt.Errorf("watermark opacity %q: want a number in (0, 1]", v)
		}
		wm.Opacity = f
	}
	if image != "" {
		if err := storage.ValidKey(image); err != nil {
			return o, fmt.Errorf("watermark image: %w", err)
		}
	}
	o.watermark = wm
	return o, nil
}
