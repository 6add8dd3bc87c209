// Package split is the split stage: an upload becomes an asset. It
// probes the file, refuses what is not usable media with a failed status
// that says why, cuts the video at keyframes into ~4 s source segments
// (stream copy; audio encoded once so its seams are clean), and writes the
// manifest and the segments, whose writes trigger the next stages.
package split

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

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
	if _, _, _, ok := layout.Sidecar(t.Key); ok {
		return sidecarArrived(ctx, e, t.Bucket, t.Key)
	}
	info, err := e.StatTrigger(ctx, t)
	if errors.Is(err, storage.ErrNotFound) {
		return "", stage.Permanent(fmt.Errorf("upload %s is gone: %w", t.Key, err))
	}
	if err != nil {
		return "", err
	}
	id := layout.AssetID(t.Key, info.ETag)
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
	// The upload is read where it lies, through a presigned URL: the
	// probe, the integrity read and the cut start at once instead of after
	// a download (a 219 MB file took 0.27 s to fetch), and no function
	// needs the disk for a copy of a file that may be many GB. A read that
	// fails that way is not yet the upload's fault (the network may have
	// failed it): the split runs again on a downloaded copy, which decides.
	u, err := e.Store.Presign(ctx, http.MethodGet, t.Bucket, t.Key, time.Hour)
	if err != nil {
		return "", err
	}
	j := &job{e: e, bucket: t.Bucket, key: t.Key, info: info, id: id, opts: opts, fail: fail}
	msg, err := j.run(ctx, u.String(), filepath.Join(dir, "remote"))
	var serr *sourceError
	if !errors.As(err, &serr) {
		if err != nil {
			err = renamed(err, u.String(), t.Key)
		}
		return msg, err
	}
	log.Warn("reading the upload in place failed; splitting a downloaded copy",
		"key", t.Key, "err", renamed(serr.err, u.String(), t.Key).Error())
	src := filepath.Join(dir, "upload"+strings.ToLower(filepath.Ext(t.Key)))
	if _, err := e.GetTrigger(ctx, t, src); err != nil {
		return "", err
	}
	msg, err = j.run(ctx, src, filepath.Join(dir, "local"))
	if errors.As(err, &serr) {
		return fail(renamed(serr.err, src, t.Key))
	}
	return msg, err
}

// renamed says key where err says src (a presigned URL, which must not
// be shown, or a temporary copy, which means nothing to the uploader).
func renamed(err error, src, key string) error { return &renamedError{err, src, key} }

type renamedError struct {
	err      error
	src, key string
}

func (e *renamedError) Error() string { return strings.ReplaceAll(e.err.Error(), e.src, e.key) }
func (e *renamedError) Unwrap() error { return e.err }

// job is one upload's split; run makes it from one source.
type job struct {
	e           *stage.Env
	bucket, key string
	info        storage.Info
	id          string
	opts        options
	fail        func(error) (string, error)
}

// sourceError is a failure to read or cut the source: the file's fault,
// or that of the read.
type sourceError struct{ err error }

func (e *sourceError) Error() string { return e.err.Error() }
func (e *sourceError) Unwrap() error { return e.err }

// run probes src (a local file or a URL), checks it whole and cuts it into
// dir, handing segments over as they come. A failure that src's bytes
// may have caused is a *sourceError; one they cannot have is failed as
// the upload's (j.fail); anything else is storage trouble, to be retried.
func (j *job) run(ctx context.Context, src, dir string) (string, error) {
	probe, err := media.Probe(ctx, src)
	if err != nil {
		return "", &sourceError{err}
	}
	m := asset.Manifest{
		ID: j.id, Source: j.key, SourceETag: j.info.ETag, Duration: probe.Duration, Audio: probe.Audio != nil,
		AudioRenditions: media.AudioLadder(probe),
		Created:         j.info.LastModified.UTC(), Options: asset.UploadOptions{Codecs: j.opts.codecs, Packaging: j.opts.packaging, Encryption: j.opts.encryption, Ladder: j.opts.ladder},
		Splitting: true,
	}
	// The key exists before any segment that transcode will encrypt.
	if m.Encrypted() {
		if _, err := asset.EnsureContentKey(ctx, j.e.Store, j.bucket, j.id, j.e.Meta()); err != nil {
			return "", err
		}
	}
	if v := probe.Video; v != nil {
		if j.opts.autoCrop {
			c, err := media.DetectCrop(ctx, src)
			if err != nil {
				return "", &sourceError{err}
			}
			v = v.Cropped(c)
		}
		ladder, err := media.Ladder(v, j.opts.codecs)
		if err != nil {
			return j.fail(err)
		}
		m.Width, m.Height, m.FPS, m.VideoCodec = v.DisplayWidth, v.DisplayHeight, v.FPS, v.Codec
		m.Picture = v.Picture()
		for i := range ladder {
			ladder[i].CMAF = m.CMAF()
			if err := encryptable(m.Options.Encryption, ladder[i]); err != nil {
				return j.fail(err)
			}
		}
		m.SourceExt, m.Ladder, m.Watermark = media.SourceExt(v.Codec), ladder, j.opts.watermark
	} else if err := j.poster(ctx, src, dir, probe); err != nil {
		return "", err
	}
	// Segments go out while the cut goes on, so the first transcodes run
	// while the rest of the file is still being cut. The manifest lists
	// each segment before it is written (every stage reads it), and the
	// one that ends the split comes before the last segment: whatever a
	// stage does after a segment's write, the last write of all comes
	// after the complete manifest.
	// The whole file is read through once for damage (a truncated file
	// fails there) beside the cut, and nothing goes out before it passed.
	integrity := make(chan error, 1)
	go func() { integrity <- media.CheckIntegrity(ctx, src) }()
	check := sync.OnceValue(func() error { return <-integrity })
	// A content-aware ladder is fitted beside the cut too, and in the
	// manifest before the first segment goes out: every transcode reads
	// its rungs there.
	fitted := func() error { return nil }
	if j.opts.ladder == media.LadderContentAware && len(m.Ladder) > 0 {
		type fit struct {
			rungs []media.Rung
			err   error
		}
		done := make(chan fit, 1)
		go func(rungs []media.Rung, o media.FitOptions) {
			r, err := media.FitLadder(ctx, src, probe.Duration, rungs, o)
			done <- fit{r, err}
		}(m.Ladder, media.FitOptions{Filter: m.Picture.Filter(), Dir: dir, FPS: m.FPS})
		fitted = sync.OnceValue(func() error {
			f := <-done
			if f.err == nil {
				m.Ladder = f.rungs
			}
			return f.err
		})
	}
	up := startUploads(ctx, j.e, j.bucket, layout.Asset(j.id))
	var handErr error // storage trouble, to be retried, not the upload's fault
	segs, err := media.Split(ctx, src, dir, probe, media.SplitOptions{
		Audio: m.AudioRenditions,
		OnSegments: func(segs []media.Segment) error {
			if err := check(); err != nil {
				return err
			}
			if err := fitted(); err != nil {
				return err
			}
			handErr = handOver(ctx, j.e, j.bucket, &m, segs, up)
			return handErr
		},
	})
	if err != nil {
		uerr := up.wait()
		if handErr != nil || uerr != nil || ctx.Err() != nil {
			return "", errors.Join(err, uerr)
		}
		if derr := check(); derr != nil {
			return "", &sourceError{derr}
		}
		return "", &sourceError{err}
	}
	if err := up.wait(); err != nil {
		return "", err
	}
	if err := attachSidecars(ctx, j.e, j.bucket, j.key, &m); err != nil {
		return "", err
	}
	if m.AudioOnly() {
		return fmt.Sprintf("split %s into %d segments (%.2fs, audio only)", j.id, len(segs), probe.Duration), nil
	}
	return fmt.Sprintf("split %s into %d segments (%.2fs, %dx%d, %d renditions)", j.id, len(segs),
		probe.Duration, m.Width, m.Height, len(m.Ladder)), nil
}

// posterWidth is the poster's width, as the thumbnail stage makes it.
const posterWidth = 1280

// poster writes an audio-only upload's cover art (an MP3's or M4A's
// album picture) as the asset's poster; the thumbnail stage, which makes
// posters from segments, has no picture to take one from. A picture that
// does not decode leaves the asset without a poster, not failed.
func (j *job) poster(ctx context.Context, src, dir string, probe *media.Info) error {
	if !probe.CoverArt {
		return nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	out := filepath.Join(dir, "cover.jpg")
	if err := media.CoverArt(ctx, src, out, posterWidth); err != nil {
		j.e.Log.Warn("cover art does not decode; no poster", "asset", j.id, "err", renamed(err, src, j.key).Error())
		return nil
	}
	return j.e.Store.PutFile(ctx, j.bucket, layout.Asset(j.id).Thumb("poster.jpg"), out,
		storage.PutOptions{ContentType: "image/jpeg", Metadata: j.e.Meta()})
}

// handOver lists segs in the manifest (one write for all of them), then
// queues their uploads; the last segment ends the split: the manifest
// says so and the status is done before the segment goes.
func handOver(ctx context.Context, e *stage.Env, bucket string, m *asset.Manifest, segs []media.Segment, up *uploads) error {
	last := false
	for _, s := range segs {
		m.Segments = append(m.Segments, asset.Segment{Index: s.Index, Start: s.Start, Duration: s.Duration})
		last = last || s.Last
	}
	m.Splitting = !last
	if err := putManifest(ctx, e, bucket, *m); err != nil {
		return err
	}
	if last {
		if err := asset.UpdateStatus(ctx, e.Store, bucket, m.ID, name, func(st *asset.Status) {
			st.SetStage(name, asset.StateDone, nil)
			for _, seg := range m.Segments {
				st.SetSegment(seg.Index, name, asset.StateDone, nil)
			}
		}); err != nil {
			return err
		}
	}
	for _, s := range segs {
		if err := up.add(s); err != nil {
			return err
		}
	}
	return nil
}

// putManifest writes m unless the bucket holds a manifest of the same
// upload that lists more segments: a split that runs again (a retried or
// duplicated event) must not take back a segment another stage already
// found in the manifest. The manifest that ends a split lists them all.
func putManifest(ctx context.Context, e *stage.Env, bucket string, m asset.Manifest) error {
	next, err := json.Marshal(m)
	if err != nil {
		return err
	}
	return e.Store.Update(ctx, bucket, layout.Asset(m.ID).Manifest(), storage.PutOptions{ContentType: "application/json", Metadata: e.Meta()},
		func(old []byte) ([]byte, error) {
			var prev asset.Manifest
			if old != nil && json.Unmarshal(old, &prev) == nil && prev.SourceETag == m.SourceETag &&
				(len(prev.Segments) > len(m.Segments) || (len(prev.Segments) == len(m.Segments) && !prev.Splitting && m.Splitting)) {
				return nil, nil
			}
			return next, nil
		})
}

// uploads writes segments a few at a time, in the order they are added:
// each write starts a transcode. The first error stops the rest.
type uploads struct {
	next   chan media.Segment
	ctx    context.Context
	cancel context.CancelCauseFunc
	wg     sync.WaitGroup
}

func startUploads(ctx context.Context, e *stage.Env, bucket string, a layout.Asset) *uploads {
	const parallel = 3
	u := &uploads{next: make(chan media.Segment)}
	u.ctx, u.cancel = context.WithCancelCause(ctx)
	for range parallel {
		u.wg.Go(func() {
			for s := range u.next {
				ext := filepath.Ext(s.Path)
				ctype := "video/mp2t"
				if ext == ".mkv" {
					ctype = "video/x-matroska"
				}
				err := e.Store.PutFile(u.ctx, bucket, a.Source(s.Index, ext), s.Path, storage.PutOptions{
					ContentType: ctype,
					Metadata:    asset.SegmentMeta{Index: s.Index, Start: s.Start, Duration: s.Duration}.Encode(e.Meta()),
				})
				if err != nil {
					u.cancel(fmt.Errorf("segment %d: %w", s.Index, err))
				}
			}
		})
	}
	return u
}

// add queues s; it fails once an upload has failed.
func (u *uploads) add(s media.Segment) error {
	select {
	case u.next <- s:
		return nil
	case <-u.ctx.Done():
		return context.Cause(u.ctx)
	}
}

// wait lets the queued uploads finish and returns the first error; it
// ends the uploads, so it is called once.
func (u *uploads) wait() error {
	close(u.next)
	u.wg.Wait()
	err := context.Cause(u.ctx)
	u.cancel(nil)
	return err
}

type options struct {
	codecs     []media.Codec
	packaging  string
	encryption string
	watermark  *asset.Watermark
	autoCrop   bool
	ladder     string // media.LadderContentAware, or "" for the fixed ladder
}

// uploadOptions reads what the uploader asked for in object metadata:
// Segflow-Codecs ("h264,av1"), Segflow-Packaging ("cmaf": fragmented MP4
// for every rendition, with a DASH manifest beside the HLS master; "ts",
// the default), Segflow-Encryption ("aes-128": every MPEG-TS segment
// encrypted whole; "cbcs": the samples of every CMAF segment; either way
// the key is served only to players with a playback token),
// Segflow-Crop ("auto": cut the black bars off), Segflow-Ladder
// ("content-aware": media.FitLadder; "fixed", the default), Watermark-Text or Watermark-Image (a key in the bucket),
// Watermark-Position and Watermark-Opacity.
func uploadOptions(info storage.Info) (options, error) {
	var o options
	switch c := info.Meta("Segflow-Crop"); strings.ToLower(c) {
	case "auto":
		o.autoCrop = true
	case "", "none":
	default:
		return o, fmt.Errorf("crop %q: want auto or none", c)
	}
	switch l := strings.ToLower(info.Meta("Segflow-Ladder")); l {
	case media.LadderContentAware:
		o.ladder = l
	case "", media.LadderFixed:
	default:
		return o, fmt.Errorf("ladder %q: want content-aware or fixed", l)
	}
	switch p := strings.ToLower(info.Meta("Segflow-Packaging")); p {
	case asset.PackagingCMAF:
		o.packaging = p
	case "", asset.PackagingTS:
	default:
		return o, fmt.Errorf("packaging %q: want cmaf or ts", p)
	}
	switch e := strings.ToLower(info.Meta("Segflow-Encryption")); e {
	case asset.EncryptionAES128, asset.EncryptionCBCS:
		o.encryption = e
	case "", "none":
	default:
		return o, fmt.Errorf("encryption %q: want aes-128, cbcs or none", e)
	}
	if o.encryption == asset.EncryptionCBCS && o.packaging != asset.PackagingCMAF {
		return o, fmt.Errorf("encryption cbcs encrypts CMAF: upload with packaging cmaf (or use aes-128 for MPEG-TS)")
	}
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
		// Written as "in range" so that NaN, which compares false, is refused.
		if err != nil || !(f > 0 && f <= 1) {
			return o, fmt.Errorf("watermark opacity %q: want a number in (0, 1]", v)
		}
		wm.Opacity = f
	}
	if image != "" {
		if err := storage.ValidKey(image); err != nil {
			return o, fmt.Errorf("watermark image: %w", err)
		}
		// Renditions are public: only images put under logos/ for the
		// purpose may be burnt into them, never any object the caller
		// can name.
		if !strings.HasPrefix(image, layout.LogosPrefix) {
			return o, fmt.Errorf("watermark image %q: must be under %s", image, layout.LogosPrefix)
		}
	}
	o.watermark = wm
	return o, nil
}

// encryptable says whether a rung can be encrypted the way the upload
// asked: AES-128 encrypts MPEG-TS segments whole (whole fMP4 segments
// would need their init segment encrypted too, which no player reads);
// cbcs encrypts fMP4 samples, as transcode will (Rung.Protectable).
func encryptable(encryption string, r media.Rung) error {
	switch encryption {
	case asset.EncryptionAES128:
		if r.Container() != "ts" {
			return fmt.Errorf("encryption aes-128: only MPEG-TS renditions are encrypted whole, and %s is fMP4 (use cbcs with cmaf packaging)", r.Name)
		}
	case asset.EncryptionCBCS:
		if err := r.Protectable(); err != nil {
			return fmt.Errorf("encryption cbcs: %w", err)
		}
	}
	return nil
}
