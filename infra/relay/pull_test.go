package relay_test

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
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

// TestPullHLSSourceRunningLate: an HLS source whose next segment is listed
// later than its target duration says (a loaded encoder) is waited for, as
// a player waits at the live edge, rather than dropped and joined again at
// the edge: every segment is pulled once, into one publish that ends when
// the playlist does.
func TestPullHLSSourceRunningLate(t *testing.T) {
	if testing.Short() {
		t.Skip("pulls for real time")
	}
	const segments = 6
	dir := t.TempDir()
	out, err := exec.Command("ffmpeg", "-hide_banner", "-nostdin", "-v", "error",
		"-f", "lavfi", "-i", fmt.Sprintf("testsrc2=size=640x360:rate=30:duration=%d", 2*segments),
		"-f", "lavfi", "-i", fmt.Sprintf("sine=frequency=1000:sample_rate=48000:duration=%d", 2*segments),
		"-c:v", "libx264", "-preset", "ultrafast", "-g", "60", "-pix_fmt", "yuv420p", "-c:a", "aac",
		"-f", "hls", "-hls_time", "2", "-hls_playlist_type", "vod",
		"-hls_segment_filename", filepath.Join(dir, "s%d.ts"), filepath.Join(dir, "all.m3u8")).CombinedOutput()
	if err != nil {
		t.Fatalf("ffmpeg: %v: %s", err, out)
	}
	// The live playlist lists three segments at first (gohlslib starts
	// three from the edge: here at the first), then one every 2 s, but
	// the fifth comes 3 s late; the end is listed with the last.
	var (
		once  sync.Once
		began time.Time
	)
	listed := func() int {
		once.Do(func() { began = time.Now() }) // the relay's first request
		n := 3
		for _, at := range []time.Duration{2 * time.Second, 7 * time.Second, 9 * time.Second} {
			if time.Since(began) >= at {
				n++
			}
		}
		return n
	}
	files := http.FileServer(http.Dir(dir))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/live.m3u8" {
			files.ServeHTTP(w, r)
			return
		}
		n := listed()
		var b strings.Builder
		b.WriteString("#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:0\n")
		for i := range n {
			fmt.Fprintf(&b, "#EXTINF:2.000000,\ns%d.ts\n", i)
		}
		if n == segments {
			b.WriteString("#EXT-X-ENDLIST\n")
		}
		w.Header().Set("Content-Type", "application/vnd.apple.mpegurl")
		w.Write([]byte(b.String()))
	}))
	t.Cleanup(srv.Close)
	pulls := filepath.Join(t.TempDir(), "pulls")
	if err := os.WriteFile(pulls, []byte("late "+srv.URL+"/live.m3u8\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	e := startWith(t, func(c *relay.Config) { c.PullsFile = pulls })
	m := e.waitEnded("late", 40*time.Second)
	e.checkSegments(m, 2*segments)
	var st pull.Status
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if st = e.relay.Pulls()[0]; st.State == pull.StateEnded || time.Now().After(deadline) {
			break
		}
	}
	if st.State != pull.StateEnded || st.Attempts != 1 {
		t.Errorf("status %+v, want ended at the first attempt", st)
	}
	if m.Previous != "" {
		t.Errorf("publish %s continues %s: the source was joined twice", m.ID, m.Previous)
	}
}
