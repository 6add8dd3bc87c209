// Package transcode is the transcode stage: one call per source (or
// watermarked) segment makes every rendition of the asset's ladder from a
// single decode, plus the segment's audio, and writes them under
// assets/<id>/<rendition>/<n>, which triggers the packager.
//
// A single rendition can be made again on its own: call the function with
// the segment's CloudEvent and ?rendition=<name> (repeatable).
package transcode

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"

	"github.com/segflow/segflow/shared/asset"
	"github.com/segflow/segflow/shared/hls"
	"github.com/segflow/segflow/shared/layout"
	"github.com/segflow/segflow/shared/media"
	"github.com/segflow/segflow/shared/stage"
	"github.com/segflow/segflow/shared/storage"
)

const name = "transcode"

// Handle receives the triggering object's CloudEvent.
var Handle = stage.Handler(name, []layout.Kind{layout.KindSourceSegment, layout.KindMarkedSegment}, func(ctx context.Context, e *stage.Env, t *stage.Trigger, r *http.Request) (string, error) {
	return transcode(ctx, e, t, r.URL.Query()["rendition"])
})

func transcode(ctx context.Context, e *stage.Env, t *stage.Trigger, only []string) (string, error) {
	id, n := t.Layout.AssetID, t.Layout.Index
	m, err := e.Manifest(ctx, t)
	if err != nil {
		return "", err
	}
	// With a watermark the marked copy is the input; the source event is
	// not ours to act on.
	if m.Watermark != nil && t.Layout.Kind == layout.KindSourceSegment {
		return fmt.Sprintf("segment %d of %s waits for its watermark", n, id), nil
	}
	if n >= len(m.Segments) && !m.Live {
		return "", stage.Permanent(fmt.Errorf("segment %d is not in the manifest of %s (%d segments)", n, id, len(m.Segments)))
	}
	rungs := m.Ladder
	if len(only) > 0 {
		rungs = nil
		for _, o := range only {
			r, ok := m.Rung(o)
			if !ok {
				return "", stage.Permanent(fmt.Errorf("asset %s has no rendition %q", id, o))
			}
			rungs = append(rungs, r)
		}
	}
	dir, cleanup, err := e.WorkDir(ctx)
	if err != nil {
		return "", err
	}
	defer cleanup()
	in := filepath.Join(dir, "in"+t.Layout.Ext)
	srcInfo, err := e.GetTrigger(ctx, t, in)
	if err != nil {
		return "", err
	}
	seg, _ := m.SegmentOf(n, srcInfo)
	var audio []string
	if len(only) == 0 {
		for _, a := range m.AudioSet() {
			audio = append(audio, a.Name)
		}
	}
	opts := media.TranscodeOptions{FPS: m.FPS, Audio: audio, CMAF: m.CMAF(), Live: m.Live, First: n == 0, Last: m.InTail(seg), Filter: m.PictureOf(seg, t.Layout.Kind == layout.KindMarkedSegment)}
	if m.Options.Encryption == asset.EncryptionCBCS {
		key, err := asset.ReadContentKey(ctx, e.Store, t.Bucket, id)
		if err != nil {
			return "", err
		}
		opts.Protect = &media.Protection{Key: key, KeyID: asset.KeyID(id), IV: asset.ConstantIV(id)}
	}
	outs, err := media.Transcode(ctx, in, filepath.Join(dir, "out"), rungs, opts)
	if err != nil {
		return "", e.FailSegment(ctx, t, err)
	}
	if m.Options.Encryption == asset.EncryptionAES128 {
		if err := encrypt(ctx, e, t, outs); err != nil {
			return "", err
		}
	}
	if err := writeOutputs(ctx, e, t, m, srcInfo, outs); err != nil {
		return "", err
	}
	made := make([]string, 0, len(outs))
	for _, o := range outs {
		made = append(made, o.Rung.Name)
	}
	if err := e.RenditionsDone(ctx, t, made); err != nil {
		return "", err
	}
	return fmt.Sprintf("transcoded segment %d of %s into %d renditions", n, id, len(rungs)), nil
}

// writeOutputs puts each rendition's segment (and its init segment) into
// the bucket with the segment's metadata: timing from the source, peak
// bit rate and codecs from the output.
func writeOutputs(ctx context.Context, e *stage.Env, t *stage.Trigger, m *asset.Manifest, srcInfo storage.Info, outs []media.Output) error {
	n := t.Layout.Index
	seg, wallclock := m.SegmentOf(n, srcInfo)
	a := layout.Asset(t.Layout.AssetID)
	for _, o := range outs {
		if o.InitPath != "" {
			if err := e.Store.PutFile(ctx, t.Bucket, a.InitSegment(o.Rung.Name), o.InitPath,
				storage.PutOptions{ContentType: mp4Type(o, "video/mp4", "audio/mp4"), Metadata: e.Meta()}); err != nil {
				return err
			}
		}
	}
	// Audio first, then video: the packager lists a segment once its
	// video is there, and by then its audio is too.
	for i := len(outs) - 1; i >= 0; i-- {
		o := outs[i]
		key, ctype := a.Rendition(o.Rung.Name, n, o.Rung.SegmentExt()), "video/mp2t"
		if o.Rung.Container() == "fmp4" {
			ctype = mp4Type(o, "video/iso.segment", "audio/iso.segment")
		}
		bw := int64(0)
		if seg.Duration > 0 {
			bw = int64(float64(o.Bytes*8) / seg.Duration)
		}
		meta := asset.SegmentMeta{Index: n, Start: seg.Start, Duration: seg.Duration, Wallclock: wallclock,
			Bandwidth: bw, Codecs: o.Codecs, Time: o.Time, Timescale: o.Timescale, Keyframes: o.Keyframes}.Encode(e.Meta())
		if !o.Audio {
			meta["Resolution"] = fmt.Sprintf("%dx%d", o.Rung.Width, o.Rung.Height)
			meta["Frame-Rate"] = strconv.FormatFloat(m.FPS, 'f', 3, 64)
		}
		if err := e.Store.PutFile(ctx, t.Bucket, key, o.Path, storage.PutOptions{ContentType: ctype, Metadata: meta}); err != nil {
			return err
		}
	}
	return nil
}

// encrypt encrypts each output whole with the asset's content key
// (hls.EncryptSegment, the segment's number as IV). Encrypted segments
// have no I-frame playlist: a byte range of AES-CBC is no keyframe.
func encrypt(ctx context.Context, e *stage.Env, t *stage.Trigger, outs []media.Output) error {
	key, err := asset.ReadContentKey(ctx, e.Store, t.Bucket, t.Layout.AssetID)
	if err != nil {
		return err
	}
	for i := range outs {
		o := &outs[i]
		if o.InitPath != "" {
			return stage.Permanent(fmt.Errorf("encrypt %s: fMP4 is not encrypted whole", o.Path))
		}
		plain, err := os.ReadFile(o.Path)
		if err != nil {
			return err
		}
		enc, err := hls.EncryptSegment(plain, key, t.Layout.Index)
		if err != nil {
			return err
		}
		if err := os.WriteFile(o.Path, enc, 0o644); err != nil {
			return err
		}
		o.Bytes, o.Keyframes = int64(len(enc)), nil
	}
	return nil
}

// mp4Type is the content type of an fMP4 output: video's or audio's.
func mp4Type(o media.Output, video, audio string) string {
	if o.Audio {
		return audio
	}
	return video
}
