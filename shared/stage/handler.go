package stage

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/segflow/segflow/shared/asset"
	"github.com/segflow/segflow/shared/layout"
	"github.com/segflow/segflow/shared/storage"
)

// Work is one stage's job for one trigger; it returns what it did.
type Work func(ctx context.Context, e *Env, t *Trigger, r *http.Request) (string, error)

// Handler is a stage's Handle: it makes the Env on the first call, reads
// the trigger, refuses keys of other kinds than accepts, runs work and
// answers the router (200, 422 for bad input, 500 to be retried).
func Handler(name string, accepts []layout.Kind, work Work) http.HandlerFunc {
	env := sync.OnceValues(func() (*Env, error) { return NewEnv(name) })
	return func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		e, err := env()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		t, err := e.ReadTrigger(r)
		if err == nil && !kindIn(t.Layout.Kind, accepts) {
			err = Permanent(fmt.Errorf("%s does not take %s", name, t.Key))
		}
		if err != nil {
			e.Respond(r.Context(), w, t, "", err, time.Since(start))
			return
		}
		msg, err := work(r.Context(), e, t, r)
		e.Respond(r.Context(), w, t, msg, err, time.Since(start))
	}
}

func kindIn(k layout.Kind, ks []layout.Kind) bool {
	for _, x := range ks {
		if x == k {
			return true
		}
	}
	return false
}

// Manifest reads the manifest of the trigger's asset; a missing one is a
// permanent failure (the asset was never split).
func (e *Env) Manifest(ctx context.Context, t *Trigger) (*asset.Manifest, error) {
	m, err := asset.ReadManifest(ctx, e.Store, t.Bucket, t.Layout.AssetID)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, Permanent(err)
	}
	return m, err
}

// FailSegment records that this stage failed on the trigger's segment
// and returns err as permanent: bad media is not retried.
func (e *Env) FailSegment(ctx context.Context, t *Trigger, err error) error {
	if uerr := asset.UpdateStatus(ctx, e.Store, t.Bucket, t.Layout.AssetID, e.Name, func(s *asset.Status) {
		s.SetSegment(t.Layout.Index, e.Name, asset.StateFailed, err)
	}); uerr != nil {
		return uerr
	}
	return Permanent(err)
}

// SegmentDone records that this stage finished the trigger's segment,
// failed (optional stages) when errs has any.
func (e *Env) SegmentDone(ctx context.Context, t *Trigger, errs ...string) error {
	state, cause := asset.StateDone, error(nil)
	if len(errs) > 0 {
		state, cause = asset.StateFailed, errors.New(strings.Join(errs, "; "))
	}
	return asset.UpdateStatus(ctx, e.Store, t.Bucket, t.Layout.AssetID, e.Name, func(s *asset.Status) {
		s.SetSegment(t.Layout.Index, e.Name, state, cause)
	})
}

// SegmentSkipped records that this stage has nothing to do for the
// trigger's segment (thumbnails of an audio-only asset, say).
func (e *Env) SegmentSkipped(ctx context.Context, t *Trigger) error {
	return asset.UpdateStatus(ctx, e.Store, t.Bucket, t.Layout.AssetID, e.Name, func(s *asset.Status) {
		s.SetSegment(t.Layout.Index, e.Name, asset.StateSkipped, nil)
	})
}

// AssetDone records this stage as done for the whole asset: what it makes
// once every segment is through (aitag's merged tags, thumbnail's
// storyboard) is written, so a status reader knows it need not look again.
func (e *Env) AssetDone(ctx context.Context, t *Trigger) error {
	return asset.UpdateStatus(ctx, e.Store, t.Bucket, t.Layout.AssetID, e.Name, func(s *asset.Status) {
		s.SetStage(e.Name, asset.StateDone, nil)
	})
}

// RenditionsDone records that this stage finished the trigger's segment
// and made each of renditions, as "<stage>/<rendition>", so that a status
// reader (the console's stage grid) sees every rung of every segment.
func (e *Env) RenditionsDone(ctx context.Context, t *Trigger, renditions []string) error {
	return asset.UpdateStatus(ctx, e.Store, t.Bucket, t.Layout.AssetID, e.Name, func(s *asset.Status) {
		s.SetSegment(t.Layout.Index, e.Name, asset.StateDone, nil)
		for _, r := range renditions {
			s.SetSegment(t.Layout.Index, e.Name+"/"+r, asset.StateDone, nil)
		}
	})
}
