// Package whiptest is a WHIP publisher and a WHEP viewer for tests and
// benchmarks: pion sending H.264 and Opus that ffmpeg encoded, paced in
// real time, as a browser would send them, or receiving them to files for
// ffprobe; either able to vanish without a word.
package whiptest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	neturl "net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"
	"github.com/pion/webrtc/v4/pkg/media/h264reader"
	"github.com/pion/webrtc/v4/pkg/media/ivfreader"
	"github.com/pion/webrtc/v4/pkg/media/oggreader"
)

// Media is a clip to send: H.264 Annex-B (baseline, no B-frames, as
// WebRTC encoders make) or VP8 in IVF, and Ogg Opus of one 20 ms packet
// per page.
type Media struct {
	Video string
	Codec string // webrtc.MimeTypeH264 or MimeTypeVP8
	Ogg   string
	FPS   int
}

// Encode makes seconds of testsrc2 at size (WxH) and fps with a keyframe
// every gop frames in codec (webrtc.MimeTypeH264 or MimeTypeVP8), and a
// 1 kHz sine, in dir. filter, if not empty, is added to the video's (a
// drawtext clock, say).
func Encode(dir string, seconds, fps, gop int, size, filter, codec string) (Media, error) {
	m := Media{Video: filepath.Join(dir, "video.h264"), Codec: codec, Ogg: filepath.Join(dir, "audio.ogg"), FPS: fps}
	vf := "format=yuv420p"
	if filter != "" {
		vf = filter + "," + vf
	}
	enc := []string{"-c:v", "libx264", "-profile:v", "baseline", "-preset", "veryfast", "-bsf:v", "h264_mp4toannexb", "-f", "h264"}
	if codec == webrtc.MimeTypeVP8 {
		m.Video = filepath.Join(dir, "video.ivf")
		enc = []string{"-c:v", "libvpx", "-deadline", "realtime", "-cpu-used", "8", "-lag-in-frames", "0", "-auto-alt-ref", "0", "-b:v", "1M", "-f", "ivf"}
	}
	args := []string{"-hide_banner", "-nostdin", "-v", "error", "-y",
		"-f", "lavfi", "-i", fmt.Sprintf("testsrc2=size=%s:rate=%d:duration=%d", size, fps, seconds),
		"-f", "lavfi", "-i", fmt.Sprintf("sine=frequency=1000:sample_rate=48000:duration=%d", seconds),
		"-map", "0:v", "-vf", vf, "-g", fmt.Sprint(gop)}
	args = append(append(args, enc...), m.Video,
		"-map", "1:a", "-c:a", "libopus", "-ac", "2", "-b:a", "64k", "-page_duration", "20000", "-f", "ogg", m.Ogg)
	if out, err := exec.Command("ffmpeg", args...).CombinedOutput(); err != nil {
		return m, fmt.Errorf("ffmpeg: %v: %s", err, out)
	}
	return m, nil
}

// Publisher is one WHIP session seen from the publisher's side.
type Publisher struct {
	PC       *webrtc.PeerConnection
	Location string // the session's URL, for DELETE
	video    *webrtc.TrackLocalStaticSample
	audio    *webrtc.TrackLocalStaticSample
	conn     *cuttable
	plis     atomic.Int32
}

// StatusError is a WHIP endpoint's refusal.
type StatusError struct {
	Code int
	Body string
}

func (e *StatusError) Error() string { return fmt.Sprintf("whip: %d %s", e.Code, e.Body) }

// Dial offers video in codec (a webrtc.MimeType: H.264 as browsers offer
// it, VP8, or any pion knows) and Opus to the WHIP endpoint url with key
// as bearer token, and connects; a refusal is a *StatusError.
func Dial(ctx context.Context, url, key, codec string) (*Publisher, error) {
	p := &Publisher{}
	udp, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p.conn = &cuttable{PacketConn: udp}
	// Only the codec asked for is offered.
	all := &webrtc.MediaEngine{}
	if err := all.RegisterDefaultCodecs(); err != nil {
		return nil, err
	}
	m := &webrtc.MediaEngine{}
	videoCap := webrtc.RTPCodecCapability{MimeType: codec, ClockRate: 90000}
	switch codec {
	case webrtc.MimeTypeH264:
		videoCap.SDPFmtpLine = "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"
	case webrtc.MimeTypeVP9:
		videoCap.SDPFmtpLine = "profile-id=0"
	}
	fb := []webrtc.RTCPFeedback{{Type: "nack"}, {Type: "nack", Parameter: "pli"}}
	if err := m.RegisterCodec(webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{
		MimeType: codec, ClockRate: 90000, SDPFmtpLine: videoCap.SDPFmtpLine, RTCPFeedback: fb}, PayloadType: 102}, webrtc.RTPCodecTypeVideo); err != nil {
		return nil, err
	}
	if err := m.RegisterCodec(webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{
		MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2, SDPFmtpLine: "minptime=10;useinbandfec=1"}, PayloadType: 111}, webrtc.RTPCodecTypeAudio); err != nil {
		return nil, err
	}
	reg := &interceptor.Registry{}
	if err := webrtc.RegisterDefaultInterceptors(m, reg); err != nil {
		return nil, err
	}
	se := webrtc.SettingEngine{}
	se.SetICEUDPMux(webrtc.NewICEUDPMux(nil, p.conn))
	se.SetIncludeLoopbackCandidate(true)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	api := webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithSettingEngine(se), webrtc.WithInterceptorRegistry(reg))
	if p.PC, err = api.NewPeerConnection(webrtc.Configuration{}); err != nil {
		return nil, err
	}
	fail := func(err error) (*Publisher, error) { p.PC.Close(); p.conn.Close(); return nil, err }
	p.video, _ = webrtc.NewTrackLocalStaticSample(videoCap, "video", "whiptest")
	p.audio, _ = webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "audio", "whiptest")
	for _, tr := range []*webrtc.TrackLocalStaticSample{p.video, p.audio} {
		sender, err := p.PC.AddTransceiverFromTrack(tr, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
		if err != nil {
			return fail(err)
		}
		go p.readRTCP(sender.Sender())
	}
	offer, err := p.PC.CreateOffer(nil)
	if err != nil {
		return fail(err)
	}
	gathered := webrtc.GatheringCompletePromise(p.PC)
	if err := p.PC.SetLocalDescription(offer); err != nil {
		return fail(err)
	}
	<-gathered
	code, answer, loc, err := Post(ctx, url, key, p.PC.LocalDescription().SDP)
	if err != nil {
		return fail(err)
	}
	if code != http.StatusCreated {
		return fail(&StatusError{Code: code, Body: answer})
	}
	p.Location = absolute(url, loc)
	if err := p.PC.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		return fail(err)
	}
	connected := make(chan struct{})
	p.PC.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		if s == webrtc.PeerConnectionStateConnected {
			close(connected)
		}
	})
	select {
	case <-connected:
	case <-time.After(10 * time.Second):
		return fail(errors.New("whip: not connected in 10s"))
	}
	return p, nil
}

// absolute is a Location (a path, as the relay answers) made a URL on
// endpoint's host.
func absolute(endpoint, loc string) string {
	u, err := neturl.Parse(endpoint)
	if err != nil {
		return loc
	}
	l, err := u.Parse(loc)
	if err != nil {
		return loc
	}
	return l.String()
}

// Post sends an offer as a WHIP client does, returning the status, body
// and Location.
func Post(ctx context.Context, url, key, offer string) (int, string, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(offer))
	if err != nil {
		return 0, "", "", err
	}
	req.Header.Set("Content-Type", "application/sdp")
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header.Get("Location"), nil
}

func (p *Publisher) readRTCP(s *webrtc.RTPSender) {
	for {
		pkts, _, err := s.ReadRTCP()
		if err != nil {
			return
		}
		for _, pkt := range pkts {
			if _, ok := pkt.(*rtcp.PictureLossIndication); ok {
				p.plis.Add(1)
			}
		}
	}
}

// PLIs is how many keyframe requests the relay sent.
func (p *Publisher) PLIs() int { return int(p.plis.Load()) }

// Send sends the clip in real time, video and audio side by side, until
// it ends or ctx is done.
func (p *Publisher) Send(ctx context.Context, m Media) error {
	vb, err := os.ReadFile(m.Video)
	if err != nil {
		return err
	}
	ab, err := os.ReadFile(m.Ogg)
	if err != nil {
		return err
	}
	errs := make(chan error, 2)
	start := time.Now()
	go func() {
		if m.Codec == webrtc.MimeTypeVP8 {
			errs <- p.sendIVF(ctx, vb, m.FPS, start)
			return
		}
		errs <- p.sendVideo(ctx, vb, m.FPS, start)
	}()
	go func() { errs <- p.sendAudio(ctx, ab, start) }()
	return errors.Join(<-errs, <-errs)
}

// sendVideo writes one access unit per frame (its parameter sets and
// slice together), each at its time.
func (p *Publisher) sendVideo(ctx context.Context, b []byte, fps int, start time.Time) error {
	r, err := h264reader.NewReader(bytes.NewReader(b))
	if err != nil {
		return err
	}
	frame := time.Second / time.Duration(fps)
	var au []byte
	for n := 0; ; {
		nal, err := r.NextNAL()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		au = append(append(au, 0, 0, 0, 1), nal.Data...)
		if t := nal.UnitType; t != h264reader.NalUnitTypeCodedSliceIdr && t != h264reader.NalUnitTypeCodedSliceNonIdr {
			continue
		}
		if err := wait(ctx, start.Add(time.Duration(n)*frame)); err != nil {
			return nil
		}
		// pion counts a sample's RTP ticks truncating: a hair over the
		// frame keeps them exact (3000 at 30 fps), as a camera's are.
		if err := p.video.WriteSample(media.Sample{Data: au, Duration: frame + time.Microsecond}); err != nil {
			return err
		}
		au, n = nil, n+1
	}
}

// sendIVF writes an IVF file's frames, each at its time.
func (p *Publisher) sendIVF(ctx context.Context, b []byte, fps int, start time.Time) error {
	r, _, err := ivfreader.NewWith(bytes.NewReader(b))
	if err != nil {
		return err
	}
	frame := time.Second / time.Duration(fps)
	for n := 0; ; n++ {
		data, _, err := r.ParseNextFrame()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if err := wait(ctx, start.Add(time.Duration(n)*frame)); err != nil {
			return nil
		}
		if err := p.video.WriteSample(media.Sample{Data: data, Duration: frame + time.Microsecond}); err != nil {
			return err
		}
	}
}

func (p *Publisher) sendAudio(ctx context.Context, b []byte, start time.Time) error {
	r, _, err := oggreader.NewWith(bytes.NewReader(b))
	if err != nil {
		return err
	}
	var at time.Duration
	for {
		page, _, err := r.ParseNextPage()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if bytes.HasPrefix(page, []byte("OpusTags")) {
			continue
		}
		if err := wait(ctx, start.Add(at)); err != nil {
			return nil
		}
		if err := p.audio.WriteSample(media.Sample{Data: page, Duration: 20 * time.Millisecond}); err != nil {
			return err
		}
		at += 20 * time.Millisecond
	}
}

func wait(ctx context.Context, until time.Time) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(time.Until(until)):
		return nil
	}
}

// Delete ends the session as WHIP does, returning the status.
func (p *Publisher) Delete(ctx context.Context) (int, error) { return deleteURL(ctx, p.Location) }

// deleteURL sends DELETE to a session's URL, returning the status.
func deleteURL(ctx context.Context, url string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete, url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// Vanish stops every packet both ways, as a publisher whose machine died
// would: no DELETE, no DTLS close.
func (p *Publisher) Vanish() { p.conn.cut.Store(true) }

// Close closes the peer connection.
func (p *Publisher) Close() {
	p.PC.Close()
	p.conn.Close()
}

// cuttable is a UDP socket that can be made to go silent.
type cuttable struct {
	net.PacketConn
	cut atomic.Bool
	// dropEvery > 0 drops each incoming RTP packet whose sequence number
	// it divides: its resends (same number, no RTX) too, so it stays lost.
	dropEvery atomic.Int32
}

// dropped says whether an incoming datagram is an RTP packet (SRTP keeps
// the header in the clear; RTCP's types are 200-223) to drop.
func (c *cuttable) dropped(b []byte) bool {
	n := c.dropEvery.Load()
	if n <= 0 || len(b) < 12 || b[0]>>6 != 2 || (b[1] >= 200 && b[1] <= 223) {
		return false
	}
	return int32(uint16(b[2])<<8|uint16(b[3]))%n == 0
}

func (c *cuttable) WriteTo(b []byte, addr net.Addr) (int, error) {
	if c.cut.Load() {
		return len(b), nil
	}
	return c.PacketConn.WriteTo(b, addr)
}

func (c *cuttable) ReadFrom(b []byte) (int, net.Addr, error) {
	for {
		n, addr, err := c.PacketConn.ReadFrom(b)
		if err != nil || (!c.cut.Load() && !c.dropped(b[:n])) {
			return n, addr, err
		}
	}
}
