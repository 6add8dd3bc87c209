package pull

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/bluenviron/gohlslib/v2"
	"github.com/bluenviron/gohlslib/v2/pkg/codecs"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"

	"github.com/segflow/segflow/infra/relay/publish"
)

// getHLS reads an HLS stream (live, from near its live edge, or VOD,
// from its start; MPEG-TS or fMP4 segments) with gohlslib's client into
// host's stream name: its H.264 and AAC tracks, timestamps from its
// first video frame. The client delivers each track from its own
// goroutine; the stream takes one frame at a time.
func getHLS(ctx context.Context, u *url.URL, host publish.Host, name string, received func(int)) error {
	if err := filled(ctx, u); err != nil {
		return err
	}
	var (
		mu     sync.Mutex
		st     publish.Stream
		failed error
		base   time.Duration
	)
	quiet := func(string) {} // gohlslib logs every download with the standard logger otherwise
	c := &gohlslib.Client{URI: u.String(), HTTPClient: &http.Client{Transport: &liveEdge{next: countingTransport{received}}},
		OnDownloadPrimaryPlaylist: quiet, OnDownloadStreamPlaylist: quiet, OnDownloadSegment: quiet, OnDownloadPart: quiet,
		OnDecodeError: func(error) {}}
	fail := func(err error) {
		if failed == nil {
			failed = err
			go c.Close()
		}
	}
	at := func(ts int64, rate int) time.Duration {
		return time.Duration(ts)*time.Second/time.Duration(rate) - base
	}
	c.OnTracks = func(tracks []*gohlslib.Track) error {
		var video, audio *gohlslib.Track
		for _, t := range tracks {
			switch t.Codec.(type) {
			case *codecs.H264:
				video = t
			case *codecs.MPEG4Audio:
				audio = t
			}
		}
		if video == nil {
			host.Refused("codec")
			return errors.New("no H.264 video track")
		}
		var aconf *mpeg4audio.AudioSpecificConfig
		if audio != nil {
			conf := audio.Codec.(*codecs.MPEG4Audio).Config
			aconf = &conf
		}
		params := video.Codec.(*codecs.H264)
		c.OnDataH26x(video, func(pts, dts int64, au [][]byte) {
			mu.Lock()
			defer mu.Unlock()
			if failed != nil {
				return
			}
			if st == nil {
				sps := publish.FindNALU(au, h264.NALUTypeSPS)
				if sps == nil {
					sps = params.SPS
				}
				if sps == nil || !h264.IsRandomAccess(au) {
					return // a stream starts at a keyframe
				}
				s, err := host.Start(name, sps, aconf)
				if err != nil {
					fail(err)
					return
				}
				st, base = s, time.Duration(dts)*time.Second/time.Duration(video.ClockRate)
				if params.SPS != nil && params.PPS != nil {
					st.SetParams(params.SPS, params.PPS) // fMP4 sources carry them in the init only
				}
			}
			if err := st.WriteH264(at(pts, video.ClockRate), at(dts, video.ClockRate), au); err != nil {
				fail(err)
			}
		})
		if audio != nil {
			c.OnDataMPEG4Audio(audio, func(pts int64, aus [][]byte) {
				mu.Lock()
				defer mu.Unlock()
				if failed != nil || st == nil || at(pts, audio.ClockRate) < 0 {
					return
				}
				if err := st.WriteAAC(at(pts, audio.ClockRate), aus); err != nil {
					fail(err)
				}
			})
		}
		return nil
	}
	if err := c.Start(); err != nil {
		host.Refused("pull")
		return fmt.Errorf("get %s: %w", u.Redacted(), err)
	}
	stop := context.AfterFunc(ctx, c.Close)
	defer stop()
	err := c.Wait2()
	mu.Lock()
	defer mu.Unlock()
	if st != nil {
		st.End()
	}
	if failed != nil {
		return failed
	}
	if errors.Is(err, gohlslib.ErrClientEOS) && ctx.Err() == nil {
		// The playlist ended (ENDLIST) and was read to its end: pulling
		// it again would replay it.
		return errEnded
	}
	return err
}

// countingTransport reports the bytes of every response body.
type countingTransport struct{ received func(int) }

func (t countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err == nil {
		resp.Body = struct {
			io.Reader
			io.Closer
		}{readCounter{resp.Body, t.received}, resp.Body}
	}
	return resp, err
}

// liveEdge is the transport under gohlslib's client that waits at a
// live playlist's edge as a player does. gohlslib (v2.4.4) reloads the
// media playlist once after each segment it read and gives up if the
// next one is not listed yet; a source a little behind real time (a
// loaded encoder, a slow origin) makes that happen mid-stream, and the
// pull would then start again from the live edge, losing what was
// between. A reload listing nothing after the segment last fetched is
// made again every half second for up to two target durations.
type liveEdge struct {
	next http.RoundTripper
	mu   sync.Mutex
	last string // the URL of the last segment fetched
}

// edgeWait is how often a playlist is reloaded at its live edge.
const edgeWait = 500 * time.Millisecond

func (t *liveEdge) RoundTrip(req *http.Request) (*http.Response, error) {
	var deadline time.Time
	for {
		resp, err := t.next.RoundTrip(req)
		if err != nil || resp.StatusCode != http.StatusOK {
			return resp, err
		}
		body := bufio.NewReader(resp.Body)
		if head, _ := body.Peek(7); string(head) != "#EXTM3U" {
			t.mu.Lock()
			t.last = req.URL.String()
			t.mu.Unlock()
			resp.Body = struct {
				io.Reader
				io.Closer
			}{body, resp.Body}
			return resp, nil
		}
		b, err := io.ReadAll(io.LimitReader(body, 1<<20))
		resp.Body.Close()
		if err != nil {
			return nil, err
		}
		resp.Body = io.NopCloser(bytes.NewReader(b))
		target, atEdge := t.atEdge(req.URL, string(b))
		if !atEdge {
			return resp, nil
		}
		if deadline.IsZero() {
			deadline = time.Now().Add(2 * target)
		}
		if time.Now().After(deadline) {
			return resp, nil
		}
		select {
		case <-req.Context().Done():
			return nil, req.Context().Err()
		case <-time.After(edgeWait):
		}
	}
}

// atEdge says whether playlist (fetched from base) is a live media
// playlist whose last segment is the one last fetched, and gives its
// target duration.
func (t *liveEdge) atEdge(base *url.URL, playlist string) (time.Duration, bool) {
	target, last := 6*time.Second, ""
	for _, line := range strings.Split(playlist, "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "#EXT-X-ENDLIST", strings.HasPrefix(line, "#EXT-X-STREAM-INF"):
			return 0, false
		case strings.HasPrefix(line, "#EXT-X-TARGETDURATION:"):
			if n, err := strconv.Atoi(strings.TrimPrefix(line, "#EXT-X-TARGETDURATION:")); err == nil && n > 0 {
				target = time.Duration(n) * time.Second
			}
		case line != "" && !strings.HasPrefix(line, "#"):
			if ref, err := base.Parse(line); err == nil {
				last = ref.String()
			}
		}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return target, last != "" && last == t.last
}

// liveStart is how many segments a live media playlist must list before
// it is read: gohlslib (v2.4.4) starts that many from the end and, given
// fewer, never loads the playlist again.
const liveStart = 3

// filled says whether u can be read yet: a master playlist, an ended one,
// or a live media playlist listing liveStart segments.
func filled(ctx context.Context, u *url.URL) error {
	ctx, cancel := context.WithTimeout(ctx, publish.HandshakeTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("get %s: %w", u.Redacted(), err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("get %s: %s", u.Redacted(), resp.Status)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	text := string(b)
	if !strings.HasPrefix(strings.TrimSpace(text), "#EXTM3U") {
		return fmt.Errorf("%s: not a playlist", u.Redacted())
	}
	if n := strings.Count(text, "#EXTINF"); !strings.Contains(text, "#EXT-X-STREAM-INF") && !strings.Contains(text, "#EXT-X-ENDLIST") && n < liveStart {
		return fmt.Errorf("%s: %d segments listed, waiting for %d", u.Redacted(), n, liveStart)
	}
	return nil
}
