package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/grafov/m3u8"

	"github.com/segflow/segflow/infra/internal/e2ekit"
	"github.com/segflow/segflow/infra/internal/teststack"
	"github.com/segflow/segflow/shared/asset"
	"github.com/segflow/segflow/shared/hls"
	"github.com/segflow/segflow/shared/layout"
	"github.com/segflow/segflow/shared/media/mediatest"
	"github.com/segflow/segflow/shared/storage"
	"github.com/segflow/segflow/shared/testenv"
)

// TestLive publishes with ffmpeg -re over RTMP and over SRT through the
// whole stack and watches the live playlists grow, then end.
func TestLive(t *testing.T) {
	if testing.Short() {
		t.Skip("publishes for real time")
	}
	s := teststack.Up(t)
	tests := []struct{ name, format, url string }{
		{"rtmp", "flv", s.Env.RTMPURL},
		{"srt", "mpegts", s.Env.SRTURL + "&pkt_size=1316"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := s.With(t)
			since := time.Now()
			done := e2ekit.Publishing(e2ekit.TestPublisher("854x480", 16, tc.format, tc.url))
			id := e2ekit.WaitLiveAsset(t, s, since)
			a := layout.Asset(id)
			// LL-HLS first, while the relay surely still has the stream:
			// the transcoded playlists below can take longer than the
			// publish lasts on a loaded machine.
			ll := readLowLatency(t, s)
			// While it publishes: the playlist exists, has no ENDLIST and moves on.
			first := e2ekit.WaitPlaylist(t, s, a.Playlist("480p"), func(last int, ended bool) bool { return last >= 1 })
			fl, fend := hls.Last(first)
			if fend {
				t.Fatal("ENDLIST while publishing")
			}
			later := e2ekit.WaitPlaylist(t, s, a.Playlist("480p"), func(last int, ended bool) bool { return last > fl })
			if _, end := hls.Last(later); end {
				t.Fatal("ENDLIST while publishing")
			}
			checkLowLatency(t, s, ll)
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			// After it stops: every playlist ends, every listed segment decodes.
			ended := map[string][]byte{}
			for _, name := range []string{"480p", "360p", "audio"} {
				b := e2ekit.WaitPlaylist(t, s, a.Playlist(name), func(last int, ended bool) bool { return ended })
				ended[name+".m3u8"] = b
				if !bytes.Contains(b, []byte("#EXT-X-PROGRAM-DATE-TIME:")) {
					t.Errorf("%s has no PROGRAM-DATE-TIME:\n%s", name, b)
				}
				pl, _, err := m3u8.DecodeFrom(bytes.NewReader(b), true)
				if err != nil {
					t.Fatal(err)
				}
				for _, seg := range pl.(*m3u8.MediaPlaylist).GetAllSegments() {
					p := filepath.Join(t.TempDir(), "seg.ts")
					if _, err := s.Store.GetFile(context.Background(), s.Bucket, a.Prefix()+seg.URI, p); err != nil {
						t.Fatal(err)
					}
					if err := mediatest.Decodes(p); err != nil {
						t.Errorf("%s %s: %v", name, seg.URI, err)
					}
				}
			}
			master, err := s.Store.GetBytes(context.Background(), s.Bucket, a.Master())
			if err != nil || strings.Count(string(master), "#EXT-X-STREAM-INF") != 2 {
				t.Fatalf("master: %v\n%s", err, master)
			}
			ended["master.m3u8"] = master
			parsersAccept(t, ended)
			// qa scores a live stream's segments too, against the relay's
			// source segments.
			pl, _, err := m3u8.DecodeFrom(bytes.NewReader(ended["480p.m3u8"]), true)
			if err != nil {
				t.Fatal(err)
			}
			listed := len(pl.(*m3u8.MediaPlaylist).GetAllSegments())
			st := waitStatus(t, s, id, "qa scored every listed segment", func(st *asset.Status) bool { return st.Quality["480p"].Segments >= listed })
			for name, q := range st.Quality {
				t.Logf("qa %s: SSIM %.4f (worst frame %.4f), PSNR %.2f dB over %d segments", name, q.SSIM, q.MinSSIM, q.PSNR, q.Segments)
				if q.SSIM < 0.9 || q.Segments < listed {
					t.Errorf("qa %s: %+v, %d segments listed", name, q, listed)
				}
			}
			// Speech captions, when aitag made some, are dated as the video is.
			if b, err := s.Store.GetBytes(context.Background(), s.Bucket, a.Playlist(layout.SubtitlesRendition)); err == nil {
				if !bytes.Contains(b, []byte("#EXT-X-PROGRAM-DATE-TIME:")) {
					t.Errorf("captions have no PROGRAM-DATE-TIME:\n%s", b)
				}
			} else if !errors.Is(err, storage.ErrNotFound) {
				t.Fatal(err)
			} else {
				t.Log("no captions playlist (aitag made none)")
			}
		})
	}
}

// readLowLatency reads the demo stream's LL-HLS rendition from the relay
// through the gateway while it publishes: its media playlist, whose
// preload hint a player's request waits on until the part is there, and
// that part. It returns the playlists, by name.
func readLowLatency(t *testing.T, s *teststack.Stack) map[string][]byte {
	t.Helper()
	base := s.Env.Gateway + "/live/demo/"
	get := func(url string) []byte {
		code, b := testenv.Get(t, url)
		if code != http.StatusOK {
			t.Fatalf("%s: %d %s", url, code, b)
		}
		return b
	}
	// The relay takes the stream a moment after its manifest lands.
	var pl []byte
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		code, b := testenv.Get(t, base+"video1_stream.m3u8")
		if code == http.StatusOK {
			pl = b
			break
		}
		if code != http.StatusNotFound || time.Now().After(deadline) {
			t.Fatalf("%svideo1_stream.m3u8: %d %s", base, code, b)
		}
	}
	hint := regexp.MustCompile(`#EXT-X-PRELOAD-HINT:TYPE=PART,URI="([^"]+)"`).FindSubmatch(pl)
	if hint == nil || !bytes.Contains(pl, []byte("#EXT-X-PART:")) || !bytes.Contains(pl, []byte("CAN-BLOCK-RELOAD=YES")) {
		t.Fatalf("LL-HLS playlist:\n%s", pl)
	}
	if part := get(base + string(hint[1])); len(part) == 0 {
		t.Fatalf("part %s is empty", hint[1])
	}
	return map[string][]byte{"index.m3u8": get(base + "index.m3u8"), "video1_stream.m3u8": pl, "audio2_stream.m3u8": get(base + "audio2_stream.m3u8")}
}

// checkLowLatency checks the demo channel's master lists the relay's
// LL-HLS source rendition (ll, read while it published) beside the
// rungs, served through the gateway, and that players' parsers take them.
func checkLowLatency(t *testing.T, s *teststack.Stack, ll map[string][]byte) {
	t.Helper()
	base := s.Env.Gateway + "/live/demo/"
	master, err := s.Store.GetBytes(context.Background(), s.Bucket, layout.Channel("demo").Master())
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"\n" + base + "video1_stream.m3u8\n", `URI="` + base + `audio2_stream.m3u8"`, `CODECS="avc1.`} {
		if !strings.Contains(string(master), want) {
			t.Fatalf("channel master lacks %q:\n%s", want, master)
		}
	}
	ll["channel-master.m3u8"] = master
	parsersAccept(t, ll)
}

// A publisher whose audio stops before its video (how many encoders
// stop), or drops out for a while, still ends with ENDLIST on every
// playlist, and every segment of every rendition plays: silence fills
// what the audio left out.
func TestLiveAudioStopsFirst(t *testing.T) {
	if testing.Short() {
		t.Skip("publishes for real time")
	}
	s := teststack.Up(t)
	since := time.Now()
	done := make(chan error, 1)
	go func() {
		out, err := exec.Command("ffmpeg", "-hide_banner", "-nostdin", "-v", "error", "-re",
			"-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30:duration=12",
			"-f", "lavfi", "-i", "sine=frequency=1000:sample_rate=48000:duration=8.6",
			"-af", "aselect='not(between(t,3,4.5))'",
			"-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", "60", "-pix_fmt", "yuv420p",
			"-c:a", "aac", "-b:a", "96k", "-f", "flv", s.Env.RTMPURL).CombinedOutput()
		if err != nil {
			err = fmt.Errorf("%v: %s", err, out)
		}
		done <- err
	}()
	id := e2ekit.WaitLiveAsset(t, s, since)
	a := layout.Asset(id)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"360p", "audio"} {
		b := e2ekit.WaitPlaylist(t, s, a.Playlist(name), func(last int, ended bool) bool { return ended })
		pl, _, err := m3u8.DecodeFrom(bytes.NewReader(b), true)
		if err != nil {
			t.Fatal(err)
		}
		segs := pl.(*m3u8.MediaPlaylist).GetAllSegments()
		if len(segs) < 5 {
			t.Errorf("%s lists %d segments of a 12 s stream:\n%s", name, len(segs), b)
		}
		for _, seg := range segs {
			p := filepath.Join(t.TempDir(), "seg.ts")
			if _, err := s.Store.GetFile(context.Background(), s.Bucket, a.Prefix()+seg.URI, p); err != nil {
				t.Fatal(err)
			}
			if err := mediatest.Decodes(p); err != nil {
				t.Errorf("%s %s: %v", name, seg.URI, err)
			}
			if name == "audio" && math.Abs(mediatest.Span(mediatest.Packets(t, p, "a:0"))-seg.Duration) > 0.1 {
				t.Errorf("%s: audio lasts %.3fs, the segment %.3fs", seg.URI, mediatest.Span(mediatest.Packets(t, p, "a:0")), seg.Duration)
			}
		}
	}
	if st := s.WaitStatus(id, time.Minute, asset.StateComplete); st.State != asset.StateComplete {
		t.Errorf("status %+v", st)
	}
}

// A publisher that drops (killed, no goodbye) and comes back with the
// same key continues the stream's channel: one URL, the media sequence
// going on, EXT-X-DISCONTINUITY where the new publish starts, and the
// channel ends with ENDLIST once no publisher comes back. Each publish is
// kept whole as its own asset (the archive), with PROGRAM-DATE-TIMEs that
// step by EXTINF.
func TestLiveReconnect(t *testing.T) {
	if testing.Short() {
		t.Skip("publishes for real time")
	}
	s := teststack.Up(t)
	publisher := func(seconds int) *exec.Cmd { return e2ekit.TestPublisher("640x360", seconds, "flv", s.Env.RTMPURL) }
	ch := layout.Channel("demo")
	since := time.Now()
	first := publisher(60)
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	idA := e2ekit.WaitLiveAsset(t, s, since)
	e2ekit.WaitPlaylist(t, s, ch.Playlist("360p"), func(last int, ended bool) bool { return last >= 2 })
	first.Process.Kill() // the connection drops: no unpublish
	first.Wait()
	// Back within the reconnect grace; its playlist snapshots must only
	// go forward.
	time.Sleep(time.Second)
	since = time.Now()
	second := publisher(8)
	done := make(chan error, 1)
	go func() {
		out, err := second.CombinedOutput()
		if err != nil {
			err = fmt.Errorf("%v: %s", err, out)
		}
		done <- err
	}()
	idB := e2ekit.WaitLiveAsset(t, s, since)
	if idB == idA {
		t.Fatalf("the second publish is the first one's asset %s", idA)
	}
	var snaps [][]byte
	for seen := false; !seen; {
		b := e2ekit.WaitPlaylist(t, s, ch.Playlist("360p"), func(last int, ended bool) bool { return true })
		snaps = append(snaps, b)
		seen = bytes.Contains(b, []byte(idB))
		time.Sleep(500 * time.Millisecond)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// The channel ends once the reconnect grace passes without a publisher.
	end := e2ekit.WaitPlaylist(t, s, ch.Playlist("360p"), func(last int, ended bool) bool { return ended })
	snaps = append(snaps, end)
	prevSeq, prevLast := -1, -1
	for _, b := range snaps {
		pl, _, err := m3u8.DecodeFrom(bytes.NewReader(b), true)
		if err != nil {
			t.Fatalf("%v\n%s", err, b)
		}
		seq := int(pl.(*m3u8.MediaPlaylist).SeqNo)
		last, _ := hls.Last(b)
		if seq < prevSeq || last < prevLast {
			t.Errorf("channel went back: sequence %d -> %d, last %d -> %d\n%s", prevSeq, seq, prevLast, last, b)
		}
		prevSeq, prevLast = seq, last
	}
	// Where both publishes are in the window, the second starts with a
	// discontinuity and the numbering runs on.
	mA := e2ekit.ReadManifest(t, s, idA)
	mB := e2ekit.ReadManifest(t, s, idB)
	if mB.Previous != idA || mB.Sequence != len(mA.Segments) || mB.Discontinuity != 1 {
		t.Errorf("second publish: previous %q sequence %d discontinuity %d; want %q %d 1", mB.Previous, mB.Sequence, mB.Discontinuity, idA, len(mA.Segments))
	}
	var both []byte
	for _, b := range snaps {
		if bytes.Contains(b, []byte(idA)) && bytes.Contains(b, []byte(idB)) {
			both = b
		}
	}
	if both == nil {
		t.Fatalf("no channel playlist held both publishes:\n%s", bytes.Join(snaps, []byte("\n----\n")))
	}
	t.Logf("channel across the reconnect:\n%s", both)
	pl, _, _ := m3u8.DecodeFrom(bytes.NewReader(both), true)
	mp := pl.(*m3u8.MediaPlaylist)
	for i, seg := range mp.GetAllSegments() {
		newPublish := strings.Contains(seg.URI, idB) && (i == 0 || !strings.Contains(mp.Segments[i-1].URI, idB))
		if seg.Discontinuity != (newPublish && i > 0) {
			t.Errorf("segment %d %s: discontinuity %v\n%s", i, seg.URI, seg.Discontinuity, both)
		}
		if want := "../../" + idA + "/360p/"; !strings.HasPrefix(seg.URI, want) && !strings.HasPrefix(seg.URI, "../../"+idB+"/360p/") {
			t.Errorf("segment %d URI %s", i, seg.URI)
		}
	}
	master, err := s.Store.GetBytes(context.Background(), s.Bucket, ch.Master())
	if err != nil || !bytes.Contains(master, []byte("360p.m3u8")) {
		t.Errorf("channel master: %v\n%s", err, master)
	}
	// Each publish is its archive: every segment it made, ENDLIST,
	// wall clocks stepping by durations; every segment decodes.
	for _, m := range []*asset.Manifest{mA, mB} {
		for _, name := range []string{"360p", "audio"} {
			b := e2ekit.WaitPlaylist(t, s, layout.Asset(m.ID).Playlist(name), func(last int, ended bool) bool { return ended })
			pl, _, err := m3u8.DecodeFrom(bytes.NewReader(b), true)
			if err != nil {
				t.Fatal(err)
			}
			segs := pl.(*m3u8.MediaPlaylist).GetAllSegments()
			if len(segs) != len(m.Segments) || len(segs) < 2 {
				t.Errorf("%s %s lists %d segments of %d:\n%s", m.ID, name, len(segs), len(m.Segments), b)
			}
			for i, seg := range segs {
				if i > 0 {
					step := seg.ProgramDateTime.Sub(segs[i-1].ProgramDateTime).Seconds()
					if math.Abs(step-segs[i-1].Duration) > 0.0015 {
						t.Errorf("%s %s: PROGRAM-DATE-TIME steps %.3fs after a %.3fs segment", m.ID, seg.URI, step, segs[i-1].Duration)
					}
				}
				p := filepath.Join(t.TempDir(), "seg.ts")
				if _, err := s.Store.GetFile(context.Background(), s.Bucket, layout.Asset(m.ID).Prefix()+seg.URI, p); err != nil {
					t.Fatal(err)
				}
				if err := mediatest.Decodes(p); err != nil {
					t.Errorf("%s %s %s: %v", m.ID, name, seg.URI, err)
				}
			}
		}
	}
}
