// Package qa is the quality stage: per transcoded segment, the SSIM and
// PSNR of every video rendition against the source segment it was made
// from, scaled to the rendition's size (media.Compare: the source decoded
// once for the whole ladder). By default it spot-checks each segment's
// first GOP, every second frame (QA_SECONDS, media.SpotSeconds). The
// scores go into status.json per segment and summed up per rendition; a
// rendition whose mean SSIM falls under QA_SSIM_FLOOR gives the asset a
// quality warning, which is not a failure.
package qa

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"os"
	"path/filepath"

	"github.com/segflow/segflow/shared/asset"
	"github.com/segflow/segflow/shared/config"
	"github.com/segflow/segflow/shared/hls"
	"github.com/segflow/segflow/shared/layout"
	"github.com/segflow/segflow/shared/media"
	"github.com/segflow/segflow/shared/stage"
)

const name = "qa"

// defaultFloor is the SSIM under which a rendition's mean is worth a look:
// x264 at the default ladder's rates scores 0.97-0.99 on camera footage;
// under 0.9 blocking shows.
const defaultFloor = 0.9

// Handle receives the triggering object's CloudEvent.
var Handle = stage.Handler(name, []layout.Kind{layout.KindRenditionSegment}, func(ctx context.Context, e *stage.Env, t *stage.Trigger, _ *http.Request) (string, error) {
	return measure(ctx, e, t)
})

func measure(ctx context.Context, e *stage.Env, t *stage.Trigger) (string, error) {
	id, n := t.Layout.AssetID, t.Layout.Index
	m, err := e.Manifest(ctx, t)
	if err != nil {
		return "", err
	}
	// transcode writes a segment's renditions top rung last (audio
	// first, then the ladder from the bottom): its write says they are
	// all there, so one call measures the whole ladder from one decode.
	if len(m.Ladder) == 0 || t.Layout.Rendition != m.Ladder[0].Name {
		return fmt.Sprintf("%s segment %d of %s: left to the %s call, which scores every rung", t.Layout.Rendition, n, id, topName(m)), nil
	}
	// Debian's ffmpeg 5.1 refuses segflow's cbcs samples ("subsample size
	// exceeds the packet size left") though browsers play them: a cbcs
	// asset is not scored, and says so.
	if m.Options.Encryption == asset.EncryptionCBCS {
		if err := e.SegmentSkipped(ctx, t); err != nil {
			return "", err
		}
		return fmt.Sprintf("segment %d of %s is cbcs-encrypted: not scored (ffmpeg 5.1 does not decrypt it)", n, id), nil
	}
	// QA_SSIM_FLOOR: the mean SSIM a rendition warns under (0: never).
	floor, err := config.Float("QA_SSIM_FLOOR", defaultFloor, 0, 1)
	if err != nil {
		return "", stage.Permanent(err)
	}
	// QA_SECONDS: how much of each segment is scored, from its start
	// (0: all of it).
	spot, err := config.Float("QA_SECONDS", media.SpotSeconds, 0, math.MaxFloat64)
	if err != nil {
		return "", stage.Permanent(err)
	}
	dir, cleanup, err := e.WorkDir(ctx)
	if err != nil {
		return "", err
	}
	defer cleanup()
	// The source as transcode read it: the marked copy under a watermark.
	srcKey, marked := m.SourceKey(n), m.Watermark != nil
	if marked {
		srcKey = layout.Asset(id).Marked(n)
	}
	src := filepath.Join(dir, "source"+filepath.Ext(srcKey))
	srcInfo, err := e.Store.GetFile(ctx, t.Bucket, srcKey, src)
	if err != nil {
		return "", fmt.Errorf("qa %s: %w", srcKey, err)
	}
	seg, _ := m.SegmentOf(n, srcInfo)
	// An AES-128 asset is scored as a player sees it: each segment
	// decrypted whole with the content key.
	var key []byte
	if m.Encrypted() {
		if key, err = asset.ReadContentKey(ctx, e.Store, t.Bucket, id); err != nil {
			return "", err
		}
	}
	renditions := make([]media.Compared, 0, len(m.Ladder))
	for _, r := range m.Ladder {
		c, err := fetchRendition(ctx, e, t.Bucket, m, r, n, key, dir)
		if err != nil {
			err = fmt.Errorf("qa %s segment %d of %s: %w", r.Name, n, id, err)
			if stage.IsPermanent(err) { // a segment that does not decrypt
				return "", e.FailSegment(ctx, t, err)
			}
			return "", err
		}
		renditions = append(renditions, c)
	}
	stats := filepath.Join(dir, "stats")
	if err := os.Mkdir(stats, 0o755); err != nil {
		return "", err
	}
	qs, err := media.Compare(ctx, src, renditions, media.CompareOptions{Filter: m.PictureOf(seg, marked),
		Seconds: spot, Step: media.SpotStep, StatsDir: stats})
	if err != nil {
		return "", e.FailSegment(ctx, t, err)
	}
	scores := make(map[string]media.Quality, len(qs))
	for i, q := range qs {
		scores[m.Ladder[i].Name] = q
	}
	settled, err := asset.Settled(ctx, e.Store, t.Bucket, m)
	if err != nil {
		return "", err
	}
	err = asset.UpdateStatus(ctx, e.Store, t.Bucket, id, name, func(s *asset.Status) {
		s.SetQuality(n, scores, floor)
		if !settled.Live && !settled.Splitting && measured(s) == len(settled.Segments) {
			s.SetStage(name, asset.StateDone, nil)
		}
	})
	if err != nil {
		return "", err
	}
	top := qs[0]
	return fmt.Sprintf("segment %d of %s: %s SSIM %.4f PSNR %.2f dB (%d renditions)", n, id, m.Ladder[0].Name, top.SSIM, top.PSNR, len(qs)), nil
}

func topName(m *asset.Manifest) string {
	if len(m.Ladder) == 0 {
		return "no video rendition"
	}
	return m.Ladder[0].Name
}

// measured counts the segments qa has scored.
func measured(s *asset.Status) int {
	n := 0
	for _, seg := range s.Segments {
		if seg.Stages[name].State == asset.StateDone {
			n++
		}
	}
	return n
}

// fetchRendition writes rendition r's segment n into dir as a file ffmpeg
// decodes alone: an AES-128 segment decrypted, an fMP4 segment behind its
// init segment.
func fetchRendition(ctx context.Context, e *stage.Env, bucket string, m *asset.Manifest, r media.Rung, n int, key []byte, dir string) (media.Compared, error) {
	a := layout.Asset(m.ID)
	c := media.Compared{Width: r.Width, Height: r.Height}
	keys := []string{a.Rendition(r.Name, n, r.SegmentExt())}
	if r.Container() == "ts" {
		c.Path = filepath.Join(dir, r.Name+".ts")
	} else {
		c.Path = filepath.Join(dir, r.Name+".mp4")
		keys = append([]string{a.InitSegment(r.Name)}, keys...)
	}
	var file []byte
	for _, k := range keys {
		b, err := e.Store.GetBytes(ctx, bucket, k)
		if err != nil {
			return c, err
		}
		file = append(file, b...)
	}
	if m.Options.Encryption == asset.EncryptionAES128 {
		plain, err := hls.DecryptSegment(file, key, n)
		if err != nil {
			return c, stage.Permanent(err)
		}
		file = plain
	}
	return c, os.WriteFile(c.Path, file, 0o644)
}
