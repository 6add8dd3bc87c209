package media

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/Eyevinn/mp4ff/mp4"
)

// A parameter set mp4ff cannot parse fails the protection with an error;
// mp4ff itself would end the process.
func TestProtectRefusesBadSPS(t *testing.T) {
	path := filepath.Join(t.TempDir(), "frag.mp4")
	if out, err := exec.Command("ffmpeg", "-hide_banner", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=160x90:rate=10:duration=1",
		"-c:v", "libx264", "-preset", "ultrafast", "-movflags", "frag_keyframe+empty_moov+default_base_moof", "-f", "mp4", path).CombinedOutput(); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	f, err := mp4.DecodeFile(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	f.Init.Moov.Trak.Mdia.Minf.Stbl.Stsd.AvcX.AvcC.SPSnalus[0] = []byte{0x67, 0xff}
	p := &Protection{Key: bytes.Repeat([]byte{1}, 16), KeyID: bytes.Repeat([]byte{2}, 16), IV: bytes.Repeat([]byte{3}, 16)}
	if err := p.apply(f); err == nil || !strings.Contains(err.Error(), "SPS") {
		t.Fatalf("err = %v, want one about the SPS", err)
	}
}
