package media_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/Eyevinn/mp4ff/mp4"
	"github.com/segflow/segflow/shared/media"
	"github.com/segflow/segflow/shared/media/mediatest"
)

// TestTranscodeCBCS makes a CMAF H.264 rung and its audio clear and again
// protected with cbcs, and checks what a Clear Key player relies on: the
// protected init segments announce cbcs with the key ID and carry a common
// pssh; every sample's bytes differ from the clear encode's, and decrypting
// them (mp4ff's decrypter, which is not the code that encrypted) gives the
// clear encode's bytes back; the protected segments play through ffmpeg
// after decryption without a warning; the codecs strings are unchanged;
// the keyframe ranges still start at a moof, at the same times.
func TestTranscodeCBCS(t *testing.T) {
	if testing.Short() {
		t.Skip("encodes")
	}
	ctx := context.Background()
	dir := t.TempDir()
	const fps = 30
	_, _, segs := splitClip(t, dir, mediatest.Clip{Seconds: 6, Width: 640, Height: 360, FPS: fps, Audio: true, GOP: 45}, 3*time.Second)
	rung := media.Rung{Name: "360p", Codec: media.H264, Width: 640, Height: 360, Bitrate: 500_000, Profile: "main", Level: "3.0", CMAF: true}
	p := &media.Protection{Key: bytes.Repeat([]byte{0x3c}, 16), KeyID: []byte("0123456789abcdef"), IV: bytes.Repeat([]byte{0xa5}, 16)}
	for _, s := range segs {
		clear, err := media.Transcode(ctx, s.Path, filepath.Join(dir, "clear", fmt.Sprint(s.Index)), []media.Rung{rung},
			media.TranscodeOptions{FPS: fps, Audio: []string{"audio"}, CMAF: true})
		if err != nil {
			t.Fatal(err)
		}
		enc, err := media.Transcode(ctx, s.Path, filepath.Join(dir, "enc", fmt.Sprint(s.Index)), []media.Rung{rung},
			media.TranscodeOptions{FPS: fps, Audio: []string{"audio"}, CMAF: true, Protect: p})
		if err != nil {
			t.Fatal(err)
		}
		for i := range enc {
			c, e := clear[i], enc[i]
			if c.Codecs != e.Codecs || c.Time != e.Time {
				t.Errorf("%s: protected codecs %q at %d, clear %q at %d", e.Rung.Name, e.Codecs, e.Time, c.Codecs, c.Time)
			}
			if len(c.Keyframes) != len(e.Keyframes) {
				t.Fatalf("%s: %d keyframes protected, %d clear", e.Rung.Name, len(e.Keyframes), len(c.Keyframes))
			}
			seg, err := os.ReadFile(e.Path)
			if err != nil {
				t.Fatal(err)
			}
			for k, kf := range e.Keyframes {
				if kf.Time != c.Keyframes[k].Time || string(seg[kf.Offset+4:kf.Offset+8]) != "moof" {
					t.Errorf("%s: keyframe %+v (clear %+v) does not start at a moof", e.Rung.Name, kf, c.Keyframes[k])
				}
			}
			checkProtected(t, dir, c, e, p)
		}
	}
}

// checkProtected compares one protected output with its clear twin,
// sample by sample, before and after decryption, and plays the decrypted
// one.
func checkProtected(t *testing.T, dir string, clear, enc media.Output, p *media.Protection) {
	t.Helper()
	cf, cs := readFragmented(t, clear)
	ef, es := readFragmented(t, enc)
	sinf := ef.Init.Moov.Trak.Mdia.Minf.Stbl.Stsd.Children[0]
	if typ := sinf.Type(); typ != "encv" && typ != "enca" {
		t.Fatalf("%s: sample entry %s, want encv or enca", enc.InitPath, typ)
	}
	if ps := ef.Init.Moov.Psshs; len(ps) != 1 || len(ps[0].KIDs) != 1 || !bytes.Equal(ps[0].KIDs[0], p.KeyID) {
		t.Errorf("%s: pssh %+v, want one listing the key ID", enc.InitPath, ps)
	}
	di, err := mp4.DecryptInit(ef.Init)
	if err != nil {
		t.Fatal(err)
	}
	if len(di.TrackInfos) != 1 || di.TrackInfos[0].Sinf.Schm.SchemeType != "cbcs" || !bytes.Equal(di.TrackInfos[0].Sinf.Schi.Tenc.DefaultKID, p.KeyID) {
		t.Fatalf("%s: protection %+v, want cbcs with the key ID", enc.InitPath, di.TrackInfos)
	}
	trex := cf.Init.Moov.Mvex.Trex
	before := samples(t, es, trex)
	clearSamples := samples(t, cs, trex)
	if len(before) != len(clearSamples) {
		t.Fatalf("%s: %d samples protected, %d clear", enc.Path, len(before), len(clearSamples))
	}
	for i := range before {
		if bytes.Equal(before[i], clearSamples[i]) && len(before[i]) >= 32 {
			t.Fatalf("%s: sample %d (%d bytes) is in the clear", enc.Path, i, len(before[i]))
		}
	}
	for _, seg := range es {
		if err := mp4.DecryptSegment(seg, di, p.Key); err != nil {
			t.Fatalf("%s: decrypt: %v", enc.Path, err)
		}
	}
	after := samples(t, es, trex)
	for i := range after {
		if !bytes.Equal(after[i], clearSamples[i]) {
			t.Fatalf("%s: sample %d decrypts to other bytes than the clear encode's", enc.Path, i)
		}
	}
	// The decrypted file plays: decryption left the boxes consistent.
	out := filepath.Join(dir, "decrypted-"+filepath.Base(filepath.Dir(enc.Path))+"-"+enc.Rung.Name+".mp4")
	var buf bytes.Buffer
	if err := ef.Init.Encode(&buf); err != nil {
		t.Fatal(err)
	}
	for _, seg := range es {
		if err := seg.Encode(&buf); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(out, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	if msg, err := exec.Command("ffmpeg", "-hide_banner", "-nostdin", "-v", "warning", "-i", out, "-f", "null", "-").CombinedOutput(); err != nil || len(msg) > 0 {
		t.Errorf("%s: playing the decrypted segment: %v\n%s", out, err, msg)
	}
}

// readFragmented parses an output's init segment and media segment as one
// file, as a player reads them.
func readFragmented(t *testing.T, o media.Output) (*mp4.File, []*mp4.MediaSegment) {
	t.Helper()
	init, err := os.ReadFile(o.InitPath)
	if err != nil {
		t.Fatal(err)
	}
	seg, err := os.ReadFile(o.Path)
	if err != nil {
		t.Fatal(err)
	}
	f, err := mp4.DecodeFile(bytes.NewReader(append(init, seg...)))
	if err != nil {
		t.Fatalf("%s: %v", o.Path, err)
	}
	if f.Init == nil || len(f.Segments) == 0 {
		t.Fatalf("%s: no init or no segment", o.Path)
	}
	return f, f.Segments
}

func samples(t *testing.T, segs []*mp4.MediaSegment, trex *mp4.TrexBox) [][]byte {
	t.Helper()
	var all [][]byte
	for _, seg := range segs {
		for _, fr := range seg.Fragments {
			fs, err := fr.GetFullSamples(trex)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range fs {
				all = append(all, append([]byte(nil), s.Data...))
			}
		}
	}
	return all
}
