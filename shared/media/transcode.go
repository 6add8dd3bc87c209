package media

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// TranscodeOptions shape a segment transcode.
type TranscodeOptions struct {
	// FPS is the source frame rate; the GOP is GOPSeconds of it.
	FPS float64
	// GOPSeconds is the fixed keyframe interval (default 2s), the same in
	// every rung so that renditions switch cleanly.
	GOPSeconds float64
	// Preset is the x264/x265 speed preset (default veryfast).
	Preset string
	// Audio also writes the segment's audio streams, copied, each as
	// <name>.ts (<name>.m4s with an init segment for CMAF): the names of
	// the asset's audio renditions, in the order the segment carries them.
	Audio []string
	// CMAF writes the audio as fragmented MP4, as the rungs of a CMAF
	// asset are (Rung.CMAF).
	CMAF bool
	// Protect, when set, encrypts every output with cbcs; the outputs
	// must then all be fMP4 H.264 or AAC.
	Protect *Protection
	// Filter is applied to the decoded video before the ladder's scaling
	// (the watermark's overlay, for one).
	Filter string
	// Live encodes for latency (see encoderThreads), and makes a segment's
	// first audio cover its video: a publisher's audio may stop before
	// its video or drop for a while, and every live segment must play
	// (the gap is silence).
	Live bool
	// First marks a file's first segment, which a viewer waits on before
	// anything plays (the master goes out once every rung has it): it is
	// encoded for latency too.
	First bool
	// Last marks one of a file's last segments (InTail): encoded with the
	// first segment's threads. A file's segments run single-threaded, two
	// at once; once the next-to-last ends first, the last one alone would
	// leave a core idle for most of a segment (~5% of a 60 s file's time).
	Last bool
}

// laterNiceness is the niceness of a file's segments after the first:
// encoded beside it (each segment's encoders run on one thread, and the
// next segment's transcode starts with the first's), they let it have the
// cores, so the asset plays sooner (the first segment's transcode 5.4 s
// -> 4.9 s for 60 s of 1080p on 2 cores); still ahead of the background stages at 10 (thumbnail,
// aitag). It costs the file nothing: the cores stay busy.
const laterNiceness = 5

func (o TranscodeOptions) niceness() int {
	if o.Live || o.First {
		return 0
	}
	return laterNiceness
}

// encoderThreads is the encoder's thread setting for a segment. It is a
// fixed number, never ffmpeg's default of one per core the process can
// see: that number follows the machine (a segment redone on another one,
// for a retried or duplicated event, would get different bytes), and in
// a container it is the node's cores, not the CPU limit (frame threads by
// the dozen, and their memory, on a pod of two CPUs).
//
// A file's segments are encoded each rendition on one thread and the
// cores go to segments in parallel: frame threads cost ~4% more CPU per
// segment and more memory, which a short-lived process pays in page
// faults each time. Live segments are encoded for latency: each encoder
// spreads one segment over liveThreads frame threads, as are a file's
// first and last segments (TranscodeOptions.First and Last).
func encoderThreads(spread bool) []string {
	if spread {
		return []string{"-threads", strconv.Itoa(liveThreads)}
	}
	return []string{"-threads", "1"}
}

// InTail reports whether a segment starting at start (seconds) is one of
// the last of a file lasting duration: those starting within two target
// segments of its end, as many as the transcodes a node runs at once.
// It goes by the probe's duration, known before the first segment, so a
// segment made again is encoded the same way.
func InTail(start, duration float64) bool {
	return duration > 0 && start >= duration-2*DefaultTarget.Seconds()
}

// liveThreads is the frame threads of a live segment's encoders: about
// what x264 picks by itself on the 2-4 CPUs a function gets.
const liveThreads = 4

// Output is one rung's (or the audio's) encoded segment.
type Output struct {
	Rung     Rung
	Path     string
	InitPath string // fMP4 only
	Audio    bool   // an audio rendition's; Rung has only its name (and CMAF)
	Bytes    int64
	// Codecs is the RFC 6381 codec string for the master playlist.
	Codecs string
	// Time is when an fMP4 segment's first frame is shown, in Timescale
	// units of its track: where a DASH SegmentTimeline puts it.
	Time      int64
	Timescale uint32
	// Keyframes are a video segment's, for I-frame playlists.
	Keyframes []Keyframe
}

// Transcode makes every rung of the ladder from one decode of the segment
// (ffmpeg's split filter), keeping the segment's timestamps so that
// consecutive segments play as one timeline, with a keyframe at the start
// and then every GOP in every rung. An audio-only asset has no rungs:
// then only the audio is written.
func Transcode(ctx context.Context, in, outDir string, rungs []Rung, o TranscodeOptions) ([]Output, error) {
	if len(rungs) == 0 && len(o.Audio) == 0 {
		return nil, fmt.Errorf("transcode %s: empty ladder", in)
	}
	if o.Protect != nil {
		for _, r := range rungs {
			if err := r.Protectable(); err != nil {
				return nil, fmt.Errorf("transcode %s: %w", in, err)
			}
		}
		if len(o.Audio) > 0 && !o.CMAF {
			return nil, fmt.Errorf("transcode %s: cbcs protects fMP4 audio; this audio is MPEG-TS", in)
		}
	}
	if o.GOPSeconds <= 0 {
		o.GOPSeconds = 2
	}
	if o.FPS <= 0 {
		o.FPS = 30
	}
	if o.Preset == "" {
		o.Preset = "veryfast"
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return nil, err
	}
	gop := strconv.Itoa(int(math.Max(1, math.Round(o.FPS*o.GOPSeconds))))

	args := []string{"-copyts", "-i", in}
	if len(rungs) > 0 {
		filter, err := withLeadFill(ctx, in, o.FPS, o.Filter)
		if err != nil {
			return nil, fmt.Errorf("transcode %s: %w", in, err)
		}
		args = append(args, "-filter_complex", LadderGraph(rungs, filter))
	}
	outs := make([]Output, 0, len(rungs)+1)
	for i, r := range rungs {
		out := Output{Rung: r, Path: filepath.Join(outDir, r.Name+r.SegmentExt())}
		args = append(args, "-map", fmt.Sprintf("[o%d]", i))
		args = append(args, EncoderArgs(r, gop, o.Preset)...)
		args = append(args, encoderThreads((o.Live || o.First || o.Last) && r.CRF == 0)...)
		// Keep the input's 90 kHz time base and frame timing: no re-rounding
		// to the frame rate, no duplicated or dropped frames, so seams meet.
		args = append(args, "-enc_time_base", "-1", "-fps_mode", "passthrough")
		if r.Container() == "ts" {
			args = append(append(args, "-muxdelay", "0", "-muxpreload", "0"), tsSegmentArgs...)
			args = append(args, out.Path)
		} else {
			raw := out.Path + ".frag.mp4"
			// Non-negative composition offsets and no edit list: then
			// ffmpeg-based players (which delay video by the most negative
			// offset) and MSE (which does not) put frames at the same time.
			args = append(args, "-movflags", "frag_keyframe+empty_moov+default_base_moof", "-use_editlist", "0", "-f", "mp4", raw)
		}
		outs = append(outs, out)
	}
	fill := -1 // the output whose audio is filled, not copied
	var fillStart, fillEnd float64
	var fillAny bool
	for k, name := range o.Audio {
		a := Output{Rung: Rung{Name: name, CMAF: o.CMAF}, Audio: true}
		if !o.CMAF {
			a.Codecs = "mp4a.40.2" // split encodes AAC-LC
		}
		a.Path = filepath.Join(outDir, name+a.Rung.SegmentExt())
		outs = append(outs, a)
		if k == 0 && o.Live {
			start, end, err := videoSpan(ctx, in)
			if err != nil {
				return nil, fmt.Errorf("transcode %s: %w", in, err)
			}
			end += 1 / o.FPS
			covers, any, err := audioCovers(ctx, in, start, end)
			if err != nil {
				return nil, fmt.Errorf("transcode %s: %w", in, err)
			}
			if !covers {
				fill, fillStart, fillEnd, fillAny = len(outs)-1, start, end, any
				continue
			}
		}
		args = append(args, "-map", "0:a:"+strconv.Itoa(k), "-c:a", "copy")
		args = append(args, audioMux(o.CMAF, a.Path)...)
	}
	if len(rungs) > 0 || fill < 0 || len(o.Audio) > 1 {
		if err := ffmpegNice(ctx, o.niceness(), args...); err != nil {
			return nil, fmt.Errorf("transcode %s: %w", in, err)
		}
	}
	if fill >= 0 {
		if err := fillAudio(ctx, in, audioMux(o.CMAF, outs[fill].Path), fillStart, fillEnd, fillAny); err != nil {
			return nil, fmt.Errorf("transcode %s: %w", in, err)
		}
	}
	// fMP4 fragments are moved to the segment's start on the asset
	// timeline; TS keeps it by itself, so an H.264 ladder spares the probe.
	var start float64
	if slices.ContainsFunc(rungs, func(r Rung) bool { return r.Container() == "fmp4" }) {
		var err error
		if start, _, err = videoSpan(ctx, in); err != nil {
			return nil, fmt.Errorf("transcode %s: %w", in, err)
		}
	}
	for i := range outs {
		out := &outs[i]
		switch {
		case out.Rung.Container() == "ts" && !out.Audio:
			kf, err := tsKeyframes(out.Path)
			if err != nil {
				return nil, fmt.Errorf("transcode %s: %s: %w", in, out.Rung.Name, err)
			}
			out.Keyframes = kf
		case out.Rung.Container() == "fmp4":
			// Audio starts where the source's does, which is not quite
			// where its video does.
			first := start
			if i == fill {
				first = fillStart // filled from the video's start
			} else if out.Audio {
				s, err := fileSpan(ctx, in, "a:"+strconv.Itoa(i-len(rungs)), 0)
				if err != nil {
					return nil, fmt.Errorf("transcode %s: %s: %w", in, out.Rung.Name, err)
				}
				first = s.start
			}
			out.InitPath = filepath.Join(outDir, out.Rung.Name+"-init.mp4")
			f, err := splitFragmented(out.Path+".frag.mp4", out.InitPath, out.Path, first, o.Protect)
			if err != nil {
				return nil, fmt.Errorf("transcode %s: %s: %w", in, out.Rung.Name, err)
			}
			out.Time, out.Timescale = f.start, f.timescale
			if !out.Audio {
				out.Keyframes = f.keyframes
			}
		}
		st, err := os.Stat(out.Path)
		if err != nil {
			return nil, fmt.Errorf("transcode %s: %w", in, err)
		}
		out.Bytes = st.Size()
		if out.Codecs == "" {
			codecs := videoCodecs
			if out.Audio {
				codecs = audioCodecs
			}
			if out.Codecs, err = codecs(*out); err != nil {
				return nil, fmt.Errorf("transcode %s: %s: %w", in, out.Rung.Name, err)
			}
		}
	}
	return outs, nil
}

// LadderGraph is the filter graph that makes every rung from one decode of
// the first input's video: filter (if any) first, then ffmpeg's split and
// one scale per rung, whose outputs are labelled [o0], [o1], ...
func LadderGraph(rungs []Rung, filter string) string {
	var graph strings.Builder
	src := "[0:v]"
	if filter != "" {
		fmt.Fprintf(&graph, "[0:v]%s[pre];", filter)
		src = "[pre]"
	}
	fmt.Fprintf(&graph, "%ssplit=%d", src, len(rungs))
	for i := range rungs {
		fmt.Fprintf(&graph, "[s%d]", i)
	}
	for i, r := range rungs {
		fmt.Fprintf(&graph, ";[s%d]scale=%d:%d:flags=bicubic,setsar=1,format=yuv420p[o%d]", i, r.Width, r.Height, i)
	}
	return graph.String()
}

// audioMux are the output arguments of an AAC rendition written to path:
// MPEG-TS, or for CMAF fragmented MP4 at path.frag.mp4, which Transcode
// then splits into an init and a media segment. CMAF audio is one
// fragment for the whole segment: the muxer writes it at the end (no
// frag_keyframe, which would cut one per frame). The moov waits for the
// first packet (delay_moov): the AudioSpecificConfig comes from it (ADTS
// in the source TS, made ASC by aac_adtstoasc, which passes an encoder's
// raw AAC through), and an esds without one is what MSE refuses to append.
func audioMux(cmaf bool, path string) []string {
	if !cmaf {
		return append(append([]string(nil), audioTSArgs...), path)
	}
	return []string{"-bsf:a", "aac_adtstoasc", "-movflags", "empty_moov+delay_moov+default_base_moof",
		"-use_editlist", "0", "-f", "mp4", path + ".frag.mp4"}
}

// audioTSArgs mux an AAC rendition into MPEG-TS with little overhead and
// its timestamps kept. With -muxdelay 0 (what keeps timestamps for
// video) ffmpeg's muxer puts every 21 ms AAC frame in a PES of its own
// and PAT/PMT ten times a second: 62% over the payload, which goes into
// every variant's BANDWIDTH. A 0.35 s mux delay lets a PES carry up to
// 0.175 s of frames (2930 bytes at most); the muxer then adds twice that
// delay to every timestamp, which -output_ts_offset takes back, so the
// timeline is the source segment's (which starts 1 s or more in: live
// streams at 1 s, TS and Matroska segments at 1.4 s). PAT/PMT once per
// segment: 7% over the payload at 128 kb/s.
var audioTSArgs = append([]string{"-muxdelay", "0.35", "-muxpreload", "0", "-output_ts_offset", "-0.7",
	"-pat_period", "10", "-sdt_period", "10"}, tsSegmentArgs...)

// tsSegmentArgs end the arguments of every MPEG-TS rendition segment.
// Each segment is its own ffmpeg, so its continuity counters start at 0
// whatever the previous segment's ended at; the first packet of each
// stream is marked as a discontinuity (initial_discontinuity), which
// makes that jump legal: without it a player reading the playlist
// through sees a continuity error, and ffmpeg reports a corrupt packet,
// on every PID at every segment start.
var tsSegmentArgs = []string{"-mpegts_flags", "+initial_discontinuity", "-f", "mpegts"}

// EncoderArgs are the per-rung encoder settings: the rung's bitrate as
// the average of each segment, fixed GOP without scene-cut keyframes so
// every rung has its keyframes at the same times.
//
// Every codec's settings give the same bytes on every run, even on a busy
// machine: a retried or duplicated event must rewrite the same segment.
// Encoders are only that repeatable in some modes (checked by making one
// segment several times at once):
//   - x264 and x265 with their own threads in ABR, but not once VBV caps
//     the rate (row-level VBV reads the progress of frames other threads
//     are encoding). The cap matters little here: each segment is its own
//     4 s ABR encode, so it lands within a few percent of the rung's
//     bitrate, and BANDWIDTH is the measured peak segment bitrate. A
//     content-aware rung (CRF capped at Bitrate) needs its cap, so it is
//     encoded on one thread, always (three runs at once on four threads
//     gave three different segments).
//   - libvpx VP9 with VBV and tile threads, but not with row-mt.
//   - SVT-AV1 in VBR only on one thread (lp=1).
func EncoderArgs(r Rung, gop, preset string) []string {
	br := strconv.Itoa(r.Bitrate)
	maxrate := strconv.Itoa(r.Bitrate * 11 / 10)
	bufsize := strconv.Itoa(r.Bitrate * 2)
	switch r.Codec {
	case H265:
		return []string{"-c:v", "libx265", "-preset", preset, "-b:v", br,
			"-tag:v", "hvc1", "-x265-params", "keyint=" + gop + ":min-keyint=" + gop + ":scenecut=0:open-gop=0:log-level=error"}
	case VP9:
		return []string{"-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-row-mt", "0",
			"-b:v", br, "-maxrate", maxrate, "-bufsize", bufsize, "-g", gop, "-keyint_min", gop}
	case AV1:
		return []string{"-c:v", "libsvtav1", "-preset", "10", "-b:v", br, "-g", gop,
			"-svtav1-params", "keyint=" + gop + ":scd=0:lp=1"}
	default:
		rate := []string{"-b:v", br}
		if r.CRF > 0 {
			rate = []string{"-crf", strconv.Itoa(r.CRF), "-maxrate", br, "-bufsize", bufsize}
		}
		args := append([]string{"-c:v", "libx264", "-preset", preset}, rate...)
		args = append(args, "-g", gop, "-keyint_min", gop, "-sc_threshold", "0", "-x264-params", "open-gop=0")
		if r.Profile != "" {
			args = append(args, "-profile:v", r.Profile)
		}
		if r.Level != "" {
			args = append(args, "-level:v", r.Level)
		}
		return args
	}
}
