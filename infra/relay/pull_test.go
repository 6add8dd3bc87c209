package relay_test

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segflow/segflow/infra/relay"
	"github.com/segflow/segflow/infra/relay/pull"
	"github.com/segflow/segflow/shared/testenv"
)

// TestPullSources pulls a stream from each kind of server, each a real
// one (ffmpeg serving RTMP to a player, HTTP-FLV, and SRT to a caller),
// into the same live assets a publisher makes; and sources that are down,
// missing or not media each show why in their status and are tried again
// with growing waits, while the others go on.
func TestPullSources(t *testing.T) {
	if testing.Short() {
		t.Skip("pulls for real time")
	}
	rtmpAddr, flvAddr, srtAddr, downAddr := testenv.FreeAddr(t), testenv.FreeAddr(t), testenv.FreeAddr(t), testenv.FreeAddr(t)
	garbage := testenv.FreeAddr(t)
	ln, err := net.Listen("tcp", garbage)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/junk.flv" {
			http.NotFound(w, r)
			return
		}
		w.Write([]byte(strings.Repeat("not a video stream ", 100)))
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	// An HLS source: ffmpeg's live playlist (a sliding window), in a
	// folder served over HTTP.
	hlsDir := t.TempDir()
	hlsSrv := httptest.NewServer(http.FileServer(http.Dir(hlsDir)))
	t.Cleanup(hlsSrv.Close)

	pulls := filepath.Join(t.TempDir(), "pulls")
	lines := []string{
		"from-rtmp rtmp://" + rtmpAddr + "/live/src",
		"from-flv http://" + flvAddr + "/src.flv",
		"from-srt srt://" + srtAddr + "?streamid=src",
		"from-hls " + hlsSrv.URL + "/live.m3u8",
		"down rtmp://" + downAddr + "/live/none",
		"missing http://" + garbage + "/gone.flv",
		"junk http://" + garbage + "/junk.flv",
	}
	if err := os.WriteFile(pulls, []byte("# name url\n"+strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// No SRT listener: its port, found free as srtAddr's was, could be
	// the one the SRT source listens on.
	e := startWith(t, func(c *relay.Config) { c.PullsFile, c.SRTAddr = pulls, "" })

	const seconds = 8
	servers := map[string][]string{
		"from-rtmp": {"flv", "-listen", "1", "rtmp://" + rtmpAddr + "/live/src"},
		"from-flv":  {"flv", "-listen", "1", "http://" + flvAddr + "/src.flv"},
		"from-srt":  {"mpegts", "srt://" + srtAddr + "?mode=listener&pkt_size=1316"},
		"from-hls": {"hls", "-hls_time", "2", "-hls_list_size", "5",
			"-hls_segment_filename", filepath.Join(hlsDir, "s%03d.ts"), filepath.Join(hlsDir, "live.m3u8")},
	}
	var wg sync.WaitGroup
	errs := make(chan error, len(servers))
	for name, out := range servers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// ffmpeg waits for the relay to connect before it sends.
			if err := publish(t, seconds, out[0], out[1:]...); err != nil {
				errs <- fmt.Errorf("%s: %w", name, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for name := range servers {
		m := e.waitEnded(name, 30*time.Second)
		if !m.Audio || len(m.Segments) < 3 {
			t.Fatalf("%s: manifest %+v", name, m)
		}
		// An HLS client joins a few segments from the live edge: it
		// may have come in after the first.
		want := seconds
		if name == "from-hls" {
			want = 0
		}
		e.checkSegments(m, want)
	}
	st := map[string]pull.Status{}
	for _, s := range e.relay.Pulls() {
		st[s.Name] = s
	}
	for _, tc := range []struct{ name, err string }{
		{"down", "connection refused"},
		{"missing", "404"},
		{"junk", "not FLV"},
	} {
		s := st[tc.name]
		if s.State != pull.StateWaiting || !strings.Contains(s.Error, tc.err) || s.Attempts < 2 || s.Retry.IsZero() {
			t.Errorf("%s: status %+v, want waiting after %q, tried again", tc.name, s, tc.err)
		}
	}
	if s := st["from-hls"]; s.State != pull.StateEnded {
		t.Errorf("from-hls after its playlist ended: %+v, want ended", s)
	}
	// A source whose server went away waits to be tried again too.
	if s := st["from-rtmp"]; s.State == pull.StateLive || s.Bytes == 0 {
		t.Errorf("from-rtmp after its server ended: %+v", s)
	}
}
