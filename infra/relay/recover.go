package relay

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"

	"github.com/segflow/segflow/infra/relay/spool"
	"github.com/segflow/segflow/shared/asset"
	"github.com/segflow/segflow/shared/layout"
	"github.com/segflow/segflow/shared/storage"
)

// recoverSpools finishes, in the background, what a relay that died on
// this spool folder (kill -9, a crash, a node lost) left behind: each
// publish's spool is uploaded, in order, and a publish that was never
// ended is ended with the segments that reached the bucket, so its
// playlists get their ENDLIST. The segment being cut when it died is
// lost with the process; its channel goes on as for any publisher that
// stopped (the relay it comes back to continues from what is in the
// bucket).
func (r *Relay) recoverSpools() {
	entries, err := os.ReadDir(r.cfg.SpoolDir)
	if err != nil {
		return // none yet
	}
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		r.ends.Add(1)
		go func() {
			defer r.ends.Done()
			r.recoverSpool(e.Name())
		}()
	}
}

func (r *Relay) recoverSpool(id string) {
	log := r.log.With("asset", id)
	sp, err := spool.Open(filepath.Join(r.cfg.SpoolDir, id), r.cfg.Bucket, r.cfg.Store, r.cfg.SpoolMaxBytes, log, nil)
	if err != nil {
		log.Error("relay: spool left by a previous run", "err", err)
		return
	}
	ctx, cancel := context.WithTimeout(r.bg, r.cfg.DrainTimeout)
	defer cancel()
	if err := sp.Close(ctx); err != nil {
		log.Error("relay: spool left by a previous run not uploaded yet", "err", err)
		return
	}
	m, err := asset.ReadManifest(ctx, r.cfg.Store, r.cfg.Bucket, id)
	if errors.Is(err, storage.ErrNotFound) {
		return // nothing of it ever reached the bucket
	}
	if err != nil {
		log.Error("relay: publish left by a previous run", "err", err)
		return
	}
	if m.Ended {
		return
	}
	if m.Segments, err = r.landedSegments(ctx, id); err != nil {
		log.Error("relay: publish left by a previous run", "err", err)
		return
	}
	m.Ended = true
	if err := r.cfg.Store.PutJSON(ctx, r.cfg.Bucket, layout.Asset(id).Manifest(), m,
		storage.PutOptions{Metadata: map[string]string{layout.ProducerMeta: "relay"}}); err != nil {
		log.Error("relay: ending a publish left by a previous run", "err", err)
		return
	}
	log.Info("relay: ended a publish left by a previous run", "segments", len(m.Segments))
	if err := r.touchLastRendition(ctx, id, m.Segments); err != nil {
		log.Error("relay: asking the packager to end the playlists", "err", err)
	}
	// Its channel ends after the grace, unless a publish took it
	// meanwhile (here or on another relay).
	r.stopped(*m, cmp.Or(r.cfg.Keys.Options(m.Channel).Reconnect, r.cfg.Reconnect))
}

// landedSegments are publish id's source segments in the bucket, from
// the first up to the first one missing.
func (r *Relay) landedSegments(ctx context.Context, id string) ([]asset.Segment, error) {
	objs, err := r.cfg.Store.List(ctx, r.cfg.Bucket, layout.Asset(id).Prefix()+"source/", storage.ListOptions{WithMetadata: true})
	if err != nil {
		return nil, err
	}
	var segs []asset.Segment
	for _, o := range objs {
		if layout.Parse(o.Key).Kind != layout.KindSourceSegment {
			continue
		}
		sm, err := asset.ReadSegmentMeta(o)
		if err != nil {
			return nil, err
		}
		segs = append(segs, asset.Segment{Index: sm.Index, Start: sm.Start, Duration: sm.Duration})
	}
	sort.Slice(segs, func(i, j int) bool { return segs[i].Index < segs[j].Index })
	for i, s := range segs {
		if s.Index != i {
			return segs[:i], nil
		}
	}
	return segs, nil
}

// touchLastRendition writes one rendition of the publish's last landed
// segment again, unchanged. The packager ends the playlists (ENDLIST) at
// its first rebuild after the manifest says ended, and a rebuild follows
// a rendition segment's write; the ended manifest raises no event. When
// transcode had made every rendition of that segment before this relay
// came back, nothing else would come, and the playlists stayed open for
// good (TestClusterFaultsLoseNothing, once in CI). When none is there
// yet, the renditions still coming do it.
func (r *Relay) touchLastRendition(ctx context.Context, id string, segs []asset.Segment) error {
	if len(segs) == 0 {
		return nil
	}
	last := segs[len(segs)-1].Index
	objs, err := r.cfg.Store.List(ctx, r.cfg.Bucket, layout.Asset(id).Prefix(), storage.ListOptions{Recursive: true})
	if err != nil {
		return err
	}
	for _, o := range objs {
		if k := layout.Parse(o.Key); k.Kind != layout.KindRenditionSegment || k.Index != last {
			continue
		}
		body, info, err := r.cfg.Store.Get(ctx, r.cfg.Bucket, o.Key)
		if err != nil {
			return err
		}
		b, err := io.ReadAll(body)
		body.Close()
		if err != nil {
			return fmt.Errorf("read %s: %w", o.Key, err)
		}
		return r.cfg.Store.PutBytes(ctx, r.cfg.Bucket, o.Key, b, storage.PutOptions{ContentType: info.ContentType, Metadata: info.Metadata})
	}
	return nil
}
