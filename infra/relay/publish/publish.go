// Package publish is the contract between the relay and its protocol
// servers (rtmp, srt): a server speaks its protocol, the relay decides who
// may publish and what becomes of the frames.
package publish

import (
	"errors"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
)

// Errors of Host.Claim.
var (
	ErrWrongKey = errors.New("wrong stream key")
	ErrBusy     = errors.New("stream is already publishing")
	ErrClosing  = errors.New("relay closing")
)

// HandshakeTimeout bounds a handshake and every wait for media, so a peer
// that sends garbage or stops half-way ties up nothing.
const HandshakeTimeout = 10 * time.Second

// Host is the relay as one protocol's server sees it.
type Host interface {
	// Admit is how long remote must still wait after its wrong keys
	// before it is heard again (0: now); a refusal is counted.
	Admit(remote net.Addr) time.Duration
	// Claim takes the stream a key names for one publisher; Release
	// gives it back. Wrong keys are counted and backed off.
	Claim(key string, remote net.Addr) (name string, err error)
	Release(name string)
	// Start opens the publish's asset at its first video frame: H.264
	// with that SPS, AAC when audio is not nil.
	Start(name string, sps []byte, audio *mpeg4audio.AudioSpecificConfig) (Stream, error)
	// Refused counts a connection refused for reason (handshake, play,
	// codec, format, ...).
	Refused(reason string)
	Logger() *slog.Logger
}

// Stream takes one publish's frames, timestamps on its own timeline.
type Stream interface {
	// SetParams gives the parameter sets a protocol sends apart from the
	// frames (RTMP's sequence header).
	SetParams(sps, pps []byte)
	WriteH264(pts, dts time.Duration, au [][]byte) error
	WriteAAC(pts time.Duration, aus [][]byte) error
	// End closes the last segment and ends the asset.
	End()
}

// KeyframeAsking is a Stream whose protocol can ask the publisher for a
// keyframe (WHIP's RTCP PLI; RTMP and SRT publishers cannot be asked):
// the protocol gives it ask, which the relay calls for viewers that join
// or lose a picture, so they need not wait a whole GOP.
type KeyframeAsking interface {
	AskKeyframesWith(ask func())
}

// OpusPassing is a Stream that takes the Opus packets a protocol received
// (WHIP), beside the AAC made from them for the segments: WebRTC viewers
// get the publisher's audio as it came, not AAC made Opus again. After
// PassOpus, the stream's audio for them is what WriteOpus gives it.
type OpusPassing interface {
	PassOpus()
	WriteOpus(pts time.Duration, packet []byte)
}

// Conns tracks a protocol server's open connections, so that its Close
// can end them all and later ones are refused.
type Conns[C interface {
	comparable
	Close() error
}] struct {
	mu      sync.Mutex
	open    map[C]bool
	closing bool
}

// Add tracks c; false once CloseAll has run (close c then).
func (t *Conns[C]) Add(c C) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closing {
		return false
	}
	if t.open == nil {
		t.open = map[C]bool{}
	}
	t.open[c] = true
	return true
}

// Remove stops tracking c.
func (t *Conns[C]) Remove(c C) {
	t.mu.Lock()
	delete(t.open, c)
	t.mu.Unlock()
}

// CloseAll closes every tracked connection and refuses new ones.
func (t *Conns[C]) CloseAll() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.closing = true
	for c := range t.open {
		c.Close()
	}
}

// FindNALU is an access unit's first NAL unit of type typ (its SPS, for
// one), nil if it has none.
func FindNALU(au [][]byte, typ h264.NALUType) []byte {
	for _, n := range au {
		if len(n) > 0 && h264.NALUType(n[0]&0x1f) == typ {
			return n
		}
	}
	return nil
}
