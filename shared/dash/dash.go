// Package dash renders the MPEG-DASH manifest (MPD) of a CMAF asset from
// the same renditions and segments its HLS playlists list, with Eyevinn's
// dash-mpd types: one SegmentTemplate per representation with a
// SegmentTimeline built from each segment's first presentation time (its
// tfdt, shifted on the asset timeline by transcode), so HLS and DASH
// players fetch the same files.
package dash

import (
	"cmp"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/Eyevinn/dash-mpd/mpd"

	"github.com/segflow/segflow/shared/hls"
)

// Profiles: SegmentTemplate addressing (ISO BMFF live profile) of CMAF
// segments.
const profiles = "urn:mpeg:dash:profile:isoff-live:2011,urn:mpeg:dash:profile:cmaf:2019"

// channelScheme is where DASH puts an audio track's channel count.
const channelScheme = "urn:mpeg:dash:23003:3:audio_channel_configuration:2011"

// Manifest renders a static MPD of a complete asset: video renditions
// (grouped into one adaptation set per codec, so players switch only
// between what they can decode alike), then one adaptation set per audio
// rendition (language, channels; the first is the main one). Every
// rendition must be fMP4 with every segment's time known.
func Manifest(video, audio []hls.Rendition, o Options) ([]byte, error) {
	var m *mpd.MPD
	var origin float64
	if o.Live != nil {
		video, audio = o.Live.window(video), o.Live.window(audio)
	}
	if o.Live != nil && !o.Live.Ended {
		var err error
		if m, err = o.Live.mpd(video, audio); err != nil {
			return nil, err
		}
	} else {
		// Period time 0 is the first video frame (the first audio frame
		// for sound alone): each representation's presentationTimeOffset
		// is that instant in its own timescale. The presentation lasts as
		// long as that rendition's segments.
		var duration float64
		switch {
		case len(video) > 0 && len(video[0].Segments) > 0:
			origin, duration = span(video[0])
		case len(audio) > 0 && len(audio[0].Segments) > 0:
			origin, duration = span(audio[0])
		}
		m = mpd.NewMPD(mpd.STATIC_TYPE)
		m.MediaPresentationDuration = mpd.Seconds2DurPtrFloat64(duration)
	}
	m.Profiles = profiles
	period := mpd.NewPeriod()
	period.Id = "0"
	period.Start = mpd.Seconds2DurPtr(0)
	m.Periods = []*mpd.Period{period}
	longest := 0.0
	sets := map[string]*mpd.AdaptationSetType{}
	id := uint32(0)
	newSet := func(contentType, mimeType string) *mpd.AdaptationSetType {
		as := mpd.NewAdaptationSetWithParams(contentType, mimeType, true, 1)
		as.Id = mpd.Ptr(id)
		if contentType != "text" { // WebVTT is never encrypted
			as.ContentProtections = o.contentProtections()
		}
		id++
		period.AdaptationSets = append(period.AdaptationSets, as)
		return as
	}
	for _, v := range video {
		codec := codecFamily(v.Codecs)
		as, ok := sets[codec]
		if !ok {
			as = newSet("video", "video/mp4")
			as.Par = ""
			sets[codec] = as
		}
		var w, h int
		if _, err := fmt.Sscanf(v.Resolution, "%dx%d", &w, &h); err != nil {
			return nil, fmt.Errorf("mpd: %s: resolution %q", v.Name, v.Resolution)
		}
		r := mpd.NewVideoRepresentation(v.Name, v.Codecs, "", frameRate(v.FrameRate), int(hls.Peak(v.Segments)), w, h)
		r.Sar = "1:1"
		st, d, err := template(v, origin)
		if err != nil {
			return nil, err
		}
		longest = math.Max(longest, d)
		r.SegmentTemplate = st
		as.Representations = append(as.Representations, r)
		as.MaxWidth, as.MaxHeight = max(as.MaxWidth, uint32(w)), max(as.MaxHeight, uint32(h))
	}
	for i, a := range audio {
		as := newSet("audio", "audio/mp4")
		as.Lang = a.Language
		if as.Lang == "" {
			as.Lang = "und"
		}
		role := "alternate"
		if i == 0 {
			role = "main"
		}
		as.Roles = []*mpd.DescriptorType{{SchemeIdUri: "urn:mpeg:dash:role:2011", Value: role}}
		if a.Label != "" {
			as.Labels = []*mpd.LabelType{{Value: a.Label}}
		}
		st, d, err := template(a, origin)
		if err != nil {
			return nil, err
		}
		longest = math.Max(longest, d)
		r := mpd.NewAudioRepresentation(a.Name, a.Codecs, "", int(hls.Peak(a.Segments)), int(*st.Timescale))
		if a.Channels > 0 {
			r.AudioChannelConfigurations = []*mpd.DescriptorType{{SchemeIdUri: channelScheme, Value: strconv.Itoa(a.Channels)}}
		}
		r.SegmentTemplate = st
		as.Representations = append(as.Representations, r)
	}
	for _, sub := range o.Subtitles {
		segs := sub.Ready(0)
		if len(segs) != 1 {
			continue // segmented captions: no form of them dash.js reads
		}
		as := newSet("text", "text/vtt")
		as.StartWithSAP, as.SegmentAlignment = 0, false
		as.Lang = cmp.Or(sub.Language, "und")
		as.Roles = []*mpd.DescriptorType{{SchemeIdUri: "urn:mpeg:dash:role:2011", Value: "subtitle"}}
		if sub.Label != "" {
			as.Labels = []*mpd.LabelType{{Value: sub.Label}}
		}
		r := mpd.NewRepresentationWithID(sub.Name, "", "", int(max(segs[0].Bandwidth, 256)))
		r.BaseURLs = []*mpd.BaseURLType{mpd.NewBaseURL(segs[0].URI)}
		as.Representations = append(as.Representations, r)
	}
	// The player buffers this much before it starts, at the bandwidths
	// given (peak segment rates, so one segment's worth always fits).
	if o.Live != nil {
		longest = math.Max(longest, o.Live.Target)
	}
	m.MinBufferTime = mpd.Seconds2DurPtrFloat64(math.Ceil(longest))
	m.MaxSegmentDuration = mpd.Seconds2DurPtrFloat64(math.Ceil(longest))
	out, err := m.WriteToString("  ", true)
	if err != nil {
		return nil, fmt.Errorf("mpd: %w", err)
	}
	return []byte(out), nil
}

// Options shape a manifest.
type Options struct {
	// KeyID, when set, says every representation is cbcs-encrypted with
	// the key of that ID (media.Protection), which EME Clear Key players
	// get from a license URL they are given.
	KeyID []byte
	// Subtitles are WebVTT renditions; those of one file for the whole
	// asset (sidecar subtitles) are listed, each its own adaptation set
	// naming the file, its cues timed from the asset's first frame as the
	// period is.
	Subtitles []hls.Rendition
	// Live, when set, makes the dynamic MPD of a running live stream
	// (static once it has ended); without it the MPD is static, of every
	// segment of a file.
	Live *Live
}

// Live shapes a running stream's dynamic MPD.
type Live struct {
	// Window is how many of each rendition's latest segments it lists,
	// as the HLS sliding window does; 0 lists all of them since the
	// start, as a live asset's EVENT playlists do.
	Window int
	// Target is the segment duration aimed at, in seconds: players
	// refresh the MPD that often and stay three of them behind.
	Target float64
	// Now is when the MPD is published (publishTime).
	Now time.Time
	// Ended makes the MPD static, of the segments the window holds: the
	// publisher stopped and nothing more will come.
	Ended bool
}

func (l *Live) window(rs []hls.Rendition) []hls.Rendition {
	out := make([]hls.Rendition, len(rs))
	for i, r := range rs {
		out[i] = r
		out[i].Segments = r.Window(l.Window)
	}
	return out
}

// mpd is a dynamic MPD whose media time 0 is at availabilityStartTime:
// the relay stamps each segment with its first frame's wall-clock time
// (ProgramDateTime) on a fixed offset from its media time, so that
// offset, read off the first segment, puts every segment at the instant
// it was received, and the players' clocks find the live edge there
// (presentationTimeOffset 0; a segment is available once its last frame
// is in, which the listed ones are).
func (l *Live) mpd(video, audio []hls.Rendition) (*mpd.MPD, error) {
	var first hls.Segment
	switch {
	case len(video) > 0 && len(video[0].Segments) > 0:
		first = video[0].Segments[0]
	case len(audio) > 0 && len(audio[0].Segments) > 0:
		first = audio[0].Segments[0]
	default:
		return nil, fmt.Errorf("mpd: no segment yet")
	}
	if first.ProgramDateTime.IsZero() || first.Timescale == 0 {
		return nil, fmt.Errorf("mpd: live segment %d has no wall-clock or media time", first.Index)
	}
	offset := time.Duration(float64(first.Time) / float64(first.Timescale) * float64(time.Second))
	start := first.ProgramDateTime.Add(-offset).Round(time.Millisecond)
	m := mpd.NewMPD(mpd.DYNAMIC_TYPE)
	m.AvailabilityStartTime = mpd.ConvertToDateTimeMS(start.UnixMilli())
	m.PublishTime = mpd.ConvertToDateTimeMS(l.Now.UnixMilli())
	// The players' clock (DASH-IF IOP 4.7: a dynamic MPD names one): the
	// time the MPD was made, which a player reads as the time it got it.
	// Rebuilt at least every segment, it is at most one segment old, so
	// a player errs only towards playing further behind; without it
	// dash.js asks time.akamai.com, which a closed network never answers.
	m.UTCTimings = []*mpd.DescriptorType{{SchemeIdUri: "urn:mpeg:dash:utc:direct:2014", Value: string(m.PublishTime)}}
	m.MinimumUpdatePeriod = mpd.Seconds2DurPtrFloat64(l.Target)
	if l.Window > 0 {
		m.TimeShiftBufferDepth = mpd.Seconds2DurPtrFloat64(float64(l.Window) * l.Target)
	} // else every segment since the start stays (the asset's EVENT playlists)
	m.SuggestedPresentationDelay = mpd.Seconds2DurPtrFloat64(3 * l.Target)
	return m, nil
}

// Content protection schemes (DASH-IF IOP 6.2, ISO/IEC 23009-1): the
// common encryption scheme with its default key ID, and the Clear Key
// system that dash.js and Shaka map to the browser's org.w3.clearkey.
const (
	cencScheme     = "urn:mpeg:dash:mp4protection:2011"
	clearKeyScheme = "urn:uuid:e2719d58-a985-b3c9-781a-b030af78d30e"
)

// contentProtections are the ContentProtection descriptors of every
// adaptation set: none for a clear asset.
func (o Options) contentProtections() []*mpd.ContentProtectionType {
	if len(o.KeyID) != 16 {
		return nil
	}
	k := o.KeyID
	cenc := mpd.NewContentProtection()
	cenc.SchemeIdUri, cenc.Value = cencScheme, "cbcs"
	cenc.DefaultKID = fmt.Sprintf("%x-%x-%x-%x-%x", k[0:4], k[4:6], k[6:8], k[8:10], k[10:16])
	clearKey := mpd.NewContentProtection()
	clearKey.SchemeIdUri, clearKey.Value = clearKeyScheme, "ClearKey1.0"
	return []*mpd.ContentProtectionType{cenc, clearKey}
}

// span is when a rendition's first segment starts and how long its
// segments last, in seconds.
func span(r hls.Rendition) (start, duration float64) {
	segs := r.Window(len(r.Segments))
	for _, s := range segs {
		duration += s.Duration
	}
	if len(segs) == 0 || segs[0].Timescale == 0 {
		return 0, duration
	}
	return float64(segs[0].Time) / float64(segs[0].Timescale), duration
}

// template is a rendition's SegmentTemplate: $Number$ names the files as
// the bucket does (layout.SegmentName), and the timeline gives each
// segment its start, runs of equal durations folded into one S with a
// repeat count. It also returns the longest segment, in seconds.
func template(r hls.Rendition, origin float64) (*mpd.SegmentTemplateType, float64, error) {
	// The run of segments from the first one there: all of a complete
	// file's from 0, a live window's from where it starts.
	segs := r.Window(len(r.Segments))
	if len(segs) == 0 {
		return nil, 0, fmt.Errorf("mpd: %s has no segments", r.Name)
	}
	if r.Init == "" {
		return nil, 0, fmt.Errorf("mpd: %s is not fMP4", r.Name)
	}
	ts := segs[0].Timescale
	timeline := mpd.NewSegmentTimeline()
	var longest float64
	for i, s := range segs {
		if s.Timescale != ts || ts == 0 {
			return nil, 0, fmt.Errorf("mpd: %s segment %d: no time on the %d timescale", r.Name, s.Index, ts)
		}
		d := uint64(math.Round(s.Duration * float64(ts)))
		if i+1 < len(segs) {
			if next := segs[i+1].Time; next > s.Time {
				d = uint64(next - s.Time)
			}
		}
		longest = math.Max(longest, float64(d)/float64(ts))
		if n := len(timeline.S); n > 0 {
			last := timeline.S[n-1]
			if last.D == d && *last.T+uint64(last.R+1)*d == uint64(s.Time) {
				last.R++
				continue
			}
		}
		timeline.S = append(timeline.S, &mpd.S{T: mpd.Ptr(uint64(s.Time)), D: d})
	}
	st := mpd.NewSegmentTemplate()
	st.Initialization = r.Init
	st.Media = r.Name + "/" + numberTemplate
	st.StartNumber = mpd.Ptr(uint32(segs[0].Index))
	st.Timescale = mpd.Ptr(ts)
	st.PresentationTimeOffset = mpd.Ptr(uint64(math.Round(origin * float64(ts))))
	st.SegmentTimeline = timeline
	return st, longest, nil
}

// numberTemplate is layout.SegmentName's "%05d.m4s" as a DASH template.
const numberTemplate = "$Number%05d$.m4s"

// codecFamily is a codec string's sample entry ("avc1", "hvc1", "av01").
func codecFamily(codecs string) string {
	if i := len(codecs); i >= 4 {
		return codecs[:4]
	}
	return codecs
}

// frameRate writes a rate as DASH wants it: an integer, or a fraction
// (30000/1001 for NTSC rates, else in thousandths).
func frameRate(fps float64) string {
	switch {
	case fps <= 0:
		return ""
	case math.Abs(fps-math.Round(fps)) < 1e-3:
		return strconv.Itoa(int(math.Round(fps)))
	case math.Abs(fps*1001/1000-math.Round(fps*1001/1000)) < 1e-3:
		return fmt.Sprintf("%d/1001", int(math.Round(fps*1001)))
	}
	return fmt.Sprintf("%d/1000", int(math.Round(fps*1000)))
}
