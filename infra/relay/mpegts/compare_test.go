package mpegts

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mpegts"
	mpegtscodecs "github.com/bluenviron/mediacommon/v2/pkg/formats/mpegts/codecs"
)

// The relay keeps its own MPEG-TS writer only because it costs less CPU
// than mediacommon's general one (BenchmarkTSMux) while ffprobe reads
// the same packets from both (TestTSWriterMatchesMediacommon).

// esFrames is real encoder output: 4 s of 720p30 H.264 (a keyframe every
// 2 s, no B-frames, so PTS = DTS) and 48 kHz stereo AAC, cut into access
// units with their 90 kHz timestamps.
type esFrames struct {
	video    [][][]byte // NAL units of each access unit
	audio    [][]byte   // raw AAC frames
	aacConf  mpeg4audio.AudioSpecificConfig
	videoPTS []int64
	audioPTS []int64
}

func loadFrames(tb testing.TB) esFrames {
	tb.Helper()
	dir := tb.TempDir()
	h264File, aacFile := filepath.Join(dir, "v.h264"), filepath.Join(dir, "a.aac")
	for _, args := range [][]string{
		{"-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=30:duration=4", "-c:v", "libx264", "-preset", "veryfast",
			"-bf", "0", "-g", "60", "-pix_fmt", "yuv420p", "-b:v", "3M", "-f", "h264", h264File},
		{"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=4", "-ac", "2", "-c:a", "aac", "-b:a", "128k", "-f", "adts", aacFile},
	} {
		if out, err := exec.Command("ffmpeg", append([]string{"-hide_banner", "-nostdin", "-v", "error", "-y"}, args...)...).CombinedOutput(); err != nil {
			tb.Fatalf("ffmpeg: %v: %s", err, out)
		}
	}
	var f esFrames
	raw, _ := os.ReadFile(h264File)
	nalus := splitAnnexB(raw)
	// An access unit ends before the NAL unit that starts the next frame:
	// an AUD, SPS, or a slice whose first_mb_in_slice is 0.
	var au [][]byte
	for _, n := range nalus {
		typ := h264.NALUType(n[0] & 0x1f)
		starts := typ == h264.NALUTypeAccessUnitDelimiter || typ == h264.NALUTypeSPS ||
			((typ == h264.NALUTypeIDR || typ == h264.NALUTypeNonIDR) && len(n) > 1 && n[1]&0x80 != 0)
		if starts && hasSlice(au) {
			f.video = append(f.video, au)
			au = nil
		}
		au = append(au, n)
	}
	f.video = append(f.video, au)
	for i := range f.video {
		f.videoPTS = append(f.videoPTS, 90000+int64(i)*3000)
	}
	adts, _ := os.ReadFile(aacFile)
	var pkts mpeg4audio.ADTSPackets
	if err := pkts.Unmarshal(adts); err != nil {
		tb.Fatal(err)
	}
	f.aacConf = mpeg4audio.AudioSpecificConfig{Type: pkts[0].Type, SampleRate: pkts[0].SampleRate, ChannelConfig: pkts[0].ChannelConfig}
	for i, p := range pkts {
		f.audio = append(f.audio, p.AU)
		f.audioPTS = append(f.audioPTS, 90000+int64(i)*1024*90000/48000)
	}
	return f
}

// splitAnnexB cuts a whole Annex B stream at its start codes (mediacommon's
// AnnexB reads one access unit, with a limit on its NAL units).
func splitAnnexB(b []byte) [][]byte {
	var out [][]byte
	for {
		i := bytes.Index(b, []byte{0, 0, 1})
		if i < 0 {
			return out
		}
		b = b[i+3:]
		end := bytes.Index(b, []byte{0, 0, 1})
		if end < 0 {
			end = len(b)
		}
		n := bytes.TrimRight(b[:end], "\x00") // a 4-byte start code's leading zero
		if len(n) > 0 {
			out = append(out, n)
		}
		b = b[end:]
	}
}

func hasSlice(au [][]byte) bool {
	for _, n := range au {
		if t := h264.NALUType(n[0] & 0x1f); t == h264.NALUTypeIDR || t == h264.NALUTypeNonIDR {
			return true
		}
	}
	return false
}

// muxer writes the frames in presentation order, each audio frame before
// the video frame that follows it.
type muxer interface {
	video(pts int64, au [][]byte) error
	audio(pts int64, au []byte) error
}

func mux(tb testing.TB, f esFrames, m muxer) {
	a := 0
	for i, au := range f.video {
		for a < len(f.audio) && f.audioPTS[a] <= f.videoPTS[i] {
			if err := m.audio(f.audioPTS[a], f.audio[a]); err != nil {
				tb.Fatal(err)
			}
			a++
		}
		if err := m.video(f.videoPTS[i], au); err != nil {
			tb.Fatal(err)
		}
	}
}

type ours struct{ w *Writer }

func newOurs(w io.Writer, f esFrames) (*ours, error) {
	o := &ours{NewWriter(w, &f.aacConf)}
	return o, o.w.WriteTables()
}
func (o *ours) video(pts int64, au [][]byte) error { return o.w.WriteH264(pts, pts, au) }
func (o *ours) audio(pts int64, au []byte) error   { return o.w.WriteAAC(pts, [][]byte{au}) }

type theirs struct {
	w    *mpegts.Writer
	v, a *mpegts.Track
}

func newTheirs(w io.Writer, f esFrames) (*theirs, error) {
	t := &theirs{v: &mpegts.Track{Codec: &mpegtscodecs.H264{}}, a: &mpegts.Track{Codec: &mpegtscodecs.MPEG4Audio{Config: f.aacConf}}}
	t.w = &mpegts.Writer{W: w, Tracks: []*mpegts.Track{t.v, t.a}}
	return t, t.w.Initialize()
}
func (t *theirs) video(pts int64, au [][]byte) error { return t.w.WriteH264(t.v, pts, pts, au) }
func (t *theirs) audio(pts int64, au []byte) error {
	return t.w.WriteMPEG4Audio(t.a, pts, [][]byte{au})
}

// ffprobe's view of a TS file: per packet, the stream kind, timestamps,
// size and keyframe flag.
func probePackets(t *testing.T, data []byte) []string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "x.ts")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("ffprobe", "-v", "error", "-show_entries", "packet=codec_type,pts,dts,size,flags",
		"-of", "csv=p=0", p).Output()
	if err != nil {
		t.Fatalf("ffprobe: %v", err)
	}
	return strings.Split(strings.TrimSpace(string(out)), "\n")
}

func TestTSWriterMatchesMediacommon(t *testing.T) {
	f := loadFrames(t)
	var a, b bytes.Buffer
	o, err := newOurs(&a, f)
	if err != nil {
		t.Fatal(err)
	}
	m, err := newTheirs(&b, f)
	if err != nil {
		t.Fatal(err)
	}
	mux(t, f, o)
	mux(t, f, m)
	pa, pb := probePackets(t, a.Bytes()), probePackets(t, b.Bytes())
	if len(pa) < len(f.video)+len(f.audio) {
		t.Fatalf("ffprobe read %d packets of %d frames", len(pa), len(f.video)+len(f.audio))
	}
	if strings.Join(pa, "\n") != strings.Join(pb, "\n") {
		for i := range min(len(pa), len(pb)) {
			if pa[i] != pb[i] {
				t.Fatalf("packet %d: ours %q, mediacommon %q (%d and %d packets)", i, pa[i], pb[i], len(pa), len(pb))
			}
		}
		t.Fatalf("ours %d packets, mediacommon %d", len(pa), len(pb))
	}
	t.Logf("%d packets read the same; ours %d bytes, mediacommon %d", len(pa), a.Len(), b.Len())
}

// BenchmarkTSMux muxes the same 4 s of 720p H.264 and AAC with each
// writer into io.Discard; compare ns/op and allocs/op between the two.
func BenchmarkTSMux(b *testing.B) {
	f := loadFrames(b)
	for _, tc := range []struct {
		name string
		make func(io.Writer) (muxer, error)
	}{
		{"segflow", func(w io.Writer) (muxer, error) { return newOurs(w, f) }},
		{"mediacommon", func(w io.Writer) (muxer, error) { return newTheirs(w, f) }},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				m, err := tc.make(io.Discard)
				if err != nil {
					b.Fatal(err)
				}
				mux(b, f, m)
			}
		})
	}
}
