package relay

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"

	"github.com/segflow/segflow/infra/relay/publish"
	"github.com/segflow/segflow/infra/relay/spool"
	"github.com/segflow/segflow/infra/relay/whep"
	"github.com/segflow/segflow/shared/asset"
	"github.com/segflow/segflow/shared/layout"
	"github.com/segflow/segflow/shared/media"
)

// stream is one publish: it becomes asset live-<name>-<start> (a private
// stream's private_live-<name>-<start>), whose manifest and source
// segments go to the bucket through the spool.
type stream struct {
	r    *Relay
	name string
	id   string
	log  *slog.Logger
	seg  *segmenter
	// ll is the LL-HLS rendition while viewers ask for it (lowLatency);
	// llAsked is when one last did (unix ns).
	ll      atomic.Pointer[lowLatency]
	llAsked atomic.Int64
	llMu    sync.Mutex // makes ll and rtc; with ended, none after End
	// rtc is the stream as WebRTC viewers get it, made by the first
	// (broadcast).
	rtc atomic.Pointer[whep.Broadcast]
	// askKey asks the publisher for a keyframe, when its protocol can
	// (publish.KeyframeAsking: WHIP).
	askKey atomic.Pointer[func()]
	// opusIn: the publisher's Opus goes to WebRTC viewers as it came
	// (publish.OpusPassing: WHIP), not the AAC made Opus again.
	opusIn   atomic.Bool
	sps      []byte
	ended    bool
	spool    *spool.Spool
	manifest asset.Manifest
	fps      float64
	started  time.Time
	grace    time.Duration // how long its channel waits for a comeback
	private  bool          // StreamOptions.Private

	mu       sync.Mutex
	segments []asset.Segment
	bytes    int64
}

// newStream starts an asset for a publisher whose video is H.264 with the
// given SPS, and audio AAC when audio is non-nil.
func (r *Relay) newStream(name string, sps []byte, audio *mpeg4audio.AudioSpecificConfig) (*stream, error) {
	var p h264.SPS
	if err := p.Unmarshal(sps); err != nil {
		return nil, fmt.Errorf("stream %s: H.264 SPS: %w", name, err)
	}
	now := time.Now().UTC()
	st := &stream{r: r, name: name, started: now, fps: p.FPS(), sps: sps}
	if st.fps <= 0 || st.fps > 120 {
		st.fps = 30
	}
	ctx, cancel := context.WithTimeout(context.Background(), publish.HandshakeTimeout)
	defer cancel()
	prev, err := r.previous(ctx, name)
	if err != nil {
		return nil, err
	}
	// A publisher that comes back within the second is a new publish
	// all the same: its id must not be the last one's.
	stamp := now.Unix()
	if prev != nil {
		var last int64
		fmt.Sscanf(prev.ID[strings.LastIndexByte(prev.ID, '-')+1:], "%d", &last)
		stamp = max(stamp, last+1)
	}
	opts := r.cfg.Keys.Options(name)
	st.private = opts.Private
	st.id = fmt.Sprintf("live-%s-%d", name, stamp)
	if st.private {
		st.id = layout.PrivateIDPrefix + st.id
	}
	st.log = r.log.With("stream", name, "asset", st.id)
	ladder, err := media.Ladder(&media.VideoStream{Width: p.Width(), Height: p.Height(), DisplayWidth: p.Width()}, nil)
	if err != nil {
		return nil, err
	}
	window := r.cfg.Window
	if opts.DVR > 0 {
		window = max(1, int(math.Ceil(opts.DVR.Seconds()/r.cfg.SegmentTarget.Seconds())))
	}
	st.grace = cmp.Or(opts.Reconnect, r.cfg.Reconnect)
	st.manifest = asset.Manifest{ID: st.id, Source: "live/" + name, Width: p.Width(), Height: p.Height(),
		FPS: st.fps, VideoCodec: "h264", Audio: audio != nil, Ladder: ladder, Live: true,
		LiveWindow: window, SegmentTarget: r.cfg.SegmentTarget.Seconds(), Created: now, Channel: name,
		Options: asset.UploadOptions{Packaging: opts.Packaging}}
	for i := range ladder {
		ladder[i].CMAF = st.manifest.CMAF()
	}
	// A private stream has no LL-HLS rendition, which the relay serves to
	// anyone; its publishes are watched as private assets (signed /play/
	// URLs) and over WebRTC with a token. (The packager writes it no
	// channel playlists either: layout.Private of its id.)
	if base := r.cfg.LowLatencyURL; base != "" && !st.private {
		st.manifest.LowLatency = &asset.LowLatency{URL: strings.TrimSuffix(base, "/") + "/" + name + "/", Codecs: sourceCodecs(sps, audio)}
	}
	if prev != nil {
		// The channel goes on from the last publish: its numbering, and
		// one more discontinuity.
		st.manifest.Previous = prev.ID
		st.manifest.Sequence = prev.Sequence + len(prev.Segments)
		st.manifest.Discontinuity = prev.Discontinuity + 1
	}
	st.spool, err = spool.Open(filepath.Join(r.cfg.SpoolDir, st.id), r.cfg.Bucket, r.cfg.Store, r.cfg.SpoolMaxBytes, st.log,
		func(items int, bytes int64) {
			r.metrics.spoolItems.WithLabelValues(name).Set(float64(items))
			r.metrics.spoolBytes.WithLabelValues(name).Set(float64(bytes))
		})
	if err != nil {
		return nil, err
	}
	// The manifest goes out first: transcode and packager read it. The
	// channel's state follows: this publish is the one it is on.
	if err := st.putManifest(); err != nil {
		return nil, err
	}
	state, _ := json.Marshal(channelState{Stream: name, Current: st.id, Started: now})
	if err := st.spool.Add(spool.Item{Key: layout.Channel(name).State(), ContentType: "application/json",
		Metadata: map[string]string{layout.ProducerMeta: "relay"}}, state); err != nil {
		return nil, err
	}
	st.seg = &segmenter{Target: r.cfg.SegmentTarget, Audio: audio, OnSegment: st.onSegment, Create: st.spool.Create}
	r.mu.Lock()
	r.live[name] = st
	r.mu.Unlock()
	st.log.Info("publish started", "width", p.Width(), "height", p.Height(), "fps", st.fps, "audio", audio != nil)
	r.metrics.publishers.Inc()
	return st, nil
}

// sourceCodecs is the RFC 6381 string of a publish as it is sent: avc1
// with the SPS's profile, constraint flags and level, and mp4a with the
// AAC object type.
func sourceCodecs(sps []byte, audio *mpeg4audio.AudioSpecificConfig) string {
	s := "avc1"
	if len(sps) >= 4 {
		s = fmt.Sprintf("avc1.%02x%02x%02x", sps[1], sps[2], sps[3])
	}
	if audio != nil {
		s += fmt.Sprintf(",mp4a.40.%d", audio.Type)
	}
	return s
}

// snapshot is the manifest as it stands, listing the segments closed so
// far and extra.
func (st *stream) snapshot(extra ...asset.Segment) asset.Manifest {
	st.mu.Lock()
	defer st.mu.Unlock()
	m := st.manifest
	m.Segments = append(append([]asset.Segment(nil), st.segments...), extra...)
	return m
}

func (st *stream) putManifest(extra ...asset.Segment) error {
	b, err := json.MarshalIndent(st.snapshot(extra...), "", "  ")
	if err != nil {
		return err
	}
	return st.spool.Add(spool.Item{Key: layout.Asset(st.id).Manifest(), ContentType: "application/json",
		Metadata: map[string]string{layout.ProducerMeta: "relay"}}, b)
}

func (st *stream) onSegment(s Segment) {
	seg := asset.Segment{Index: s.Index, Start: s.Start.Seconds(), Duration: s.Duration.Seconds()}
	st.mu.Lock()
	st.segments = append(st.segments, seg)
	st.bytes += s.Size
	st.mu.Unlock()
	meta := asset.SegmentMeta{Index: s.Index, Start: seg.Start, Duration: seg.Duration, Wallclock: s.Wallclock}
	it := spool.Item{Key: layout.Asset(st.id).Source(s.Index, ".ts"), ContentType: "video/mp2t",
		Metadata: meta.Encode(map[string]string{layout.ProducerMeta: "relay"})}
	st.r.metrics.segments.WithLabelValues(st.name).Inc()
	st.r.metrics.bitrate.WithLabelValues(st.name).Set(float64(s.Size*8) / max(s.Duration.Seconds(), 0.001))
	add := func() error { return st.spool.AddFile(it, s.Path, s.Size) }
	if s.Data != nil {
		st.log.Warn("segment held in memory: the spool's disk refused it", "index", s.Index, "err", s.DiskErr)
		add = func() error { return st.spool.Add(it, s.Data) }
	}
	if err := add(); err != nil {
		st.r.metrics.dropped.WithLabelValues(st.name).Inc()
		st.log.Error("segment dropped", "index", s.Index, "err", err)
		return
	}
	st.log.Debug("segment closed", "index", s.Index, "duration", seg.Duration, "bytes", s.Size)
}

// SetParams, WriteH264 and WriteAAC feed the segmenter (publish.Stream).
func (st *stream) SetParams(sps, pps []byte) { st.seg.SPS, st.seg.PPS = sps, pps }

func (st *stream) WriteH264(pts, dts time.Duration, au [][]byte) error {
	if h264.IsRandomAccess(au) {
		au = st.seg.withParams(au) // for both renditions: each part and segment decodes alone
	}
	if err := st.seg.WriteH264(pts, dts, au); err != nil {
		return err
	}
	if b := st.rtc.Load(); b != nil {
		b.WriteH264(pts, au)
	}
	l := st.ll.Load()
	if l == nil {
		return nil
	}
	// Nobody watching for a while: the muxer goes at a keyframe, where
	// the next viewer's would start anyway.
	if h264.IsRandomAccess(au) && time.Since(time.Unix(0, st.llAsked.Load())) > lowLatencyIdle {
		st.dropLowLatency(l, "no viewer", nil)
		return nil
	}
	if err := l.WriteH264(pts, au); err != nil {
		st.dropLowLatency(l, "frame refused", err)
	}
	return nil
}

// dropLowLatency stops the stream's LL-HLS rendition l (a later request
// starts another). A frame its muxer refuses ends it, never the publish:
// the segments the functions transcode are the stream, this is a view.
func (st *stream) dropLowLatency(l *lowLatency, why string, err error) {
	if !st.ll.CompareAndSwap(l, nil) {
		return
	}
	l.Close()
	if err != nil {
		st.log.Warn("low-latency rendition stopped: "+why, "err", err.Error())
		return
	}
	st.log.Info("low-latency rendition stopped: " + why)
}

// lowLatency is the stream's LL-HLS rendition, started by the first
// request for it (as MediaMTX muxes HLS only for streams someone reads):
// that viewer's playlist waits for the next keyframe. nil once the
// publish has ended.
func (st *stream) lowLatency() (*lowLatency, error) {
	st.llAsked.Store(time.Now().UnixNano())
	if l := st.ll.Load(); l != nil {
		return l, nil
	}
	st.llMu.Lock()
	defer st.llMu.Unlock()
	if l := st.ll.Load(); l != nil || st.ended {
		return l, nil
	}
	l, err := newLowLatency(st.seg.Audio, st.r.cfg.SegmentTarget, st.seg.wallclock)
	if err != nil {
		return nil, err
	}
	st.ll.Store(l)
	st.log.Info("low-latency rendition started")
	return l, nil
}

// broadcast is the stream's WebRTC broadcast, made by the first viewer.
func (st *stream) broadcast() (*whep.Broadcast, error) {
	if b := st.rtc.Load(); b != nil {
		return b, nil
	}
	st.llMu.Lock()
	defer st.llMu.Unlock()
	if st.ended {
		return nil, fmt.Errorf("%w: %s", whep.ErrNotLive, st.name)
	}
	if b := st.rtc.Load(); b != nil {
		return b, nil
	}
	b := whep.NewBroadcast(st.name, st.sps, st.seg.Audio, st.log)
	b.OpusIn = st.opusIn.Load()
	m := st.r.metrics
	packets, bytes, lost := m.whepPackets.WithLabelValues(st.name), m.whepBytes.WithLabelValues(st.name), m.whepLost.WithLabelValues(st.name)
	b.OnSent = func(n, size int) { packets.Add(float64(n)); bytes.Add(float64(size)) }
	b.OnLost = func(n int) { lost.Add(float64(n)) }
	b.AskKeyframe = func() {
		if ask := st.askKey.Load(); ask != nil {
			(*ask)()
		}
	}
	st.rtc.Store(b)
	return b, nil
}

// AskKeyframesWith takes the publisher's keyframe request, for WebRTC
// viewers (publish.KeyframeAsking).
func (st *stream) AskKeyframesWith(ask func()) { st.askKey.Store(&ask) }

// PassOpus and WriteOpus take the publisher's Opus for WebRTC viewers
// (publish.OpusPassing); PassOpus comes before any viewer can.
func (st *stream) PassOpus() { st.opusIn.Store(true) }

func (st *stream) WriteOpus(pts time.Duration, packet []byte) {
	if b := st.rtc.Load(); b != nil {
		b.WriteOpus(pts, packet)
	}
}

func (st *stream) WriteAAC(pts time.Duration, aus [][]byte) error {
	if err := st.seg.WriteAAC(pts, aus); err != nil {
		return err
	}
	if b := st.rtc.Load(); b != nil {
		b.WriteAAC(pts, aus)
	}
	if l := st.ll.Load(); l != nil {
		if err := l.WriteAAC(pts, aus); err != nil {
			st.dropLowLatency(l, "audio refused", err)
		}
	}
	return nil
}

// End closes the last segment and marks the asset ended. The ended
// manifest (listing that last segment) is queued before the segment, so
// the packager knows the stream is over by the time its renditions land.
func (st *stream) End() {
	var last *Segment
	st.seg.OnSegment = func(s Segment) { last = &s }
	if err := st.seg.Flush(time.Duration(float64(time.Second) / st.fps)); err != nil {
		st.log.Error("last segment", "err", err)
	}
	st.mu.Lock()
	st.manifest.Ended = true
	st.mu.Unlock()
	st.r.mu.Lock()
	if st.r.live[st.name] == st {
		delete(st.r.live, st.name)
	}
	st.r.mu.Unlock()
	st.llMu.Lock()
	st.ended = true
	if l := st.ll.Swap(nil); l != nil {
		l.Close()
	}
	b := st.rtc.Swap(nil)
	st.llMu.Unlock()
	if b != nil {
		b.End()
	}
	var extra []asset.Segment
	if last != nil {
		extra = append(extra, asset.Segment{Index: last.Index, Start: last.Start.Seconds(), Duration: last.Duration.Seconds()})
	}
	if err := st.putManifest(extra...); err != nil {
		st.log.Error("ended manifest", "err", err)
	}
	if last != nil {
		st.onSegment(*last)
	}
	// The channel learns of the stop now, not once the spool drained: a
	// publisher that comes back meanwhile continues from every segment.
	st.r.stopped(st.snapshot(), st.grace)
	st.r.metrics.publishers.Dec()
	ctx, cancel := context.WithTimeout(context.Background(), st.r.cfg.DrainTimeout)
	defer cancel()
	if err := st.spool.Close(ctx); err != nil {
		st.log.Error("publish ended with segments still spooled", "err", err)
	}
	st.mu.Lock()
	n, bytes := len(st.segments), st.bytes
	st.mu.Unlock()
	st.log.Info("publish ended", "segments", n, "bytes", bytes)
}
