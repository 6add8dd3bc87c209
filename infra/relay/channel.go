package relay

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/segflow/segflow/shared/asset"
	"github.com/segflow/segflow/shared/hls"
	"github.com/segflow/segflow/shared/layout"
	"github.com/segflow/segflow/shared/storage"
)

// channelState is assets/live/<stream>/channel.json: the publish the
// stream's channel is on, so that a relay that restarts continues the
// channel's numbering, and whether the channel has ended.
type channelState struct {
	Stream  string    `json:"stream"`
	Current string    `json:"current"` // the latest publish's asset id
	Started time.Time `json:"started"`
	Ended   bool      `json:"ended,omitempty"`
}

// channel is what the relay keeps of a stream between its publishes: the
// last publish (its manifest as the relay last wrote it) and the timer
// that ends the channel when no publisher comes back.
type channel struct {
	last  *asset.Manifest
	timer *time.Timer
}

// previous returns the stream's last publish, nil for none, and stops a
// pending end: a publisher that comes back continues the channel. The
// relay remembers it; after a restart the channel's state says which.
func (r *Relay) previous(ctx context.Context, name string) (*asset.Manifest, error) {
	r.mu.Lock()
	ch := r.channels[name]
	if ch != nil && ch.timer != nil {
		if ch.timer.Stop() {
			r.ends.Done()
		}
		ch.timer = nil
	}
	r.mu.Unlock()
	if ch != nil {
		return ch.last, nil
	}
	b, err := r.cfg.Store.GetBytes(ctx, r.cfg.Bucket, layout.Channel(name).State())
	if errors.Is(err, storage.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("channel %s: %w", name, err)
	}
	var cs channelState
	if err := json.Unmarshal(b, &cs); err != nil || cs.Current == "" {
		return nil, fmt.Errorf("channel %s: %s: %v", name, layout.Channel(name).State(), err)
	}
	m, err := asset.ReadManifest(ctx, r.cfg.Store, r.cfg.Bucket, cs.Current)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, nil // its manifest never landed: start the channel over
	}
	if err != nil {
		return nil, fmt.Errorf("channel %s: last publish: %w", name, err)
	}
	if !m.Ended {
		// The relay stopped without ending it: its segments are the ones
		// that reached the bucket, the same ones a relay recovering its
		// spool ends it with (landedSegments).
		if m.Segments, err = r.landedSegments(ctx, m.ID); err != nil {
			return nil, fmt.Errorf("channel %s: last publish: %w", name, err)
		}
	}
	return m, nil
}

// stopped records a publish's last manifest and, unless a publisher
// comes back within grace, ends its channel.
func (r *Relay) stopped(m asset.Manifest, grace time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	ch := r.channels[m.Channel]
	if ch == nil {
		ch = &channel{}
		r.channels[m.Channel] = ch
	}
	ch.last = &m
	if r.closing {
		return // a relay going down: the stream may come back on the next
	}
	r.ends.Add(1)
	ch.timer = time.AfterFunc(grace, func() {
		defer r.ends.Done()
		r.endChannel(m)
	})
}

// endChannel puts ENDLIST on every playlist of the stream's channel once
// the publish's own playlists have ended (so no later rebuild of the
// packager's can take it off), unless another publish took the channel
// meanwhile.
func (r *Relay) endChannel(m asset.Manifest) {
	log := r.log.With("stream", m.Channel, "asset", m.ID)
	current := func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		ch := r.channels[m.Channel]
		return ch != nil && ch.last.ID == m.ID && !r.active[m.Channel] && !r.closing
	}
	ctx, cancel := context.WithTimeout(context.Background(), r.cfg.DrainTimeout)
	defer cancel()
	a, ch := layout.Asset(m.ID), layout.Channel(m.Channel)
	for _, name := range m.RenditionNames() {
		for {
			b, err := r.cfg.Store.GetBytes(ctx, r.cfg.Bucket, a.Playlist(name))
			if _, ended := hls.Last(b); err == nil && ended {
				break
			}
			if !current() {
				return
			}
			select {
			case <-ctx.Done():
				log.Error("channel left open: the publish's playlists never ended", "rendition", name)
				return
			case <-time.After(500 * time.Millisecond):
			}
		}
	}
	if !current() {
		return
	}
	state, _ := json.Marshal(channelState{Stream: m.Channel, Current: m.ID, Started: m.Created, Ended: true})
	// The publisher may have come back on another relay, which knows
	// nothing of this one's wait: the channel is this publish's to end
	// only while the bucket's state still names it.
	var taken string
	err := r.cfg.Store.Update(ctx, r.cfg.Bucket, ch.State(), storage.PutOptions{ContentType: "application/json"},
		func(old []byte) ([]byte, error) {
			var cs channelState
			if json.Unmarshal(old, &cs) == nil && cs.Current != "" && cs.Current != m.ID {
				taken = cs.Current
				return nil, nil
			}
			return state, nil
		})
	if taken != "" {
		log.Info("channel left open: a later publish has it (its publisher came back elsewhere)", "current", taken)
		return
	}
	if err != nil {
		log.Error("channel state", "err", err)
	}
	objs, err := r.cfg.Store.List(ctx, r.cfg.Bucket, ch.Prefix(), storage.ListOptions{})
	if err != nil {
		log.Error("channel left open", "err", err)
		return
	}
	last := m.Sequence + len(m.Segments) - 1
	for _, o := range objs {
		if o.Key == ch.Master() || !strings.HasSuffix(o.Key, ".m3u8") {
			continue
		}
		err := r.cfg.Store.Update(ctx, r.cfg.Bucket, o.Key, storage.PutOptions{ContentType: "application/vnd.apple.mpegurl"},
			func(old []byte) ([]byte, error) {
				// A playlist past this publish's segments is a newer one's.
				if n, ended := hls.Last(old); ended || n > last {
					return nil, nil
				}
				return hls.End(old), nil
			})
		if err != nil {
			log.Error("channel playlist left open", "key", o.Key, "err", err)
		}
	}
	log.Info("channel ended")
}
