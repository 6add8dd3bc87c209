package tagging

import (
	"bytes"
	"context"
	"errors"
	"os/exec"
	"regexp"
	"strconv"
)

// ffmpegLog runs ffmpeg over the input with a filter and returns its
// info-level log, where the detectors print what they find.
func ffmpegLog(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "ffmpeg", append([]string{"-hide_banner", "-nostdin", "-y", "-v", "info"}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		tail := stderr.String()
		if len(tail) > 400 {
			tail = tail[len(tail)-400:]
		}
		return "", errors.Join(err, errors.New(tail))
	}
	return stderr.String(), nil
}

var (
	reBlack   = regexp.MustCompile(`black_start:([0-9.]+) black_end:([0-9.]+)`)
	reFreezeS = regexp.MustCompile(`freeze_start: ([0-9.]+)`)
	reFreezeE = regexp.MustCompile(`freeze_end: ([0-9.]+)`)
	reScene   = regexp.MustCompile(`lavfi\.scd\.score: ([0-9.]+), lavfi\.scd\.time: ([0-9.]+)`)
	reSilS    = regexp.MustCompile(`silence_start: (-?[0-9.]+)`)
	reSilE    = regexp.MustCompile(`silence_end: ([0-9.]+)`)
	reLoud    = regexp.MustCompile(`(?s)Integrated loudness:\s+I:\s+(-?[0-9.]+) LUFS`)
)

func atof(s string) float64 { f, _ := strconv.ParseFloat(s, 64); return f }

// Video finds scene cuts (scdet), black (blackdetect) and frozen
// (freezedetect) stretches in one decode.
type Video struct{}

// Name implements Tagger.
func (Video) Name() string { return "video" }

// Tag implements Tagger.
func (Video) Tag(ctx context.Context, in Input) ([]Tag, error) {
	if in.AudioOnly {
		return nil, nil
	}
	log, err := ffmpegLog(ctx, "-i", in.Path, "-map", "0:v:0", "-vf",
		"setpts=PTS-STARTPTS,blackdetect=d=0.5:pix_th=0.10,freezedetect=n=-60dB:d=1,scdet=threshold=10",
		"-f", "null", "-")
	if err != nil {
		return nil, errorf("video", "%v", err)
	}
	var tags []Tag
	for _, m := range reBlack.FindAllStringSubmatch(log, -1) {
		tags = append(tags, Tag{Kind: "black", Label: "black", Start: atof(m[1]), End: atof(m[2]), Confidence: 1})
	}
	starts, ends := reFreezeS.FindAllStringSubmatch(log, -1), reFreezeE.FindAllStringSubmatch(log, -1)
	for i, m := range starts {
		end := in.Duration
		if i < len(ends) {
			end = atof(ends[i][1])
		}
		tags = append(tags, Tag{Kind: "freeze", Label: "frozen picture", Start: atof(m[1]), End: end, Confidence: 1})
	}
	for _, m := range reScene.FindAllStringSubmatch(log, -1) {
		t := atof(m[2])
		tags = append(tags, Tag{Kind: "scene", Label: "scene cut", Start: t, End: t, Confidence: min(1, atof(m[1])/100)})
	}
	return tags, nil
}

// Audio finds silence (silencedetect) and measures loudness (ebur128).
type Audio struct{}

// Name implements Tagger.
func (Audio) Name() string { return "audio" }

// Tag implements Tagger.
func (Audio) Tag(ctx context.Context, in Input) ([]Tag, error) {
	if !in.HasAudio {
		return nil, nil
	}
	log, err := ffmpegLog(ctx, "-i", in.Path, "-map", "0:a:0", "-af",
		"asetpts=PTS-STARTPTS,silencedetect=n=-50dB:d=0.5,ebur128", "-f", "null", "-")
	if err != nil {
		return nil, errorf("audio", "%v", err)
	}
	var tags []Tag
	starts, ends := reSilS.FindAllStringSubmatch(log, -1), reSilE.FindAllStringSubmatch(log, -1)
	for i, m := range starts {
		end := in.Duration
		if i < len(ends) {
			end = atof(ends[i][1])
		}
		tags = append(tags, Tag{Kind: "silence", Label: "silence", Start: max(0, atof(m[1])), End: end, Confidence: 1})
	}
	if m := reLoud.FindStringSubmatch(log); m != nil {
		tags = append(tags, Tag{Kind: "loudness", Label: m[1] + " LUFS", Start: 0, End: in.Duration, Confidence: 1})
	}
	return tags, nil
}
