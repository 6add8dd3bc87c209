package relay

import (
	"fmt"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/bluenviron/gohlslib/v2"
	"github.com/bluenviron/gohlslib/v2/pkg/codecs"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
)

// lowLatencyPart is the LL-HLS part duration aimed at: about a third of a
// second, as Apple's LL-HLS examples use; parts end on a frame, so at
// 30 fps one holds 10 frames.
const lowLatencyPart = 333 * time.Millisecond

// lowLatencyIdle is how long a stream's LL-HLS rendition is kept without
// a request (MediaMTX's hlsMuxerCloseAfter default): a player reloads
// its playlist every part, so a minute without one is nobody watching.
const lowLatencyIdle = time.Minute

// lowLatency is one publish's source rendition as Low-Latency HLS, made
// while someone watches it (stream.lowLatency):
// fMP4 parts and segments of the frames as the publisher sent them (no
// re-encode), kept in memory for the last few segments and served with
// blocking playlist reloads (gohlslib's muxer, as MediaMTX serves it).
// It runs beside the MPEG-TS segments the functions transcode: a viewer
// of it is about a part behind the publisher, while the transcoded rungs
// are segments behind.
type lowLatency struct {
	mux          *gohlslib.Muxer
	video, audio *gohlslib.Track
	// The wall clock of a frame (PROGRAM-DATE-TIME) is the segmenter's:
	// the stream's first frame arrival plus media time since.
	clock func(pts time.Duration) (time.Time, bool)
}

// newLowLatency starts the muxer; segment is the segment duration aimed at
// (the relay's, so both renditions cut at the same keyframes).
func newLowLatency(audio *mpeg4audio.AudioSpecificConfig, segment time.Duration, clock func(time.Duration) (time.Time, bool)) (*lowLatency, error) {
	l := &lowLatency{video: &gohlslib.Track{Codec: &codecs.H264{}, ClockRate: 90000}, clock: clock}
	tracks := []*gohlslib.Track{l.video}
	if audio != nil {
		l.audio = &gohlslib.Track{Codec: &codecs.MPEG4Audio{Config: *audio}, ClockRate: audio.SampleRate, Name: "source", IsDefault: true}
		tracks = append(tracks, l.audio)
	}
	l.mux = &gohlslib.Muxer{Variant: gohlslib.MuxerVariantLowLatency, Tracks: tracks,
		SegmentMinDuration: segment, PartMinDuration: lowLatencyPart,
		// A frame the muxer cannot place (a timestamp going back) is
		// dropped from this rendition only; the segments are unaffected.
		OnEncodeError: func(error) {}}
	if err := l.mux.Start(); err != nil {
		return nil, fmt.Errorf("low-latency rendition: %w", err)
	}
	return l, nil
}

// WriteH264 takes an access unit that carries its parameter sets when it
// is an IDR (the segmenter's withParams).
func (l *lowLatency) WriteH264(pts time.Duration, au [][]byte) error {
	ntp, ok := l.clock(pts)
	if !ok {
		return nil // before the first IDR: the muxer waits for one too
	}
	return l.mux.WriteH264(l.video, ntp, int64(pts+ptsOffset)*90000/int64(time.Second), au)
}

func (l *lowLatency) WriteAAC(pts time.Duration, aus [][]byte) error {
	ntp, ok := l.clock(pts)
	if l.audio == nil || !ok {
		return nil
	}
	return l.mux.WriteMPEG4Audio(l.audio, ntp, int64(pts+ptsOffset)*int64(l.audio.ClockRate)/int64(time.Second), aus)
}

// Close ends the rendition: blocked reloads return, later requests 404.
func (l *lowLatency) Close() { l.mux.Close() }

// LowLatency serves every publishing stream's LL-HLS source rendition
// under /<stream>/: index.m3u8 (the multivariant playlist: the video
// playlist, with the audio as its rendition group), the media playlists
// (video1_stream.m3u8, audio2_stream.m3u8), the init sections, parts and
// segments. Mount it with the prefix stripped (the gateway's /live/).
// A stream that is not publishing is 404.
func (r *Relay) LowLatency() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		// Players on the console's or any page fetch it cross-origin, like
		// the bucket's playlists.
		w.Header().Set("Access-Control-Allow-Origin", "*")
		if req.Method != http.MethodGet && req.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		name, file, ok := strings.Cut(strings.TrimPrefix(path.Clean(req.URL.Path), "/"), "/")
		if !ok || file == "" || strings.Contains(file, "/") {
			http.NotFound(w, req)
			return
		}
		r.mu.Lock()
		st := r.live[name]
		r.mu.Unlock()
		if st != nil && st.private {
			http.Error(w, "private stream: no LL-HLS rendition (watch it as a private asset, or over WHEP with a token)", http.StatusForbidden)
			return
		}
		var l *lowLatency
		if st != nil {
			var err error
			if l, err = st.lowLatency(); err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
		}
		if l == nil {
			http.Error(w, fmt.Sprintf("stream %q is not live", name), http.StatusNotFound)
			return
		}
		rec := &written{ResponseWriter: w}
		l.mux.Handle(rec, req)
		if !rec.wrote {
			http.NotFound(w, req) // a file the muxer does not have (any more)
		}
	})
}

// written notes whether a handler wrote anything: gohlslib's muxer
// answers nothing for a name it does not know.
type written struct {
	http.ResponseWriter
	wrote bool
}

// WriteHeader turns the muxer's 500, which it answers a request blocked
// on a part when the stream ends, into the 404 a stream that is not live
// gets.
func (w *written) WriteHeader(code int) {
	w.wrote = true
	if code == http.StatusInternalServerError {
		code = http.StatusNotFound
	}
	w.ResponseWriter.WriteHeader(code)
}
func (w *written) Write(b []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(b)
}

// Flush lets a blocked reload's answer go out at once.
func (w *written) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}
