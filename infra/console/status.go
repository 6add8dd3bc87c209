package console

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"

	"github.com/segflow/segflow/infra/internal/httpjson"
	"github.com/segflow/segflow/shared/asset"
	"github.com/segflow/segflow/shared/layout"
	"github.com/segflow/segflow/shared/storage"
	"github.com/segflow/segflow/shared/tagging"
)

// status serves an asset's status.json (the stage grid's source). Before
// split has written one, the page that uploaded the file names its key
// (?source=, as the upload's completion gave it): if that upload is in the
// bucket and is the asset's, the asset is pending, its event on the way.
// An id nothing vouches for is 404.
func (c *Console) status(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	s, err := asset.ReadStatus(r.Context(), c.Store, c.Bucket, id)
	if errors.Is(err, storage.ErrNotFound) {
		s, err = c.pending(r.Context(), id, r.URL.Query().Get("source"))
	}
	switch {
	case errors.Is(err, storage.ErrNotFound):
		httpjson.Error(w, http.StatusNotFound, err)
	case err != nil:
		httpjson.Error(w, http.StatusBadGateway, err)
	default:
		httpjson.Write(w, http.StatusOK, s)
	}
}

// pending is the status of asset id that split has not written yet, when
// source is the upload it will be made from.
func (c *Console) pending(ctx context.Context, id, source string) (*asset.Status, error) {
	if storage.ValidKey(source) != nil || layout.Parse(source).Kind != layout.KindUpload {
		return nil, fmt.Errorf("asset %s: %w", id, storage.ErrNotFound)
	}
	info, err := c.Store.Stat(ctx, c.Bucket, source)
	if err != nil {
		return nil, err
	}
	if layout.AssetID(source, info.ETag) != id {
		return nil, fmt.Errorf("asset %s is not made from %s: %w", id, source, storage.ErrNotFound)
	}
	return &asset.Status{ID: id, Source: source, State: asset.StatePending, Stages: map[string]asset.StageStatus{}, Updated: info.LastModified}, nil
}

// media gives the browser the URLs of an asset's playable objects, so the
// pages never spell out the bucket layout themselves: the bucket's for a
// public asset, signed expiring ones for a private asset.
func (c *Console) media(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	base := strings.TrimRight(c.MediaBase, "/") + "/" + layout.Asset(id).Prefix()
	if c.AssetBase != nil {
		base = c.AssetBase(id)
	}
	m := map[string]string{
		"master":     base + "master.m3u8",
		"storyboard": base + "thumbs/storyboard.vtt",
	}
	// The poster is named only once it exists (thumbnail writes it from
	// the first segment, split from an audio file's cover art; a song
	// without one has none), so no page asks for it and gets a 404.
	// The page asks again when the first segment's thumbnail is done.
	if c.Store != nil {
		if _, err := c.Store.Stat(r.Context(), c.Bucket, layout.Asset(id).Thumb("poster.jpg")); err == nil {
			m["poster"] = base + "thumbs/poster.jpg"
		}
		// The rungs once split has chosen them (a content-aware asset's
		// after its trial), so the page says what each was encoded at.
		if man, err := asset.ReadManifest(r.Context(), c.Store, c.Bucket, id); err == nil && len(man.Ladder) > 0 {
			m["ladder"] = ladderSummary(man)
		}
	}
	// A publish (live-<stream>-<start>) is watched over WebRTC while it
	// runs, from its stream's WHEP endpoint; a private stream's
	// (private_live-...) with a token.
	private := layout.Private(id)
	if rest, ok := strings.CutPrefix(strings.TrimPrefix(id, layout.PrivateIDPrefix), "live-"); ok && c.WHEPURL != "" {
		if i := strings.LastIndexByte(rest, '-'); i > 0 && (!private || c.WHEPToken != nil) {
			stream := rest[:i]
			m["whep"] = strings.TrimRight(c.WHEPURL, "/") + "/" + stream
			if private {
				m["whepToken"] = c.WHEPToken(stream)
			}
		}
	}
	httpjson.Write(w, http.StatusOK, m)
}

// ladderSummary says which ladder an asset got and each rung's rate:
// "content-aware: 1080p CRF 24 (at most 6 Mb/s), 720p 3 Mb/s".
func ladderSummary(m *asset.Manifest) string {
	var rungs []string
	for _, r := range m.Ladder {
		rate := mbps(r.Bitrate)
		if r.CRF > 0 {
			rate = fmt.Sprintf("CRF %d (at most %s)", r.CRF, rate)
		}
		rungs = append(rungs, r.Name+" "+rate)
	}
	return m.LadderKind() + ": " + strings.Join(rungs, ", ")
}

// mbps writes a bitrate as a person reads it: "6 Mb/s", "1.2 Mb/s",
// "455 kb/s".
func mbps(bits int) string {
	if bits < 1_000_000 {
		return strconv.Itoa(int(math.Round(float64(bits)/1000))) + " kb/s"
	}
	return strconv.FormatFloat(math.Round(float64(bits)/1e5)/10, 'f', -1, 64) + " Mb/s"
}

// tags serves what aitag merged for the asset (tags/asset.json) and the
// asset's duration, for the timeline. Before aitag has run, or for an asset
// that failed, that is an empty list, not an error.
func (c *Console) tags(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	out := struct {
		Duration float64       `json:"duration"`
		Tags     []tagging.Tag `json:"tags"`
	}{Tags: []tagging.Tag{}}
	if m, err := asset.ReadManifest(r.Context(), c.Store, c.Bucket, id); err == nil {
		out.Duration = m.Duration
	} else if !errors.Is(err, storage.ErrNotFound) {
		httpjson.Error(w, http.StatusBadGateway, err)
		return
	}
	b, err := c.Store.GetBytes(r.Context(), c.Bucket, layout.Asset(id).Tags(-1))
	switch {
	case errors.Is(err, storage.ErrNotFound):
	case err != nil:
		httpjson.Error(w, http.StatusBadGateway, err)
		return
	default:
		var merged struct {
			Tags []tagging.Tag `json:"tags"`
		}
		if err := json.Unmarshal(b, &merged); err != nil {
			httpjson.Error(w, http.StatusBadGateway, fmt.Errorf("tags of %s: %w", id, err))
			return
		}
		if merged.Tags != nil {
			out.Tags = merged.Tags
		}
	}
	httpjson.Write(w, http.StatusOK, out)
}
