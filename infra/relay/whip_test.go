package relay_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media/oggreader"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/segflow/segflow/infra/internal/whiptest"
	"github.com/segflow/segflow/infra/playback"
	"github.com/segflow/segflow/infra/relay"
	"github.com/segflow/segflow/shared/layout"
	"github.com/segflow/segflow/shared/media/mediatest"
)

// A pion publisher sends H.264 and Opus over WHIP, as a browser does: the
// stream becomes a live asset like an RTMP one (2 s segments cut at the
// keyframes the relay asks for, AAC audio in sync), bad offers are
// refused with the right status, and a publisher that vanishes without
// DELETE is ended by its ICE timeout.
func TestWHIPPublish(t *testing.T) {
	e := startWith(t, func(c *relay.Config) { c.WebRTCAddr = "127.0.0.1:0" })
	srv := httptest.NewServer(e.relay.WHIP())
	t.Cleanup(srv.Close)
	url := srv.URL + "/whip"
	ctx := context.Background()
	clip, err := whiptest.Encode(t.TempDir(), 9, 30, 15, "640x360", "", webrtc.MimeTypeH264)
	if err != nil {
		t.Fatal(err)
	}

	for _, c := range []struct {
		name, key, offer string
		want             int
	}{
		{"garbage offer", key, "this is not SDP", http.StatusBadRequest},
		{"SDP with no media", key, "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n", http.StatusBadRequest},
		{"no key", "", "v=0\r\n", http.StatusUnauthorized},
	} {
		code, body, _, err := whiptest.Post(ctx, url, c.key, c.offer)
		if err != nil || code != c.want {
			t.Errorf("%s: %d %q %v, want %d", c.name, code, body, err, c.want)
		}
	}
	// A page on another origin may publish (the key is the credential):
	// the preflight allows its headers and exposes Location.
	pre, _ := http.NewRequest(http.MethodOptions, url, nil)
	pre.Header.Set("Origin", "https://studio.example")
	pre.Header.Set("Access-Control-Request-Method", "POST")
	if resp, err := http.DefaultClient.Do(pre); err != nil || resp.StatusCode != http.StatusNoContent ||
		!strings.Contains(resp.Header.Get("Access-Control-Allow-Headers"), "Authorization") ||
		!strings.Contains(resp.Header.Get("Access-Control-Expose-Headers"), "Location") {
		t.Errorf("preflight: %v %+v", err, resp)
	}
	var refused *whiptest.StatusError
	if _, err := whiptest.Dial(ctx, url, key, webrtc.MimeTypeVP9); !errors.As(err, &refused) || refused.Code != http.StatusNotAcceptable {
		t.Errorf("VP9 only: %v, want 406", err)
	}
	if _, err := whiptest.Dial(ctx, url, "wrong-key", webrtc.MimeTypeH264); !errors.As(err, &refused) || refused.Code != http.StatusUnauthorized {
		t.Errorf("wrong key: %v, want 401", err)
	}

	pub, err := whiptest.Dial(ctx, url, key, webrtc.MimeTypeH264)
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	if _, err := whiptest.Dial(ctx, url, key, webrtc.MimeTypeH264); !errors.As(err, &refused) || refused.Code != http.StatusConflict {
		t.Errorf("second publisher of cam1: %v, want 409", err)
	}
	if err := pub.Send(ctx, clip); err != nil {
		t.Fatal(err)
	}
	// No trickle ICE: the answer had every candidate (RFC 9725: 405).
	patch, _ := http.NewRequest(http.MethodPatch, pub.Location, strings.NewReader("a=candidate"))
	patch.Header.Set("Content-Type", "application/trickle-ice-sdpfrag")
	if resp, err := http.DefaultClient.Do(patch); err != nil || resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("PATCH: %v %+v", err, resp)
	}
	if code, err := pub.Delete(ctx); err != nil || code != http.StatusOK {
		t.Fatalf("DELETE: %d %v", code, err)
	}
	if code, _ := pub.Delete(ctx); code != http.StatusNotFound {
		t.Errorf("second DELETE: %d, want 404", code)
	}
	m := e.waitEnded("cam1", 30*time.Second)
	if !m.Audio || m.Width != 640 || m.Height != 360 || len(m.Segments) < 4 {
		t.Fatalf("manifest %+v", m)
	}
	e.checkSegments(m, 9)
	dir := t.TempDir()
	p := filepath.Join(dir, "1.ts")
	if _, err := e.minio.Client.GetFile(ctx, "media", layout.Asset(m.ID).Source(1, ".ts"), p); err != nil {
		t.Fatal(err)
	}
	if codec, ch := mediatest.Audio(t, p); codec != "aac" || ch != 2 {
		t.Errorf("audio %s %d channels, want AAC stereo", codec, ch)
	}
	// Audio covers the segment and starts with its video: both tracks are
	// on one clock.
	v, a := mediatest.Packets(t, p, "v:0"), mediatest.Packets(t, p, "a:0")
	if len(a) == 0 || math.Abs(a[0].PTS-v[0].PTS) > 0.1 || math.Abs(mediatest.Span(a)-mediatest.Span(v)) > 0.15 {
		t.Errorf("audio %d packets from %.3f spanning %.3fs; video from %.3f spanning %.3fs",
			len(a), a[0].PTS, mediatest.Span(a), v[0].PTS, mediatest.Span(v))
	}

	// A publisher gone without a word, whose encoder (like a browser's)
	// sends a keyframe only when asked: the relay asks at the start and
	// once a segment's worth of frames followed the last one.
	longGOP, err := whiptest.Encode(t.TempDir(), 9, 30, 300, "640x360", "", webrtc.MimeTypeH264)
	if err != nil {
		t.Fatal(err)
	}
	pub2, err := whiptest.Dial(ctx, url, "another-key-2", webrtc.MimeTypeH264)
	if err != nil {
		t.Fatal(err)
	}
	defer pub2.Close()
	sendCtx, stop := context.WithTimeout(ctx, 4*time.Second)
	defer stop()
	go pub2.Send(sendCtx, longGOP)
	<-sendCtx.Done()
	if n := pub2.PLIs(); n < 3 {
		t.Errorf("%d keyframe requests in 4 s of a 10 s GOP, want one at the start and one a second from 2 s on", n)
	}
	pub2.Vanish()
	gone := time.Now()
	m2 := e.waitEnded("cam2", 30*time.Second)
	if d := time.Since(gone); d < 4*time.Second || d > 20*time.Second {
		t.Errorf("vanished publisher ended after %v, want its ICE timeout (10s)", d)
	}
	if len(m2.Segments) < 1 {
		t.Errorf("vanished publisher's asset %+v", m2)
	}
	os.Remove(p)
}

// A publisher offering VP8 alone (a browser without H.264): the relay
// transcodes its video to H.264, keyframes where the publisher's are, and
// the asset is like any other.
func TestWHIPPublishVP8(t *testing.T) {
	e := startWith(t, func(c *relay.Config) { c.WebRTCAddr = "127.0.0.1:0" })
	srv := httptest.NewServer(e.relay.WHIP())
	t.Cleanup(srv.Close)
	ctx := context.Background()
	clip, err := whiptest.Encode(t.TempDir(), 7, 30, 30, "640x360", "", webrtc.MimeTypeVP8)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := whiptest.Dial(ctx, srv.URL+"/whip", key, webrtc.MimeTypeVP8)
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	if err := pub.Send(ctx, clip); err != nil {
		t.Fatal(err)
	}
	if code, err := pub.Delete(ctx); err != nil || code != http.StatusOK {
		t.Fatalf("DELETE: %d %v", code, err)
	}
	m := e.waitEnded("cam1", 30*time.Second)
	if !m.Audio || m.Width != 640 || m.Height != 360 || len(m.Segments) < 3 {
		t.Fatalf("manifest %+v", m)
	}
	e.checkSegments(m, 7)
	p := filepath.Join(t.TempDir(), "0.ts")
	if _, err := e.minio.Client.GetFile(ctx, "media", layout.Asset(m.ID).Source(0, ".ts"), p); err != nil {
		t.Fatal(err)
	}
	if v, _ := mediatest.Codec(t, p); v != "h264" {
		t.Errorf("video %s, want h264", v)
	}
}

// WHEP: a pion viewer of an RTMP-published stream receives its H.264 as
// published and its audio as Opus, both decodable; a garbage offer gets
// 400, a stream nobody publishes 404, and a viewer that vanishes is
// dropped after its ICE timeout without disturbing the publisher.
func TestWHEPPlayback(t *testing.T) {
	reg := prometheus.NewRegistry()
	e := startWith(t, func(c *relay.Config) { c.WebRTCAddr, c.Registerer = "127.0.0.1:0", reg })
	srv := httptest.NewServer(e.relay.WHEP())
	t.Cleanup(srv.Close)
	ctx := context.Background()
	url := srv.URL + "/whep/cam1"
	if code, _, _, _ := whiptest.Post(ctx, url, "", "v=0\r\n"); code != http.StatusNotFound {
		t.Errorf("offer for a stream not live: %d, want 404", code)
	}
	published := make(chan error, 1)
	go func() { published <- publish(t, 14, "flv", "rtmp://"+e.rtmp+"/live/"+key) }()
	var v *whiptest.Viewer
	var err error
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		dir := t.TempDir()
		if v, err = whiptest.View(ctx, url, dir, whiptest.ViewOptions{}); err == nil {
			break
		}
		var refused *whiptest.StatusError
		if !errors.As(err, &refused) || refused.Code != http.StatusNotFound || time.Now().After(deadline) {
			t.Fatalf("viewer: %v", err)
		}
	}
	if code, body, _, _ := whiptest.Post(ctx, url, "", "garbage"); code != http.StatusBadRequest {
		t.Errorf("garbage offer: %d %s", code, body)
	}
	joined := time.Now()
	vp8, err := whiptest.View(ctx, url, t.TempDir(), whiptest.ViewOptions{Codec: webrtc.MimeTypeVP8})
	if err != nil {
		t.Fatal(err)
	}
	gone, err := whiptest.View(ctx, url, t.TempDir(), whiptest.ViewOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer gone.Close()
	gone.Vanish()
	// A viewer on a lossy link: every 25th packet never arrives.
	lossy, err := whiptest.View(ctx, url, t.TempDir(), whiptest.ViewOptions{})
	if err != nil {
		t.Fatal(err)
	}
	lossy.Lose(25)
	time.Sleep(6 * time.Second)
	// The VP8 viewer's video is transcoded from the first keyframe after
	// it joined; on a loaded machine the encoder starts late, so wait
	// (while the 14 s publish lasts) for the frames the checks below want
	// rather than reading a timing as a failure.
	for deadline := time.Now().Add(4 * time.Second); time.Now().Before(deadline) &&
		(v.Frames() < 4*30 || vp8.Frames() < 3*30); time.Sleep(100 * time.Millisecond) {
	}
	t.Logf("frames recorded %v after joining: H.264 viewer %d, VP8 viewer %d", time.Since(joined).Round(time.Millisecond), v.Frames(), vp8.Frames())
	lossy.Close()
	// What went out and what came back lost, per stream.
	sent, bytes, lost := counter(t, reg, "segflow_relay_whep_sent_packets_total", "cam1"),
		counter(t, reg, "segflow_relay_whep_sent_bytes_total", "cam1"), counter(t, reg, "segflow_relay_whep_lost_packets_total", "cam1")
	t.Logf("WHEP accounting: %v packets, %v bytes sent, %v lost", sent, bytes, lost)
	if sent < 4*6*30 || bytes < sent*100 || lost < 1 || lost > sent/10 {
		t.Errorf("WHEP accounting: %v packets, %v bytes sent, %v lost (one of four viewers lost 1 in 25 for 6 s)", sent, bytes, lost)
	}
	if first := v.FirstFrame(); first.IsZero() || first.Sub(joined) > 2500*time.Millisecond {
		t.Errorf("first frame %v after joining, want within one GOP (2 s)", first.Sub(joined))
	}
	if code, err := v.Delete(ctx); err != nil || code != http.StatusOK {
		t.Errorf("DELETE: %d %v", code, err)
	}
	v.Close()
	vp8.Close()
	// A vanished viewer's session is gone after the ICE timeout (10 s).
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(500 * time.Millisecond) {
		if code, _ := gone.Delete(ctx); code == http.StatusNotFound {
			break
		}
		if time.Now().After(deadline) {
			t.Error("vanished viewer still has a session after 20 s")
			break
		}
	}
	if err := <-published; err != nil {
		t.Fatalf("publisher disturbed: %v", err)
	}
	e.checkSegments(e.waitEnded("cam1", 30*time.Second), 14)
	if err := mediatest.Decodes(v.VideoPath); err != nil {
		t.Errorf("received video: %v", err)
	}
	out, err := exec.Command("ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0",
		"-show_entries", "stream=nb_read_frames,width,height", "-of", "csv=p=0", v.VideoPath).Output()
	var w, h, frames int
	fmt.Sscanf(strings.TrimSpace(string(out)), "%d,%d,%d", &w, &h, &frames)
	if err != nil || w != 640 || h != 360 || frames < 4*30 {
		t.Errorf("received video %dx%d, %d frames in ~6 s (%v)", w, h, frames, err)
	}
	// The viewer offering VP8 alone got VP8, decodable, as big (the
	// frames' size: pion's IVF header says 640x480 whatever they are).
	out, err = exec.Command("ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0",
		"-show_entries", "stream=codec_name,nb_read_frames", "-of", "csv=p=0", vp8.VideoPath).Output()
	size, _ := exec.Command("ffprobe", "-v", "error", "-select_streams", "v:0", "-read_intervals", "%+#1",
		"-show_entries", "frame=width,height", "-of", "csv=p=0", vp8.VideoPath).Output()
	var codec string
	fmt.Sscanf(strings.ReplaceAll(strings.TrimSpace(string(out)), ",", " "), "%s %d", &codec, &frames)
	if err != nil || codec != "vp8" || frames < 3*30 || strings.TrimSpace(string(size)) != "640,360" {
		t.Errorf("VP8 viewer received %q, frames %q (%v)", out, size, err)
	}
	if err := mediatest.Decodes(vp8.VideoPath); err != nil {
		t.Errorf("VP8 viewer's video: %v", err)
	}
	if codec, ch := mediatest.Audio(t, v.AudioPath); codec != "opus" || ch != 2 {
		t.Errorf("received audio %s %d channels, want Opus stereo", codec, ch)
	}
	if err := mediatest.Decodes(v.AudioPath); err != nil {
		t.Errorf("received audio: %v", err)
	}
}

// TestWHEPPrivateStream: a private stream's publish is a private asset
// with no LL-HLS rendition, and its WebRTC viewers need a token made
// with the playback key for that stream: none is 401, a wrong, another
// stream's or an expired one 403, the right one plays.
func TestWHEPPrivateStream(t *testing.T) {
	signer, err := playback.NewSigner([]byte("a playback key of 32 bytes, test"))
	if err != nil {
		t.Fatal(err)
	}
	other, _ := playback.NewSigner([]byte("another key, which the relay lacks"))
	// LL-HLS is listed in public streams' masters; a private one's lists none.
	e := startWith(t, func(c *relay.Config) {
		c.WebRTCAddr, c.Playback, c.LowLatencyURL = "127.0.0.1:0", signer, "http://127.0.0.1:1/live"
	})
	mux := http.NewServeMux()
	mux.Handle("/whep/", e.relay.WHEP())
	mux.Handle("/live/", http.StripPrefix("/live", e.relay.LowLatency()))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	ctx := context.Background()
	url := srv.URL + "/whep/vip"
	published := make(chan error, 1)
	go func() { published <- publish(t, 8, "flv", "rtmp://"+e.rtmp+"/live/"+privateKey) }()
	for deadline := time.Now().Add(10 * time.Second); e.liveAsset("vip") == nil; time.Sleep(200 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the private stream's publish never started")
		}
	}
	later := time.Now().Add(time.Hour)
	valid := signer.Token(playback.StreamSubject("vip"), later)
	refusals := []struct {
		name, token string
		want        int
	}{
		{"no token", "", http.StatusUnauthorized},
		{"garbage", "not-a-token", http.StatusForbidden},
		{"another stream's", signer.Token(playback.StreamSubject("cam1"), later), http.StatusForbidden},
		{"an asset's", signer.Token("vip", later), http.StatusForbidden},
		{"another key's", other.Token(playback.StreamSubject("vip"), later), http.StatusForbidden},
		{"expired", signer.Token(playback.StreamSubject("vip"), time.Now().Add(-time.Second)), http.StatusForbidden},
	}
	for _, r := range refusals {
		code, body, _, err := whiptest.Post(ctx, url, r.token, "v=0\r\n")
		if err != nil || code != r.want {
			t.Errorf("%s token: %d %s (%v), want %d", r.name, code, body, err, r.want)
		}
	}
	resp, err := http.Get(srv.URL + "/live/vip/index.m3u8")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("LL-HLS of a private stream: %d, want 403", resp.StatusCode)
	}
	v, err := whiptest.View(ctx, url, t.TempDir(), whiptest.ViewOptions{Token: valid})
	if err != nil {
		t.Fatalf("viewer with the token: %v", err)
	}
	time.Sleep(4 * time.Second)
	v.Close()
	if err := <-published; err != nil {
		t.Fatalf("publisher: %v", err)
	}
	m := e.waitEnded("vip", 30*time.Second)
	if !layout.Private(m.ID) || !strings.HasPrefix(m.ID, layout.PrivateIDPrefix+"live-vip-") || m.LowLatency != nil {
		t.Errorf("publish %s (LL %+v), want a private asset private_live-vip-<start> without LL-HLS", m.ID, m.LowLatency)
	}
	if err := mediatest.Decodes(v.VideoPath); err != nil || v.FirstFrame().IsZero() {
		t.Errorf("viewer with the token received no video: %v", err)
	}
}

// counter is a per-stream counter's value in reg (0: not there).
func counter(t *testing.T, reg *prometheus.Registry, name, stream string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "stream" && l.GetValue() == stream {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// A WebRTC viewer of a WHIP publish asks the publisher for the keyframe
// it starts at (a browser publisher makes one on request), rather than
// wait out its GOP; viewers joining together cost one request. The
// segment target here is long, so every other request the relay sends
// comes before the publish's first keyframe.
func TestWHEPAsksWHIPPublisherForKeyframe(t *testing.T) {
	srv, pub := whipPublishing(t, 240, func(c *relay.Config) { c.SegmentTarget = 30 * time.Second })
	ctx := context.Background()
	url := srv.URL + "/whep/cam1"
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		code, _, _, err := whiptest.Post(ctx, url, "", "v=0\r\n")
		if err == nil && code != http.StatusNotFound {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the WHIP publish never went live")
		}
	}
	time.Sleep(time.Second)
	before := pub.PLIs()
	var viewers []*whiptest.Viewer
	for range 3 {
		v, err := whiptest.View(ctx, url, t.TempDir(), whiptest.ViewOptions{})
		if err != nil {
			t.Fatal(err)
		}
		viewers = append(viewers, v)
	}
	time.Sleep(500 * time.Millisecond)
	if n := pub.PLIs() - before; n != 1 {
		t.Errorf("three viewers joining at once made %d keyframe requests, want 1", n)
	}
	for _, v := range viewers {
		v.Close()
	}
}

// A WHIP publisher's Opus reaches WebRTC viewers as it came: the packets
// a viewer receives are the publisher's own, not the AAC the segments
// carry made Opus again.
func TestWHEPPassesWHIPOpus(t *testing.T) {
	srv, pub := whipPublishing(t, 30, func(*relay.Config) {})
	ctx := context.Background()
	var v *whiptest.Viewer
	var err error
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		if v, err = whiptest.View(ctx, srv.URL+"/whep/cam1", t.TempDir(), whiptest.ViewOptions{}); err == nil {
			break
		}
		var refused *whiptest.StatusError
		if !errors.As(err, &refused) || refused.Code != http.StatusNotFound || time.Now().After(deadline) {
			t.Fatalf("viewer: %v", err)
		}
	}
	time.Sleep(3 * time.Second)
	v.Close()
	sent := map[string]bool{}
	for _, p := range oggPackets(t, pub.Sending.Ogg) {
		sent[string(p)] = true
	}
	got := oggPackets(t, v.AudioPath)
	same := 0
	for _, p := range got {
		if sent[string(p)] {
			same++
		}
	}
	if len(got) < 50 || same != len(got) {
		t.Errorf("the viewer received %d Opus packets, %d of them the publisher's", len(got), same)
	}
}

// oggPackets are an Ogg Opus file's audio packets, one per page (as the
// test publisher's encoder and pion's writer put them).
func oggPackets(t *testing.T, path string) [][]byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, _, err := oggreader.NewWith(f)
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for {
		page, _, err := r.ParseNextPage()
		if err != nil {
			return out
		}
		if len(page) > 0 && !bytes.HasPrefix(page, []byte("OpusTags")) && !bytes.HasPrefix(page, []byte("OpusHead")) {
			out = append(out, page)
		}
	}
}

// whipPublisher is a WHIP publisher sending 8 s of 640x360 with a
// keyframe every gop frames, and Opus, to cam1 on a relay with WebRTC
// (edit changes its configuration), whose WHIP and WHEP endpoints srv
// serves.
type whipPublisher struct {
	*whiptest.Publisher
	Sending whiptest.Media
}

func whipPublishing(t *testing.T, gop int, edit func(*relay.Config)) (*httptest.Server, *whipPublisher) {
	t.Helper()
	e := startWith(t, func(c *relay.Config) { c.WebRTCAddr = "127.0.0.1:0"; edit(c) })
	mux := http.NewServeMux()
	mux.Handle("/whip", e.relay.WHIP())
	mux.Handle("/whip/", e.relay.WHIP())
	mux.Handle("/whep/", e.relay.WHEP())
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	clip, err := whiptest.Encode(t.TempDir(), 8, 30, gop, "640x360", "", webrtc.MimeTypeH264)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := whiptest.Dial(context.Background(), srv.URL+"/whip", key, webrtc.MimeTypeH264)
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	t.Cleanup(func() { stop(); pub.Close() })
	go pub.Send(ctx, clip)
	return srv, &whipPublisher{pub, clip}
}
