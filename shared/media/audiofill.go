package media

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// audioGapTolerance is how far a live segment's audio may fall short of
// its video (at either end, or inside) before it is filled: under two
// AAC frames is the muxers' ordinary jitter.
const audioGapTolerance = 0.05

// audioCovers says whether the first audio stream of a segment covers the
// video span [start, end) with no gap longer than audioGapTolerance, and
// whether it has any audio packet at all. A publisher that stops its
// audio before its video (a common way to stop an encoder), or drops
// audio for a while, leaves segments whose audio does not.
func audioCovers(ctx context.Context, in string, start, end float64) (covers, any bool, err error) {
	out, err := run(ctx, "ffprobe", "-v", "error", "-select_streams", "a:0",
		"-show_entries", "packet=pts_time,duration_time", "-of", "csv=p=0", in)
	if err != nil {
		return false, false, fmt.Errorf("audio of %s: %w", in, err)
	}
	type pkt struct{ pts, dur float64 }
	var ps []pkt
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Split(strings.TrimSpace(line), ",")
		if len(f) < 2 {
			continue
		}
		pts, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			continue
		}
		d, _ := strconv.ParseFloat(f[1], 64)
		ps = append(ps, pkt{pts, d})
	}
	if len(ps) == 0 {
		return false, false, nil
	}
	sort.Slice(ps, func(i, j int) bool { return ps[i].pts < ps[j].pts })
	if ps[0].pts > start+audioGapTolerance || ps[len(ps)-1].pts+ps[len(ps)-1].dur < end-audioGapTolerance {
		return false, true, nil
	}
	for i := 1; i < len(ps); i++ {
		if ps[i].pts-(ps[i-1].pts+ps[i-1].dur) > audioGapTolerance {
			return false, true, nil
		}
	}
	return true, true, nil
}

// fillAudio writes a segment's audio rendition, with the output arguments
// mux (audioMux), made to cover its video span [start, end) exactly
// (fillAudioArgs).
func fillAudio(ctx context.Context, in string, mux []string, start, end float64, any bool) error {
	args := append([]string{"-copyts", "-i", in}, fillAudioArgs(start, end, any, 1, stereoBitrate)...)
	args = append(args, mux...)
	if err := ffmpeg(ctx, args...); err != nil {
		return fmt.Errorf("fill the audio of %s: %w", in, err)
	}
	return nil
}

// fillAudioArgs are the ffmpeg arguments (an extra input where needed,
// the filter and the encoder) that make a segment's audio cover its
// video span [start, end) exactly: what there is of it, resampled with
// silence in its gaps (aresample's async), cut at the video's start,
// padded with silence to its end; or, with no audio at all, silence
// alone. It is encoded again (AAC stereo at bitrate), since copying is
// what cannot fill a gap. next is the index of the next input.
func fillAudioArgs(start, end float64, any bool, next, bitrate int) []string {
	s, d := strconv.FormatFloat(start, 'f', 6, 64), strconv.FormatFloat(end-start, 'f', 6, 64)
	src, args := "[0:a:0]aresample=48000:async=1,atrim=start="+s+",asetpts=PTS-STARTPTS,apad", []string(nil)
	if !any {
		args = []string{"-f", "lavfi", "-i", "anullsrc=r=48000:cl=stereo"}
		src = "[" + strconv.Itoa(next) + ":a]anull"
	}
	return append(args, "-filter_complex", src+",atrim=duration="+d+",asetpts=PTS+"+s+"/TB[fill]",
		"-map", "[fill]", "-c:a", "aac", "-b:a", strconv.Itoa(bitrate), "-ac", "2")
}
