package e2e

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/grafov/m3u8"

	"github.com/segflow/segflow/infra/internal/teststack"
	"github.com/segflow/segflow/shared/asset"
	"github.com/segflow/segflow/shared/hls"
	"github.com/segflow/segflow/shared/layout"
	"github.com/segflow/segflow/shared/media/mediatest"
	"github.com/segflow/segflow/shared/storage"
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
			done := make(chan error, 1)
			go func() {
				out, err := exec.Command("ffmpeg", "-hide_banner", "-nostdin", "-v", "error", "-re",
					"-f", "lavfi", "-i", "testsrc2=size=854x480:rate=30:duration=16",
					"-f", "lavfi", "-i", "sine=frequency=1000:sample_rate=48000:duration=16",
					"-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", "60", "-pix_fmt", "yuv420p",
					"-c:a", "aac", "-b:a", "96k", "-f", tc.format, tc.url).CombinedOutput()
				if err != nil {
					err = fmt.Errorf("%v: %s", err, out)
				}
				done <- err
			}()
			id := waitLiveAsset(t, s, since)
			a := layout.Asset(id)
			// While it publishes: the playlist exists, has no ENDLIST and moves on.
			first := waitPlaylist(t, s, a.Playlist("480p"), func(last int, ended bool) bool { return last >= 1 })
			fl, fend := hls.Last(first)
			if fend {
				t.Fatal("ENDLIST while publishing")
			}
			later := waitPlaylist(t, s, a.Playlist("480p"), func(last int, ended bool) bool { return last > fl })
			if _, end := hls.Last(later); end {
				t.Fatal("ENDLIST while publishing")
			}
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			// After it stops: every playlist ends, every listed segment decodes.
			for _, name := range []string{"480p", "360p", "audio"} {
				b := waitPlaylist(t, s, a.Playlist(name), func(last int, ended bool) bool { return ended })
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
		})
	}
}

// waitLiveAsset finds the live asset of the demo stream started after since.
func waitLiveAsset(t testing.TB, s *teststack.Stack, since time.Time) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		objs, err := s.Store.List(context.Background(), s.Bucket, "assets/live-demo-", storage.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, o := range objs {
			id := strings.TrimSuffix(strings.TrimPrefix(o.Key, "assets/"), "/")
			var ts int64
			fmt.Sscanf(id[strings.LastIndex(id, "-")+1:], "%d", &ts)
			if ts >= since.Unix()-1 {
				ids = append(ids, id)
			}
		}
		if len(ids) > 0 {
			sort.Strings(ids)
			return ids[len(ids)-1]
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("no live asset\n%s", s.Log())
	return ""
}

func waitPlaylist(t *testing.T, s *teststack.Stack, key string, ok func(last int, ended bool) bool) []byte {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	var b []byte
	for time.Now().Before(deadline) {
		var err error
		b, err = s.Store.GetBytes(context.Background(), s.Bucket, key)
		if err == nil {
			if last, ended := hls.Last(b); ok(last, ended) {
				return b
			}
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("%s never got there:\n%s\n%s", key, b, s.Log())
	return nil
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
	id := waitLiveAsset(t, s, since)
	a := layout.Asset(id)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"360p", "audio"} {
		b := waitPlaylist(t, s, a.Playlist(name), func(last int, ended bool) bool { return ended })
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
