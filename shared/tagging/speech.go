package tagging

import (
	"bufio"
	"context"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// Speech turns speech into words with pocketsphinx and the US English
// model Debian ships (pocketsphinx-en-us), so it runs with no download.
type Speech struct {
	// Model is the acoustic model folder; empty uses pocketsphinx's default.
	Model string
}

// Name implements Tagger.
func (Speech) Name() string { return "speech" }

// Tag implements Tagger: a "word" tag per recognised word and a "speech"
// tag per utterance.
func (s Speech) Tag(ctx context.Context, in Input) ([]Tag, error) {
	if !in.HasAudio {
		return nil, nil
	}
	wav := filepath.Join(in.WorkDir, "speech.wav")
	if _, err := ffmpegLog(ctx, "-i", in.Path, "-map", "0:a:0", "-af", "asetpts=PTS-STARTPTS",
		"-ar", "16000", "-ac", "1", "-c:a", "pcm_s16le", wav); err != nil {
		return nil, errorf("speech", "audio: %v", err)
	}
	args := []string{"-infile", wav, "-time", "yes", "-logfn", "/dev/null"}
	if s.Model != "" {
		args = append(args, "-hmm", s.Model)
	}
	out, err := exec.CommandContext(ctx, "pocketsphinx_continuous", args...).Output()
	if err != nil {
		return nil, errorf("speech", "pocketsphinx: %v", err)
	}
	var tags []Tag
	var utt *Tag
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		// Word lines are "word start end confidence"; the line before a
		// run of them is the utterance's text.
		if len(f) == 4 {
			start, e1 := strconv.ParseFloat(f[1], 64)
			end, e2 := strconv.ParseFloat(f[2], 64)
			conf, e3 := strconv.ParseFloat(f[3], 64)
			if e1 == nil && e2 == nil && e3 == nil {
				word := f[0]
				if i := strings.IndexByte(word, '('); i > 0 {
					word = word[:i] // alternate pronunciations: "to(3)"
				}
				if strings.HasPrefix(word, "<") || strings.HasPrefix(word, "[") {
					continue
				}
				tags = append(tags, Tag{Kind: "word", Label: word, Start: start, End: end, Confidence: round3(conf)})
				if utt != nil {
					if utt.Start < 0 {
						utt.Start = start
					}
					utt.End = end
				}
				continue
			}
		}
		if utt != nil && utt.Start >= 0 {
			tags = append(tags, *utt)
		}
		utt = &Tag{Kind: "speech", Label: strings.Join(f, " "), Start: -1, Confidence: 1}
	}
	if utt != nil && utt.Start >= 0 && utt.Label != "" {
		tags = append(tags, *utt)
	}
	return tags, nil
}
