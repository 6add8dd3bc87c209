package asset

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/segflow/segflow/shared/media"
	"github.com/segflow/segflow/shared/storage"
)

// SegmentMeta is the user metadata every media segment object carries
// (source, marked, rendition and caption segments): where it sits on the
// asset's timeline and, for what a playlist lists, its peak bit rate and
// codecs. The writers (split, the relay, watermark, transcode, aitag) and
// the readers (transcode, aitag, packager) share it through Encode and
// ReadSegmentMeta only.
type SegmentMeta struct {
	Index    int
	Start    float64 // seconds on the asset's timeline
	Duration float64 // seconds
	// Wallclock is when a live segment's first frame was received (the
	// playlist's PROGRAM-DATE-TIME); zero for files.
	Wallclock time.Time
	Bandwidth int64  // peak bits per second; 0 when not measured
	Codecs    string // RFC 6381; empty when not known
	// Time is when an fMP4 rendition segment's first frame is shown, in
	// Timescale units (its track's): a DASH SegmentTimeline lists it.
	Time      int64
	Timescale uint32
	// Keyframes of a video rendition segment, for its I-frame playlist.
	Keyframes []media.Keyframe
}

// The metadata keys (S3 sends them as X-Amz-Meta-<key>).
const (
	metaIndex    = "Segment-Index"
	metaStart    = "Segment-Start"
	metaDuration = "Segment-Duration"
	// MetaWallclock marks a live segment: the router hurries its deliveries.
	MetaWallclock = "Segment-Wallclock"
	metaBandwidth = "Bandwidth"
	metaCodecs    = "Codecs"
	metaTime      = "Media-Time"
	metaKeyframes = "Keyframes"
)

// Encode adds m to an object's metadata and returns it (a new map when
// meta is nil). Index, Start and Duration are always written; the rest
// when set.
func (m SegmentMeta) Encode(meta map[string]string) map[string]string {
	if meta == nil {
		meta = map[string]string{}
	}
	meta[metaIndex] = strconv.Itoa(m.Index)
	meta[metaStart] = strconv.FormatFloat(m.Start, 'f', 6, 64)
	meta[metaDuration] = strconv.FormatFloat(m.Duration, 'f', 6, 64)
	if !m.Wallclock.IsZero() {
		meta[MetaWallclock] = m.Wallclock.UTC().Format(time.RFC3339Nano)
	}
	if m.Bandwidth > 0 {
		meta[metaBandwidth] = strconv.FormatInt(m.Bandwidth, 10)
	}
	if m.Codecs != "" {
		meta[metaCodecs] = m.Codecs
	}
	if m.Timescale > 0 {
		meta[metaTime] = fmt.Sprintf("%d/%d", m.Time, m.Timescale)
	}
	if len(m.Keyframes) > 0 {
		// offset:size:time, comma-separated: ~25 bytes each, two or three
		// a segment, far under S3's 2 KB of user metadata.
		kfs := make([]string, len(m.Keyframes))
		for i, k := range m.Keyframes {
			kfs[i] = fmt.Sprintf("%d:%d:%s", k.Offset, k.Size, strconv.FormatFloat(k.Time, 'f', 6, 64))
		}
		meta[metaKeyframes] = strings.Join(kfs, ",")
	}
	return meta
}

// ReadSegmentMeta reads what Encode wrote from an object's info. A
// segment without a start and a positive duration is an error: it was
// written by something else, or its metadata has not arrived yet.
func ReadSegmentMeta(info storage.Info) (SegmentMeta, error) {
	var m SegmentMeta
	var err error
	if m.Start, err = strconv.ParseFloat(info.Meta(metaStart), 64); err != nil {
		return m, fmt.Errorf("segment %s: %s %q: %w", info.Key, metaStart, info.Meta(metaStart), err)
	}
	if m.Duration, err = strconv.ParseFloat(info.Meta(metaDuration), 64); err != nil || m.Duration <= 0 {
		return m, fmt.Errorf("segment %s: %s %q: not a positive number", info.Key, metaDuration, info.Meta(metaDuration))
	}
	if v := info.Meta(metaIndex); v != "" {
		if m.Index, err = strconv.Atoi(v); err != nil {
			return m, fmt.Errorf("segment %s: %s %q: %w", info.Key, metaIndex, v, err)
		}
	}
	if v := info.Meta(MetaWallclock); v != "" {
		if m.Wallclock, err = time.Parse(time.RFC3339Nano, v); err != nil {
			return m, fmt.Errorf("segment %s: %s %q: %w", info.Key, MetaWallclock, v, err)
		}
	}
	if v := info.Meta(metaBandwidth); v != "" {
		if m.Bandwidth, err = strconv.ParseInt(v, 10, 64); err != nil {
			return m, fmt.Errorf("segment %s: %s %q: %w", info.Key, metaBandwidth, v, err)
		}
	}
	m.Codecs = info.Meta(metaCodecs)
	if v := info.Meta(metaTime); v != "" {
		if _, err := fmt.Sscanf(v, "%d/%d", &m.Time, &m.Timescale); err != nil || m.Timescale == 0 {
			return m, fmt.Errorf("segment %s: %s %q: want time/timescale", info.Key, metaTime, v)
		}
	}
	if v := info.Meta(metaKeyframes); v != "" {
		for _, f := range strings.Split(v, ",") {
			var k media.Keyframe
			if n, err := fmt.Sscanf(f, "%d:%d:%g", &k.Offset, &k.Size, &k.Time); err != nil || n != 3 || k.Offset < 0 || k.Size <= 0 {
				return m, fmt.Errorf("segment %s: %s %q: want comma-separated offset:size:time", info.Key, metaKeyframes, v)
			}
			m.Keyframes = append(m.Keyframes, k)
		}
	}
	return m, nil
}

// SegmentOf returns segment n's timing: from the segment's own metadata
// (src, what the store said of it: a live segment is not in the manifest
// yet), else from the manifest; and a live segment's wall clock.
func (m *Manifest) SegmentOf(n int, src storage.Info) (Segment, time.Time) {
	seg := Segment{Index: n}
	if n < len(m.Segments) {
		seg = m.Segments[n]
	}
	sm, err := ReadSegmentMeta(src)
	if err != nil {
		return seg, time.Time{}
	}
	seg.Start, seg.Duration = sm.Start, sm.Duration
	return seg, sm.Wallclock
}

// InTail reports whether seg is one of a file's last segments
// (media.InTail), which transcode and watermark encode with frame
// threads; the first segment's start is where the file's timeline begins.
// A live stream has no end to be near.
func (m *Manifest) InTail(seg Segment) bool {
	if m.Live || len(m.Segments) == 0 {
		return false
	}
	return media.InTail(seg.Start-m.Segments[0].Start, m.Duration)
}

// PictureOf is the filter that makes segment seg's picture as the viewer
// is meant to see it (Manifest.Picture, ending where the segment ends);
// none for a marked segment: watermark made it so already. Every stage
// that decodes a segment for its picture applies it (transcode, qa).
func (m *Manifest) PictureOf(seg Segment, marked bool) string {
	if marked {
		return ""
	}
	p := m.Picture
	p.End = seg.Start + seg.Duration
	return p.Filter()
}
