package whep

import (
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
)

// The VP8 encoder's feed never waits for ffmpeg: access units written
// faster than it encodes are dropped up to the next keyframe, and every
// frame that does come out follows from a keyframe it was given.
func TestVP8EncoderDropsWhenBehind(t *testing.T) {
	dir := t.TempDir()
	// 10 s of 720p, a keyframe a second, one file per access unit.
	if out, err := exec.Command("ffmpeg", "-hide_banner", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=30:duration=10",
		"-c:v", "libx264", "-preset", "ultrafast", "-g", "30", "-bf", "0", "-pix_fmt", "yuv420p",
		"-f", "image2", filepath.Join(dir, "au%04d.h264")).CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v %s", err, out)
	}
	var aus [][]byte
	var keys []bool
	for i := 1; ; i++ {
		b, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("au%04d.h264", i)))
		if err != nil {
			break
		}
		var au h264.AnnexB
		if err := au.Unmarshal(b); err != nil {
			t.Fatal(err)
		}
		aus, keys = append(aus, b), append(keys, h264.IsRandomAccess(au))
	}
	var mu sync.Mutex
	var frames [][]byte
	e, err := startVP8Encoder(func(ts uint32, frame []byte) {
		mu.Lock()
		frames = append(frames, frame)
		mu.Unlock()
	}, slog.Default())
	if err != nil {
		t.Fatal(err)
	}
	// All 300 at once, as a stream whose encoder is starved would see them.
	start := time.Now()
	for i, au := range aus {
		e.write(au, keys[i])
	}
	fed := time.Since(start)
	dropped := e.dropped
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d access units fed in %v: %d dropped, %d VP8 frames out", len(aus), fed, dropped, len(frames))
	if len(aus) != 300 || dropped == 0 || len(frames) != len(aus)-dropped {
		t.Fatalf("%d access units, %d dropped, %d frames out: want some dropped and one frame for each of the rest", len(aus), dropped, len(frames))
	}
	if f := frames[0]; len(f) == 0 || f[0]&1 != 0 {
		t.Error("the first VP8 frame is not a keyframe")
	}
}
