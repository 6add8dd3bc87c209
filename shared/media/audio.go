package media

import (
	"fmt"
	"strconv"
	"strings"
)

// AudioRendition is one AAC rendition of an asset's sound: a track of the
// upload, in stereo, or in 5.1 beside the stereo one when the track has
// surround channels. The source segments carry them in this order.
type AudioRendition struct {
	// Name is also the playlist's base name: "audio" for the first track
	// in stereo (what an asset with one track has always had), "audio2"
	// for the second, "audio-51" for the first in 5.1.
	Name string `json:"name"`
	// Track is the upload's audio stream it is made from (0-based).
	Track    int    `json:"track"`
	Channels int    `json:"channels"`
	Bitrate  int    `json:"bitrate"`
	Language string `json:"language,omitempty"`
	// Label is what the player's audio menu shows (EXT-X-MEDIA NAME).
	Label string `json:"label"`
}

// stereoBitrate and surroundBitrate are the AAC-LC bitrates of the two
// layouts (Apple's authoring guidance: 160k stereo; 384k for 5.1).
const (
	stereoBitrate   = 128_000
	surroundBitrate = 384_000
)

// DefaultAudio is the one stereo rendition of an asset whose manifest
// lists none (a live stream's, or one made before several tracks were).
var DefaultAudio = []AudioRendition{{Name: "audio", Channels: 2, Bitrate: stereoBitrate, Label: "Main"}}

// AudioLadder is the audio renditions of a file: every track in stereo,
// and each track with surround (six channels or more) also in 5.1, so a
// phone gets stereo and a home cinema its 5.1.
func AudioLadder(info *Info) []AudioRendition {
	var out []AudioRendition
	for i, a := range info.Audios {
		name := "audio"
		if i > 0 {
			name += strconv.Itoa(i + 1)
		}
		tag, label := Language(a.Language)
		switch {
		case a.Title != "":
			label = a.Title
		case a.Language == "" && len(info.Audios) > 1:
			label = fmt.Sprintf("Track %d", i+1)
		case a.Language == "":
			label = "Main"
		}
		out = append(out, AudioRendition{Name: name, Track: i, Channels: 2, Bitrate: stereoBitrate, Language: tag, Label: label})
		if a.Channels >= 6 {
			out = append(out, AudioRendition{Name: name + "-51", Track: i, Channels: 6, Bitrate: surroundBitrate,
				Language: tag, Label: label + " (5.1)"})
		}
	}
	return out
}

// copyHeadroom is how far above a rendition's bitrate a track may be and
// still be copied into it: phones record AAC-LC at 96-192 kb/s, and
// encoding 192k again to 128k costs a generation of coding and a core
// for a second or two per minute of sound beside the first segment's
// transcode, to save 64 kb/s.
const copyHeadroom = 1.5

// Copies reports whether track already is what rendition r would be
// encoded to (AAC-LC at 48 kHz, the same channels, a bitrate r may carry),
// so split copies it instead of encoding it again.
func (r AudioRendition) Copies(track AudioStream) bool {
	return track.Codec == "aac" && track.Profile == "LC" && track.SampleRate == 48000 &&
		track.Channels == r.Channels && track.Bitrate > 0 && float64(track.Bitrate) <= copyHeadroom*float64(r.Bitrate)
}

// languages maps the ISO 639 codes uploads are tagged with most (ffmpeg
// writes 639-2) to the RFC 5646 tag HLS's LANGUAGE wants (the two-letter
// one where there is one) and the name the audio menu shows.
var languages = map[string][2]string{
	"eng": {"en", "English"}, "en": {"en", "English"},
	"fra": {"fr", "Français"}, "fre": {"fr", "Français"}, "fr": {"fr", "Français"},
	"deu": {"de", "Deutsch"}, "ger": {"de", "Deutsch"}, "de": {"de", "Deutsch"},
	"spa": {"es", "Español"}, "es": {"es", "Español"},
	"ita": {"it", "Italiano"}, "it": {"it", "Italiano"},
	"por": {"pt", "Português"}, "pt": {"pt", "Português"},
	"nld": {"nl", "Nederlands"}, "dut": {"nl", "Nederlands"}, "nl": {"nl", "Nederlands"},
	"jpn": {"ja", "日本語"}, "ja": {"ja", "日本語"},
	"zho": {"zh", "中文"}, "chi": {"zh", "中文"}, "zh": {"zh", "中文"},
}

// Language is the RFC 5646 tag and the display name of an ISO 639 code;
// a code it does not know is its own tag and name.
func Language(code string) (tag, name string) {
	if l, ok := languages[strings.ToLower(code)]; ok {
		return l[0], l[1]
	}
	return code, code
}
