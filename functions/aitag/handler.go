// Package aitag is the aitag stage: per source segment it runs the
// taggers (scene cuts, black and frozen video, silence and loudness,
// on-screen text, speech), writes the segment's tags in asset time, its
// captions as a WebVTT segment of the subtitle rendition, and, once every
// segment is tagged, the asset-level merge the catalog indexes.
package aitag

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/segflow/segflow/shared/asset"
	"github.com/segflow/segflow/shared/config"
	"github.com/segflow/segflow/shared/layout"
	"github.com/segflow/segflow/shared/stage"
	"github.com/segflow/segflow/shared/storage"
	"github.com/segflow/segflow/shared/tagging"
)

const name = "aitag"

// SegmentTags is tags/<n>.json.
type SegmentTags struct {
	Asset    string            `json:"asset"`
	Segment  int               `json:"segment"`
	Start    float64           `json:"start"` // asset time
	Duration float64           `json:"duration"`
	Tags     []tagging.Tag     `json:"tags"`
	Errors   map[string]string `json:"errors,omitempty"`
}

// Handle receives the triggering object's CloudEvent.
var Handle = stage.Handler(name, []layout.Kind{layout.KindSourceSegment}, func(ctx context.Context, e *stage.Env, t *stage.Trigger, _ *http.Request) (string, error) {
	return tag(ctx, e, t)
})

func tag(ctx context.Context, e *stage.Env, t *stage.Trigger) (string, error) {
	id, n := t.Layout.AssetID, t.Layout.Index
	m, err := e.Manifest(ctx, t)
	if err != nil {
		return "", err
	}
	dir, cleanup, err := e.WorkDir(ctx)
	if err != nil {
		return "", err
	}
	defer cleanup()
	in := filepath.Join(dir, "in"+t.Layout.Ext)
	info, err := e.GetTrigger(ctx, t, in)
	if err != nil {
		return "", err
	}
	start, dur, wall := segmentTiming(m, n, info)
	origin, err := originOf(ctx, e, t.Bucket, m)
	if err != nil {
		return "", err
	}
	res := tagging.Run(ctx, tagging.Default(config.Env("AITAG_HTTP_URL", "")),
		tagging.Input{Path: in, Duration: dur, HasAudio: m.Audio, AudioOnly: m.AudioOnly(), WorkDir: dir, Picture: m.Picture})
	st := SegmentTags{Asset: id, Segment: n, Start: start - origin, Duration: dur,
		Tags: tagging.Offset(res.Tags, start-origin), Errors: res.Errors}
	a := layout.Asset(id)
	if err := e.Store.PutJSON(ctx, t.Bucket, a.Tags(n), st, storage.PutOptions{Metadata: e.Meta()}); err != nil {
		return "", err
	}
	// Captions: one WebVTT segment per media segment, even when nothing
	// was said, so the subtitle rendition has no holes.
	vtt := captions(st.Tags, origin)
	if err := e.Store.PutBytes(ctx, t.Bucket, a.Rendition(layout.SubtitlesRendition, n, ".vtt"), []byte(vtt),
		storage.PutOptions{ContentType: "text/vtt", Metadata: asset.SegmentMeta{Index: n, Start: start, Duration: dur, Wallclock: wall,
			Bandwidth: int64(len(vtt) * 8), Codecs: "wvtt"}.Encode(e.Meta())}); err != nil {
		return "", err
	}
	var tagErrs []string
	for k, v := range res.Errors {
		tagErrs = append(tagErrs, k+": "+v)
	}
	sort.Strings(tagErrs)
	if err := e.SegmentDone(ctx, t, tagErrs...); err != nil {
		return "", err
	}
	merged, err := merge(ctx, e, t.Bucket, m)
	if err != nil {
		return "", err
	}
	msg := fmt.Sprintf("tagged segment %d of %s: %d tags", n, id, len(st.Tags))
	if len(tagErrs) > 0 {
		msg += " (" + strings.Join(tagErrs, "; ") + ")"
	}
	if merged {
		if err := e.AssetDone(ctx, t); err != nil {
			return "", err
		}
		msg += "; asset tags merged"
	}
	return msg, nil
}

// segmentTiming is the segment's start (timeline seconds) and duration,
// from its metadata or the manifest, and a live segment's wall clock,
// which its captions carry to the playlist as the video's do.
func segmentTiming(m *asset.Manifest, n int, info storage.Info) (float64, float64, time.Time) {
	var start, dur float64
	if n < len(m.Segments) {
		start, dur = m.Segments[n].Start, m.Segments[n].Duration
	}
	sm, err := asset.ReadSegmentMeta(info)
	if err != nil {
		return start, dur, time.Time{}
	}
	return sm.Start, sm.Duration, sm.Wallclock
}

// originOf is the timeline time of the asset's first frame: tags and
// captions count from there, as players do.
func originOf(ctx context.Context, e *stage.Env, bucket string, m *asset.Manifest) (float64, error) {
	if len(m.Segments) > 0 {
		return m.Segments[0].Start, nil
	}
	info, err := e.Store.Stat(ctx, bucket, m.SourceKey(0))
	if err != nil {
		return 0, err
	}
	sm, err := asset.ReadSegmentMeta(info)
	if err != nil {
		return 0, err
	}
	return sm.Start, nil
}

// merge writes tags/asset.json once every segment's tags are there.
func merge(ctx context.Context, e *stage.Env, bucket string, m *asset.Manifest) (bool, error) {
	m, err := asset.Settled(ctx, e.Store, bucket, m)
	if err != nil || m.Splitting || (m.Live && !m.Ended) {
		return false, err
	}
	a := layout.Asset(m.ID)
	all := SegmentTags{Asset: m.ID, Segment: -1, Errors: map[string]string{}}
	for i := range m.Segments {
		b, err := e.Store.GetBytes(ctx, bucket, a.Tags(i))
		if errors.Is(err, storage.ErrNotFound) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		var st SegmentTags
		if err := json.Unmarshal(b, &st); err != nil {
			return false, err
		}
		all.Tags = append(all.Tags, st.Tags...)
		all.Duration += st.Duration
		for k, v := range st.Errors {
			all.Errors[fmt.Sprintf("segment %d %s", i, k)] = v
		}
	}
	if len(all.Errors) == 0 {
		all.Errors = nil
	}
	// Stretches cut by a seam become one again (a frame's gap at most).
	all.Tags = tagging.Merge(all.Tags, 0.1)
	return true, e.Store.PutJSON(ctx, bucket, a.Tags(-1), all, storage.PutOptions{Metadata: e.Meta()})
}
