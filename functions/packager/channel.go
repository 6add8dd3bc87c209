package packager

import (
	"context"
	"errors"
	"fmt"

	"github.com/segflow/segflow/shared/asset"
	"github.com/segflow/segflow/shared/hls"
	"github.com/segflow/segflow/shared/layout"
	"github.com/segflow/segflow/shared/stage"
	"github.com/segflow/segflow/shared/storage"
)

// defaultWindow is the channel's DVR depth in segments when the manifest
// names none.
const defaultWindow = 6

// packChannel writes the channel playlists of a live publish: each of its
// media playlists joined, after the previous publish's when the window
// reaches back that far, into the stream's sliding window, and its master
// (the same relative names, so the same bytes). A publish that a newer
// one has replaced ranks lower and leaves the channel alone.
func packChannel(ctx context.Context, e *stage.Env, bucket string, m *asset.Manifest, p plan) error {
	ch := layout.Channel(m.Channel)
	window := m.LiveWindow
	if window <= 0 {
		window = defaultWindow
	}
	objs, err := e.Store.List(ctx, bucket, ch.Prefix(), storage.ListOptions{WithMetadata: true})
	if err != nil {
		return fmt.Errorf("channel %s: %w", m.Channel, err)
	}
	have := make(map[string]storage.Info, len(objs))
	for _, o := range objs {
		have[o.Key] = o
	}
	var prev *asset.Manifest // read once, when a playlist needs it
	for _, pl := range p.media {
		parts := []hls.Part{{Playlist: pl.body, Base: layout.ChannelBase(m.ID), Sequence: m.Sequence, Discontinuity: m.Discontinuity}}
		if n, _ := hls.Count(pl.body); n < window && m.Previous != "" {
			if prev == nil {
				if prev, err = asset.ReadManifest(ctx, e.Store, bucket, m.Previous); err != nil && !errors.Is(err, storage.ErrNotFound) {
					return fmt.Errorf("channel %s: previous publish: %w", m.Channel, err)
				}
				if prev == nil {
					prev = &asset.Manifest{} // gone: the window starts here
				}
			}
			if prev.ID != "" {
				b, err := e.Store.GetBytes(ctx, bucket, layout.Asset(prev.ID).Playlist(pl.name))
				switch {
				case err == nil:
					parts = append([]hls.Part{{Playlist: b, Base: layout.ChannelBase(prev.ID), Sequence: prev.Sequence, Discontinuity: prev.Discontinuity}}, parts...)
				case !errors.Is(err, storage.ErrNotFound):
					return fmt.Errorf("channel %s: previous publish: %w", m.Channel, err)
				}
			}
		}
		body, err := hls.Join(parts, window)
		if err != nil {
			return fmt.Errorf("channel %s: %w", m.Channel, err)
		}
		key, rk := ch.Playlist(pl.name), lastRank(body)
		if err := put(ctx, e, bucket, have[key], key, body, rk, func(old rank) bool { return !rk.ahead(old) }, behind(lastRank, body)); err != nil {
			return err
		}
	}
	// The master follows the newest publish (a reconnect with another
	// picture size has other renditions): its rank is the publish's place.
	rk := rank{n: m.Discontinuity}
	return put(ctx, e, bucket, have[ch.Master()], ch.Master(), p.master, rk,
		func(old rank) bool { return old.n > rk.n }, nil)
}
