package e2e

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/segflow/segflow/infra/internal/teststack"
	"github.com/segflow/segflow/shared/asset"
	"github.com/segflow/segflow/shared/layout"
	"github.com/segflow/segflow/shared/media"
	"github.com/segflow/segflow/shared/media/mediatest"
)

// A phone films upright into a landscape frame and says so in the display
// matrix; the MPEG-TS source segments do not carry it. Every rendition
// must come out upright: portrait sizes from the displayed size, and the
// same picture as ffmpeg's own autorotated decode of the upload.
func TestPhoneRotationPlaysUpright(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the stack")
	}
	s := teststack.Up(t)
	ctx := context.Background()
	dir := t.TempDir()
	const seconds, fps = 4.0, 30
	landscape := filepath.Join(dir, "landscape.mp4")
	mediatest.Make(t, landscape, mediatest.Clip{Seconds: seconds, Width: 1280, Height: 720, FPS: fps, Audio: true})
	// What phones write: shown turned 90 degrees clockwise.
	phone := filepath.Join(dir, "phone.mp4")
	if out, err := exec.Command("ffmpeg", "-hide_banner", "-v", "error", "-y", "-i", landscape, "-c", "copy",
		"-metadata:s:v:0", "rotate=270", phone).CombinedOutput(); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	probe, err := media.Probe(ctx, phone)
	if err != nil || probe.Video.Rotation != 270 || probe.Video.DisplayWidth != 720 || probe.Video.DisplayHeight != 1280 {
		t.Fatalf("probe of the phone clip: %+v %v", probe.Video, err)
	}

	s.Upload("uploads/phone.mp4", phone, nil)
	id := assetOf(t, s, "uploads/phone.mp4")
	s.WaitStatus(id, 4*time.Minute, asset.StateComplete)
	a := layout.Asset(id)
	if m := manifest(t, s, id); m.Rotation != 270 || m.Width != 720 || m.Height != 1280 {
		t.Fatalf("manifest: rotation %d, %dx%d; want 270, 720x1280", m.Rotation, m.Width, m.Height)
	}
	variants := masterPlaylist(t, s, id).Variants
	if len(variants) < 2 {
		t.Fatalf("master lists %d variants", len(variants))
	}
	for _, v := range variants {
		var w, h int
		if _, err := fmt.Sscanf(v.Resolution, "%dx%d", &w, &h); err != nil || h <= w {
			t.Errorf("variant %s: RESOLUTION %q is not portrait", v.URI, v.Resolution)
		}
	}
	// The top rendition is the upload's picture upright: compared with
	// ffmpeg's autorotated decode of the upload, not with a sideways one.
	top := fetchRendition(t, s, a.Prefix(), variants[0].URI, filepath.Join(dir, "top.ts"), seconds, fps)
	var w, h int
	fmt.Sscanf(variants[0].Resolution, "%dx%d", &w, &h)
	psnr, err := media.PSNR(ctx, phone, top, w, h)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: %dx%d, PSNR %.2f dB against the upright upload", variants[0].URI, w, h, psnr)
	if psnr < 30 {
		t.Errorf("top rendition PSNR %.2f dB against the upright upload: not the upright picture", psnr)
	}
	// The poster is upright too.
	poster := filepath.Join(dir, "poster.jpg")
	if _, err := s.Store.GetFile(ctx, s.Bucket, a.Thumb("poster.jpg"), poster); err != nil {
		t.Fatal(err)
	}
	if pw, ph := mediatest.Size(t, poster); ph <= pw {
		t.Errorf("poster is %dx%d: not portrait", pw, ph)
	}
}

// A source above 1080p also gets a rung at its own height, and none above
// it.
func TestQHDGetsItsOwnRung(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the stack")
	}
	s := teststack.Up(t)
	ctx := context.Background()
	dir := t.TempDir()
	const seconds, fps = 2.0, 30
	src := filepath.Join(dir, "qhd.mp4")
	mediatest.Make(t, src, mediatest.Clip{Seconds: seconds, Width: 2560, Height: 1440, FPS: fps})
	s.Upload("uploads/qhd.mp4", src, nil)
	id := assetOf(t, s, "uploads/qhd.mp4")
	s.WaitStatus(id, 4*time.Minute, asset.StateComplete)
	a := layout.Asset(id)
	variants := masterPlaylist(t, s, id).Variants
	var got []string
	for _, v := range variants {
		got = append(got, v.Resolution)
	}
	if len(got) != 5 || got[0] != "2560x1440" || got[1] != "1920x1080" {
		t.Fatalf("variants %v, want 2560x1440 first, then 1920x1080 and down (5 in all)", got)
	}
	top := fetchRendition(t, s, a.Prefix(), variants[0].URI, filepath.Join(dir, "top.ts"), seconds, fps)
	if psnr, err := media.PSNR(ctx, src, top, 2560, 1440); err != nil || psnr < 35 {
		t.Fatalf("1440p PSNR %.2f dB (%v)", psnr, err)
	}
}
