package whiptest

import (
	"context"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media/oggwriter"
)

// Viewer is one WHEP session seen from the viewer's side: what it
// receives is written to VideoPath (H.264 Annex-B or VP8 IVF, the frames
// a player would show: videoRecorder) and AudioPath (Ogg Opus) for
// ffprobe.
type Viewer struct {
	PC                   *webrtc.PeerConnection
	Location             string
	VideoPath, AudioPath string
	conn                 *cuttable
	wg                   sync.WaitGroup
	mu                   sync.Mutex
	firstFrame           time.Time
	frames               atomic.Int64
}

// ViewOptions shape a viewer's request.
type ViewOptions struct {
	// Codec is the video it offers to receive: webrtc.MimeTypeH264 (and
	// the rest as pion offers them; the default) or MimeTypeVP8 alone.
	Codec string
	// Token is sent as the bearer token (a private stream's).
	Token string
}

// View offers to receive video (o.Codec) and Opus from the WHEP endpoint
// url (a stream's) and records what comes into dir (VideoPath: H.264
// Annex-B or IVF); a refusal is a *StatusError.
func View(ctx context.Context, url, dir string, o ViewOptions) (*Viewer, error) {
	codec := o.Codec
	v := &Viewer{VideoPath: filepath.Join(dir, "whep.h264"), AudioPath: filepath.Join(dir, "whep.ogg")}
	if codec == webrtc.MimeTypeVP8 {
		v.VideoPath = filepath.Join(dir, "whep.ivf")
	}
	udp, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	v.conn = &cuttable{PacketConn: udp}
	m := &webrtc.MediaEngine{}
	if err := m.RegisterDefaultCodecs(); err != nil {
		return nil, err
	}
	if codec == webrtc.MimeTypeVP8 {
		m = &webrtc.MediaEngine{}
		fb := []webrtc.RTCPFeedback{{Type: "nack"}, {Type: "nack", Parameter: "pli"}}
		if err := m.RegisterCodec(webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{
			MimeType: webrtc.MimeTypeVP8, ClockRate: 90000, RTCPFeedback: fb}, PayloadType: 96}, webrtc.RTPCodecTypeVideo); err != nil {
			return nil, err
		}
		if err := m.RegisterCodec(webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{
			MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, PayloadType: 111}, webrtc.RTPCodecTypeAudio); err != nil {
			return nil, err
		}
	}
	reg := &interceptor.Registry{}
	if err := webrtc.RegisterDefaultInterceptors(m, reg); err != nil {
		return nil, err
	}
	se := webrtc.SettingEngine{}
	se.SetICEUDPMux(webrtc.NewICEUDPMux(nil, v.conn))
	se.SetIncludeLoopbackCandidate(true)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	api := webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithSettingEngine(se), webrtc.WithInterceptorRegistry(reg))
	if v.PC, err = api.NewPeerConnection(webrtc.Configuration{}); err != nil {
		return nil, err
	}
	fail := func(err error) (*Viewer, error) { v.PC.Close(); v.conn.Close(); return nil, err }
	for _, k := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeVideo, webrtc.RTPCodecTypeAudio} {
		if _, err := v.PC.AddTransceiverFromKind(k, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
			return fail(err)
		}
	}
	aw, err := oggwriter.New(v.AudioPath, 48000, 2)
	if err != nil {
		return fail(err)
	}
	v.PC.OnTrack(func(t *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		v.wg.Add(1)
		defer v.wg.Done()
		var vw *videoRecorder
		if t.Kind() == webrtc.RTPCodecTypeVideo {
			var rerr error
			if vw, rerr = newVideoRecorder(v.PC, t, v.VideoPath, codec == webrtc.MimeTypeVP8, &v.frames); rerr != nil {
				return
			}
		}
		for {
			p, _, err := t.ReadRTP()
			if err != nil {
				break
			}
			if t.Kind() == webrtc.RTPCodecTypeVideo {
				v.mu.Lock()
				if v.firstFrame.IsZero() {
					v.firstFrame = time.Now()
				}
				v.mu.Unlock()
				vw.WriteRTP(p)
			} else {
				aw.WriteRTP(p)
			}
		}
		if t.Kind() == webrtc.RTPCodecTypeVideo {
			vw.Close()
		} else {
			aw.Close()
		}
	})
	offer, err := v.PC.CreateOffer(nil)
	if err != nil {
		return fail(err)
	}
	gathered := webrtc.GatheringCompletePromise(v.PC)
	if err := v.PC.SetLocalDescription(offer); err != nil {
		return fail(err)
	}
	<-gathered
	code, answer, loc, err := Post(ctx, url, o.Token, v.PC.LocalDescription().SDP)
	if err != nil {
		return fail(err)
	}
	if code != http.StatusCreated {
		return fail(&StatusError{Code: code, Body: answer})
	}
	v.Location = absolute(url, loc)
	if err := v.PC.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		return fail(err)
	}
	return v, nil
}

// FirstFrame is when the first video packet came (zero: none yet).
func (v *Viewer) FirstFrame() time.Time {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.firstFrame
}

// Frames is how many whole video frames have been recorded so far.
func (v *Viewer) Frames() int { return int(v.frames.Load()) }

// Delete ends the session as WHEP does, returning the status.
func (v *Viewer) Delete(ctx context.Context) (int, error) { return deleteURL(ctx, v.Location) }

// Lose drops every nth media packet that comes (and its resends), as a
// lossy link would: the viewer's receiver reports count them lost.
func (v *Viewer) Lose(n int) { v.conn.dropEvery.Store(int32(n)) }

// Vanish stops every packet both ways, as a viewer whose machine died.
func (v *Viewer) Vanish() { v.conn.cut.Store(true) }

// Close closes the connection and waits for the recordings to be written.
func (v *Viewer) Close() error {
	err := v.PC.Close()
	v.wg.Wait()
	v.conn.Close()
	return err
}
