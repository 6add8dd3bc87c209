package whep

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/pion/webrtc/v4/pkg/media/ivfreader"

	"github.com/segflow/segflow/infra/relay/rtc"
)

// vp8Behind is how many access units may wait for the VP8 encoder (a
// quarter of a second at 30 fps) before it skips to the next keyframe,
// and vp8InFlight how many it may hold: its output is one frame per
// access unit, and the pipe between alone holds 64 KiB, two seconds of
// a quiet picture's P-frames, which would all be delay. It must exceed
// what the decoder holds back by itself (the parser waits for the next
// frame's start; B-frames add their reorder depth, up to 4 from x264).
const (
	vp8Behind   = 8
	vp8InFlight = 8
)

// vp8Encoder feeds the H.264-to-VP8 ffmpeg from a goroutine of its own,
// so an encoder starved of CPU never holds up the stream it reads (the
// segmenter, the H.264 viewers). Once vp8Behind access units wait, it
// drops them up to the next keyframe (a frame without its references
// would not decode): VP8 viewers see a pause, not a delay that grows.
type vp8Encoder struct {
	pipe     *rtc.Pipe
	queue    chan []byte
	inFlight chan struct{} // a token per access unit in ffmpeg
	skipping bool          // under the broadcast's lock, as write
	dropped  int
	log      *slog.Logger
	wg       sync.WaitGroup
}

func startVP8Encoder(onFrame func(ts uint32, frame []byte), log *slog.Logger) (*vp8Encoder, error) {
	e := &vp8Encoder{queue: make(chan []byte, vp8Behind), inFlight: make(chan struct{}, vp8InFlight), log: log}
	p, err := startH264ToVP8(func(ts uint32, frame []byte) {
		select {
		case <-e.inFlight:
		default:
		}
		onFrame(ts, frame)
	})
	if err != nil {
		return nil, err
	}
	e.pipe = p
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		for au := range e.queue {
			// A frame ffmpeg never gives back (one it could not
			// decode) must not stop the feed for good.
			select {
			case e.inFlight <- struct{}{}:
			case <-time.After(time.Second):
			}
			if _, err := p.Write(au); err != nil {
				log.Warn("whep: VP8 encoder", "err", err)
				for range e.queue {
				}
				return
			}
		}
	}()
	return e, nil
}

// write queues one access unit (Annex-B), or drops it while the encoder
// is behind.
func (e *vp8Encoder) write(au []byte, key bool) {
	if e.skipping && !key {
		e.dropped++
		return
	}
	select {
	case e.queue <- au:
		e.skipping = false
	default:
		if !e.skipping {
			e.log.Debug("whep: VP8 encoder behind; skipping to the next keyframe")
		}
		e.skipping = true
		e.dropped++
	}
}

// Close ends the encoder once what is queued went in.
func (e *vp8Encoder) Close() error {
	close(e.queue)
	e.wg.Wait()
	if e.dropped > 0 {
		e.log.Info("whep: VP8 encoder could not keep up", "dropped_frames", e.dropped)
	}
	return e.pipe.Close()
}

// h264ToVP8 is a broadcast's video for viewers without H.264: one
// ffmpeg decodes the access units (Annex-B) and encodes VP8 (libvpx
// realtime, keyframes where the source's are), timed by their arrival,
// which is real time for a live stream; the RTP sender reports tie each
// track to the wall clock, so the browser lines them up.
//
// It runs beside the functions' encoders on the same cores, so it is
// made cheap, and quick to let a frame out: the decoder on one thread
// (frame threads hold frames back, ~70 ms at 720p, and cost 30% more
// CPU) and libvpx's fastest realtime speed (cpu-used 16: a 720p30 stream
// takes a fifth of a core, half of what speed 8 takes). When it still
// falls behind, vp8Encoder drops frames rather than let delay build up.
func startH264ToVP8(onFrame func(ts uint32, frame []byte)) (*rtc.Pipe, error) {
	return rtc.StartPipe([]string{"-use_wallclock_as_timestamps", "1", "-threads", "1", "-f", "h264", "-i", "pipe:0",
		"-fps_mode", "passthrough", "-c:v", "libvpx", "-deadline", "realtime", "-cpu-used", "16", "-lag-in-frames", "0",
		"-auto-alt-ref", "0", "-error-resilient", "1", "-b:v", "2M", "-force_key_frames", "source", "-g", "600",
		"-f", "ivf", "-flush_packets", "1", "pipe:1"},
		func(out io.Reader) error {
			rd, hdr, err := ivfreader.NewWith(bufio.NewReader(out))
			if err != nil || hdr.TimebaseDenominator == 0 {
				return fmt.Errorf("vp8 output: %v", err)
			}
			for {
				frame, fh, err := rd.ParseNextFrame()
				if err != nil {
					return nil
				}
				onFrame(uint32(fh.Timestamp*90000*uint64(hdr.TimebaseNumerator)/uint64(hdr.TimebaseDenominator)), frame)
			}
		})
}
