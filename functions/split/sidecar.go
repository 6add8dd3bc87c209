package split

import (
	"context"
	"errors"
	"fmt"
	"path"
	"path/filepath"
	"strings"

	"github.com/segflow/segflow/shared/asset"
	"github.com/segflow/segflow/shared/layout"
	"github.com/segflow/segflow/shared/media"
	"github.com/segflow/segflow/shared/stage"
	"github.com/segflow/segflow/shared/storage"
)

// A sidecar subtitle file, uploads/<video name>.<language>.srt|vtt, goes
// with the video uploaded under that name, whichever comes first: the
// sidecar's own event attaches it to every asset of that name already
// split, and a video's split attaches every sidecar already there once
// it has cut the video. Attaching writes the subtitles as one WebVTT
// segment, assets/<id>/subs-<language>/00000.vtt, which the packager
// lists as a SUBTITLES rendition.

// sidecarArrived attaches the sidecar key to the assets of its video.
func sidecarArrived(ctx context.Context, e *stage.Env, bucket, key string) (string, error) {
	video, _, _, _ := layout.Sidecar(key)
	objs, err := e.Store.List(ctx, bucket, video+".", storage.ListOptions{})
	if err != nil {
		return "", err
	}
	var attached []string
	for _, o := range objs {
		if _, _, _, sub := layout.Sidecar(o.Key); sub || strings.TrimSuffix(o.Key, path.Ext(o.Key)) != video {
			continue
		}
		m, err := asset.ReadManifest(ctx, e.Store, bucket, layout.AssetID(o.Key, o.ETag))
		if errors.Is(err, storage.ErrNotFound) {
			continue // its split attaches the sidecar when it ends
		}
		if err != nil {
			return "", err
		}
		if m.Splitting {
			continue // likewise
		}
		if err := attachSidecar(ctx, e, bucket, key, m); err != nil {
			return "", err
		}
		attached = append(attached, m.ID)
	}
	if len(attached) == 0 {
		return fmt.Sprintf("subtitles %s wait for their video", key), nil
	}
	return fmt.Sprintf("subtitles %s attached to %s", key, strings.Join(attached, ", ")), nil
}

// attachSidecars attaches every sidecar of the video uploaded as key to
// its asset m, once m is split.
func attachSidecars(ctx context.Context, e *stage.Env, bucket, key string, m *asset.Manifest) error {
	video := strings.TrimSuffix(key, path.Ext(key))
	objs, err := e.Store.List(ctx, bucket, video+".", storage.ListOptions{})
	if err != nil {
		return err
	}
	for _, o := range objs {
		if v, _, _, ok := layout.Sidecar(o.Key); ok && v == video {
			if err := attachSidecar(ctx, e, bucket, o.Key, m); err != nil && !stage.IsPermanent(err) {
				return err
			}
		}
	}
	return nil
}

// attachSidecar writes one sidecar as asset m's WebVTT. A file that is
// not subtitles fails permanently, saying so, and leaves the asset as it
// is.
func attachSidecar(ctx context.Context, e *stage.Env, bucket, key string, m *asset.Manifest) error {
	_, lang, format, _ := layout.Sidecar(key)
	if len(m.Segments) == 0 {
		return stage.Permanent(fmt.Errorf("subtitles %s: asset %s has no segments", key, m.ID))
	}
	dir, cleanup, err := e.WorkDir(ctx)
	if err != nil {
		return err
	}
	defer cleanup()
	in, out := filepath.Join(dir, "upload."+format), filepath.Join(dir, "subtitles.vtt")
	if _, err := e.Store.GetFile(ctx, bucket, key, in); err != nil {
		return err
	}
	origin := m.Segments[0].Start
	if err := media.SidecarVTT(ctx, in, format, out, origin); err != nil {
		err = renamed(err, in, key)
		e.Log.Error("subtitles refused", "asset", m.ID, "key", key, "err", err.Error())
		return stage.Permanent(err)
	}
	meta := asset.SegmentMeta{Index: 0, Start: origin, Duration: m.Duration, Codecs: "wvtt"}.Encode(e.Meta(languageMeta, lang))
	return e.Store.PutFile(ctx, bucket, layout.Asset(m.ID).Rendition(layout.SidecarPrefix+lang, 0, ".vtt"), out,
		storage.PutOptions{ContentType: "text/vtt", Metadata: meta})
}

// languageMeta is the object metadata that carries a subtitle file's
// language to the packager.
const languageMeta = "Language"
