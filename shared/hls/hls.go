// Package hls renders HLS playlists with grafov/m3u8 from what a rendition
// has in the bucket, so that a playlist is a pure function of the listing.
package hls

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"math"
	"regexp"
	"sort"
	"strconv"
	"time"

	"github.com/grafov/m3u8"

	"github.com/segflow/segflow/shared/media"
)

// Segment is one media segment of a rendition.
type Segment struct {
	Index     int
	URI       string  // relative to the playlist
	Duration  float64 // seconds
	Bandwidth int64   // bits per second of this segment
	// ProgramDateTime is the wall-clock time of the segment's start (live).
	ProgramDateTime time.Time
	// Time is when an fMP4 segment's first frame is shown, in Timescale
	// units (a DASH SegmentTimeline's t); 0/0 for MPEG-TS.
	Time      int64
	Timescale uint32
	// Keyframes of a video segment, which its I-frame playlist lists.
	Keyframes []media.Keyframe
}

// Rendition is a video or audio rendition with the segments it has.
type Rendition struct {
	Name       string // also the playlist's base name: <Name>.m3u8
	Audio      bool
	Subtitles  bool   // WebVTT captions
	Init       string // fMP4 init segment URI, "" for MPEG-TS
	Codecs     string
	Resolution string
	FrameRate  float64
	// Language (RFC 5646), Label (the menu's NAME) and Channels describe
	// an audio rendition.
	Language, Label string
	Channels        int
	Segments        []Segment
}

// Ready returns the segments a playlist may list: the run from Start
// without holes, in order.
func (r Rendition) Ready(start int) []Segment {
	segs := append([]Segment(nil), r.Segments...)
	sort.Slice(segs, func(i, j int) bool { return segs[i].Index < segs[j].Index })
	var out []Segment
	next := start
	for _, s := range segs {
		if s.Index < next {
			continue
		}
		if s.Index != next {
			break
		}
		out = append(out, s)
		next++
	}
	return out
}

// Peak and Average are the rendition's bandwidths over the given segments.
func Peak(segs []Segment) int64 {
	var p int64
	for _, s := range segs {
		p = max(p, s.Bandwidth)
	}
	return p
}

// Average is the duration-weighted mean bandwidth.
func Average(segs []Segment) int64 {
	var bits, secs float64
	for _, s := range segs {
		bits += float64(s.Bandwidth) * s.Duration
		secs += s.Duration
	}
	if secs == 0 {
		return 0
	}
	return int64(bits / secs)
}

// MediaOptions shape a media playlist.
type MediaOptions struct {
	// Total is how many segments the rendition will have; once all are
	// there the playlist is VOD with ENDLIST. 0 means not known yet.
	Total int
	// Window > 0 makes a live sliding window of that many segments.
	Window int
	// Ended adds ENDLIST to a live playlist (the publisher stopped): a
	// sliding window, or, without one, the whole publish as an EVENT
	// playlist (its archive).
	Ended bool
	// TargetDuration overrides the computed one (live playlists must not
	// change it while they run).
	TargetDuration float64
	// Encryption says how every segment (captions aside) is encrypted
	// with the asset's key: "aes-128" names KeyURI as the key of whole
	// segments (EncryptSegment made them); "cbcs" is SAMPLE-AES of fMP4
	// samples, named for EME Clear Key players (KEYFORMAT
	// org.w3.clearkey, KeyID in the URI), which get the key from the
	// license URL (LicenseURI) they are configured with.
	Encryption string
	KeyID      []byte
}

// key is the EXT-X-KEY of every encrypted segment; nil for clear ones.
func (o MediaOptions) key() (*m3u8.Key, error) {
	switch o.Encryption {
	case "aes-128":
		return &m3u8.Key{Method: "AES-128", URI: KeyURI}, nil
	case "cbcs":
		// No "identity" key beside it: hls.js would take that one and
		// never ask the CDM, and no player fetches a cbcs key from a
		// plain URI.
		return &m3u8.Key{Method: "SAMPLE-AES", URI: "data:text/plain;base64," + base64.StdEncoding.EncodeToString(o.KeyID),
			Keyformat: "org.w3.clearkey", Keyformatversions: "1"}, nil
	case "":
		return nil, nil
	}
	return nil, fmt.Errorf("encryption %q", o.Encryption)
}

// Media renders a rendition's media playlist and says how many segments it
// lists and whether it is complete (ENDLIST).
func Media(r Rendition, o MediaOptions) ([]byte, int, bool, error) {
	segs := r.Ready(0)
	if o.Window > 0 {
		segs = r.Window(o.Window)
	}
	p, err := m3u8.NewMediaPlaylist(0, uint(len(segs)+1))
	if err != nil {
		return nil, 0, false, fmt.Errorf("playlist %s: %w", r.Name, err)
	}
	if len(segs) > 0 {
		p.SeqNo = uint64(segs[0].Index)
	}
	target := o.TargetDuration
	for _, s := range segs {
		if err := p.AppendSegment(&m3u8.MediaSegment{URI: s.URI, Duration: s.Duration, ProgramDateTime: s.ProgramDateTime}); err != nil {
			return nil, 0, false, fmt.Errorf("playlist %s: %w", r.Name, err)
		}
		if o.TargetDuration == 0 {
			target = math.Max(target, s.Duration)
		}
	}
	if target == 0 {
		target = 4
	}
	p.TargetDuration = math.Ceil(target - 1e-3)
	p.SetVersion(3)
	if r.Init != "" {
		p.SetDefaultMap(r.Init, 0, 0)
		p.SetVersion(7)
	}
	if !r.Subtitles {
		if p.Key, err = o.key(); err != nil {
			return nil, 0, false, fmt.Errorf("playlist %s: %w", r.Name, err)
		}
	}
	complete := false
	switch {
	case o.Ended:
		// A live stream that stopped: what it lists is all there is.
		complete = true
		if o.Window <= 0 {
			p.MediaType = m3u8.EVENT
		}
	case o.Window > 0:
	case o.Total > 0 && len(segs) == o.Total:
		complete = true
		p.MediaType = m3u8.VOD
	default:
		p.MediaType = m3u8.EVENT
	}
	if complete {
		p.Close()
	}
	return p.Encode().Bytes(), len(segs), complete, nil
}

// Window is what a live sliding window of n segments lists: the last n
// of the run of ready segments from the first one there (a live
// rendition's numbering starts where its channel left off); all of them
// when n <= 0.
func (r Rendition) Window(n int) []Segment {
	all := r.Ready(firstIndex(r.Segments))
	if n > 0 && len(all) > n {
		return all[len(all)-n:]
	}
	return all
}

func firstIndex(segs []Segment) int {
	if len(segs) == 0 {
		return 0
	}
	m := segs[0].Index
	for _, s := range segs {
		m = min(m, s.Index)
	}
	return m
}

// AudioGroup and SubtitlesGroup are the GROUP-IDs of the audio and
// caption renditions.
const (
	AudioGroup     = "aud"
	SubtitlesGroup = "subs"
)

// Master renders the master playlist: one variant per video rendition,
// with the audio renditions (when there are some; the first is the
// default) as one EXT-X-MEDIA group, whose largest bandwidth each variant
// includes, and the captions (when there are some) as a SUBTITLES group.
// Without video (an audio-only asset) the one variant is the first audio
// playlist.
func Master(video []Rendition, audios []Rendition, subs []Rendition) []byte {
	mp := m3u8.NewMasterPlaylist()
	mp.SetIndependentSegments(true)
	var alts []*m3u8.Alternative
	var audioPeak, audioAvg int64
	audioCodec := ""
	for i, a := range audios {
		ready := a.Ready(0)
		audioPeak, audioAvg, audioCodec = max(audioPeak, Peak(ready)), max(audioAvg, Average(ready)), a.Codecs
		lang, label := a.Language, a.Label
		if lang == "" {
			lang = "und"
		}
		if label == "" {
			label = "Main"
		}
		alts = append(alts, &m3u8.Alternative{GroupId: AudioGroup, URI: a.Name + ".m3u8", Type: "AUDIO",
			Name: label, Language: lang, Default: i == 0, Autoselect: "YES"})
	}
	var audio *Rendition
	if len(audios) > 0 {
		audio = &audios[0]
	}
	captioned := false
	for _, s := range subs {
		if len(s.Ready(0)) == 0 {
			continue
		}
		lang, label := s.Language, s.Label
		if lang == "" {
			lang = "und"
		}
		if label == "" {
			label = lang
		}
		alts = append(alts, &m3u8.Alternative{GroupId: SubtitlesGroup, URI: s.Name + ".m3u8", Type: "SUBTITLES",
			Name: label, Language: lang, Autoselect: "YES"})
		captioned = true
	}
	version := uint8(3)
	if len(video) == 0 && audio != nil {
		// Sound alone: its one variant is the audio playlist itself.
		if len(audio.Ready(0)) > 0 {
			params := m3u8.VariantParams{Bandwidth: uint32(audioPeak), AverageBandwidth: uint32(audioAvg), Codecs: audioCodec}
			if captioned {
				params.Subtitles, params.Alternatives = SubtitlesGroup, alts[len(audios):]
			}
			mp.Append(audio.Name+".m3u8", nil, params)
		}
		mp.SetVersion(version)
		return tidy(mp.Encode().Bytes(), audios)
	}
	for _, v := range video {
		ready := v.Ready(0)
		if len(ready) == 0 {
			continue
		}
		codecs := v.Codecs
		if audioCodec != "" {
			codecs += "," + audioCodec
		}
		params := m3u8.VariantParams{
			Bandwidth:        uint32(Peak(ready) + audioPeak),
			AverageBandwidth: uint32(Average(ready) + audioAvg),
			Codecs:           codecs,
			Resolution:       v.Resolution,
			FrameRate:        math.Round(v.FrameRate*1000) / 1000,
			Alternatives:     alts,
		}
		if audio != nil {
			params.Audio = AudioGroup
		}
		if captioned {
			params.Subtitles = SubtitlesGroup
		}
		if v.Init != "" {
			version = 7
		}
		mp.Append(v.Name+".m3u8", nil, params)
	}
	// I-frame variants after the others: players that scrub or play fast
	// fetch these, the rest skip them.
	for _, v := range video {
		ready := v.Ready(0)
		frames := iframes(ready)
		if len(frames) == 0 {
			continue
		}
		var peak, bits, secs float64
		for _, f := range frames {
			peak = math.Max(peak, float64(f.size*8)/f.duration)
			bits, secs = bits+float64(f.size*8), secs+f.duration
		}
		mp.Append(IFramesName(v.Name)+".m3u8", nil, m3u8.VariantParams{Iframe: true, Bandwidth: uint32(math.Ceil(peak)),
			AverageBandwidth: uint32(bits / secs), Codecs: v.Codecs, Resolution: v.Resolution})
	}
	mp.SetVersion(version)
	return tidy(mp.Encode().Bytes(), audios)
}

// IFramesName is the playlist name of a video rendition's I-frames.
func IFramesName(rendition string) string { return rendition + "-iframes" }

// iframe is one I-frame playlist entry.
type iframe struct {
	segment        Segment
	offset, size   int64
	duration       float64
	firstInSegment bool
}

// iframes lists the keyframes of ready segments, each lasting until the
// next one (or the segment's end); none unless every segment has its
// keyframes (written before transcode knew them, or captions).
func iframes(ready []Segment) []iframe {
	var out []iframe
	for _, s := range ready {
		if len(s.Keyframes) == 0 {
			return nil
		}
		for i, k := range s.Keyframes {
			end := s.Duration
			if i+1 < len(s.Keyframes) {
				end = s.Keyframes[i+1].Time
			}
			if end-k.Time <= 0 {
				continue
			}
			out = append(out, iframe{segment: s, offset: k.Offset, size: k.Size, duration: end - k.Time, firstInSegment: i == 0})
		}
	}
	return out
}

// IFrames renders a video rendition's I-frame playlist (EXT-X-I-FRAMES-
// ONLY): each keyframe as a byte range of its segment, for scrubbing and
// trick play. An fMP4 rendition's keyframes follow its init segment; an
// MPEG-TS one's follow the PAT and PMT at the head of each segment, which
// an EXT-X-MAP names (protocol version 5). It ends, as the rendition's
// playlist does, once o.Total segments are there. Nil when the rendition
// has no keyframes to list.
func IFrames(r Rendition, o MediaOptions) ([]byte, error) {
	ready := r.Ready(0)
	frames := iframes(ready)
	if len(frames) == 0 {
		return nil, nil
	}
	p, err := m3u8.NewMediaPlaylist(0, uint(len(frames)))
	if err != nil {
		return nil, fmt.Errorf("iframe playlist %s: %w", r.Name, err)
	}
	p.SetIframeOnly()
	// cbcs leaves a keyframe's range a keyframe (AES-128 segments have
	// no keyframes listed: transcode drops them).
	if p.Key, err = o.key(); err != nil {
		return nil, fmt.Errorf("iframe playlist %s: %w", r.Name, err)
	}
	target := 0.0
	for _, f := range frames {
		seg := &m3u8.MediaSegment{URI: f.segment.URI, Duration: f.duration, Offset: f.offset, Limit: f.size}
		if r.Init == "" && f.firstInSegment && f.offset > 0 {
			seg.Map = &m3u8.Map{URI: f.segment.URI, Limit: f.offset, Offset: 0}
		}
		if err := p.AppendSegment(seg); err != nil {
			return nil, fmt.Errorf("iframe playlist %s: %w", r.Name, err)
		}
		target = math.Max(target, f.duration)
	}
	p.TargetDuration = math.Ceil(target - 1e-3)
	p.SetVersion(5)
	if r.Init != "" {
		p.SetDefaultMap(r.Init, 0, 0)
		p.SetVersion(7)
	}
	if o.Total > 0 && len(ready) == o.Total {
		p.MediaType = m3u8.VOD
		p.Close()
	} else {
		p.MediaType = m3u8.EVENT
	}
	return mapRange.ReplaceAll(p.Encode().Bytes(), []byte(`$1"$2"`)), nil
}

// mapRange is an EXT-X-MAP byte range, which grafov/m3u8 writes bare: the
// attribute is a quoted-string (RFC 8216 4.3.2.5).
var mapRange = regexp.MustCompile(`(#EXT-X-MAP:URI="[^"]*",BYTERANGE=)(\d+@\d+)`)

// programID is the attribute grafov/m3u8 writes on every variant, which
// HLS removed in protocol version 6.
var programID = regexp.MustCompile(`(#EXT-X-(?:I-FRAME-)?STREAM-INF:)PROGRAM-ID=\d+,`)

// tidy mends what grafov/m3u8 writes into a master of today's HLS: no
// PROGRAM-ID, and CHANNELS on the audio renditions (withChannels).
func tidy(master []byte, audios []Rendition) []byte {
	return withChannels(programID.ReplaceAll(master, []byte("$1")), audios)
}

// withChannels adds CHANNELS to the audio renditions' EXT-X-MEDIA tags,
// which grafov/m3u8 does not write: players pick stereo or 5.1 by it.
// The tag ends with its URI, which no other attribute names.
func withChannels(master []byte, audios []Rendition) []byte {
	for _, a := range audios {
		if a.Channels > 0 {
			uri := []byte(`,URI="` + a.Name + `.m3u8"`)
			master = bytes.ReplaceAll(master, uri, append([]byte(`,CHANNELS="`+strconv.Itoa(a.Channels)+`"`), uri...))
		}
	}
	return master
}

// Last returns the index of the last segment a rendered media playlist
// lists (-1 for none) and whether it has ENDLIST: for a live sliding
// window, where the count stays the same while the window moves on.
func Last(playlist []byte) (int, bool) {
	n, ended := Count(playlist)
	seq := 0
	if i := bytes.Index(playlist, []byte("#EXT-X-MEDIA-SEQUENCE:")); i >= 0 {
		rest := playlist[i+len("#EXT-X-MEDIA-SEQUENCE:"):]
		if j := bytes.IndexByte(rest, '\n'); j >= 0 {
			rest = rest[:j]
		}
		fmt.Sscanf(string(bytes.TrimSpace(rest)), "%d", &seq)
	}
	return seq + n - 1, ended
}

// Count returns how many segments a rendered media playlist lists and
// whether it has ENDLIST: what the packager compares before replacing one.
func Count(playlist []byte) (int, bool) {
	return bytes.Count(playlist, []byte("#EXTINF:")), bytes.Contains(playlist, []byte("#EXT-X-ENDLIST"))
}

// LowLatencyVariant is a live stream's source rendition served apart as
// LL-HLS (by the relay, from the frames it receives): absolute URLs of its
// video and audio media playlists ("" for no audio) and what a player
// chooses a variant by.
type LowLatencyVariant struct {
	Video, Audio                string
	Codecs, Resolution          string
	FrameRate                   float64
	Bandwidth, AverageBandwidth int64
}

// LowLatencyGroup is the audio group of the low-latency variant: its audio
// comes with its parts, not from the transcoded audio rendition, which is
// segments behind.
const LowLatencyGroup = "aud-ll"

// WithLowLatency appends v to a rendered master as one more variant,
// with its audio as a group of its own.
func WithLowLatency(master []byte, v LowLatencyVariant) []byte {
	var b bytes.Buffer
	b.Write(master)
	if len(master) > 0 && master[len(master)-1] != '\n' {
		b.WriteByte('\n')
	}
	audio := ""
	if v.Audio != "" {
		fmt.Fprintf(&b, "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=%q,NAME=\"Source (low latency)\",LANGUAGE=\"und\",DEFAULT=YES,AUTOSELECT=YES,URI=%q\n",
			LowLatencyGroup, v.Audio)
		audio = fmt.Sprintf(",AUDIO=%q", LowLatencyGroup)
	}
	fmt.Fprintf(&b, "#EXT-X-STREAM-INF:BANDWIDTH=%d,AVERAGE-BANDWIDTH=%d,CODECS=%q,RESOLUTION=%s,FRAME-RATE=%.3f%s\n%s\n",
		v.Bandwidth, v.AverageBandwidth, v.Codecs, v.Resolution, v.FrameRate, audio, v.Video)
	return b.Bytes()
}
