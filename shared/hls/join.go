package hls

import (
	"bytes"
	"fmt"
	"math"

	"github.com/grafov/m3u8"
)

// Part is one publish's media playlist as a channel lists it: a live
// stream keeps one URL across publishes, and each publish is a playlist
// of its own (the publish's archive) that the channel's playlist joins.
type Part struct {
	// Playlist is the publish's media playlist, as Media rendered it.
	Playlist []byte
	// Base goes in front of each URI it lists: the way from the channel's
	// folder to the publish's.
	Base string
	// Sequence is the channel's media sequence number of the publish's
	// segment 0; Discontinuity how many publishes came before it.
	Sequence, Discontinuity int
}

// Join renders a channel's sliding window: the last window segments of
// parts (oldest publish first), numbered on the channel's sequence, an
// EXT-X-DISCONTINUITY where one publish gives way to the next (timestamps
// and encoder start over), EXT-X-DISCONTINUITY-SEQUENCE counting those
// that slid out. It never ends the playlist: a publisher that drops may
// come back, and only the relay knows when it will not (End).
func Join(parts []Part, window int) ([]byte, error) {
	type item struct {
		seg  *m3u8.MediaSegment
		seq  int
		part int
		init *m3u8.Map
	}
	var items []item
	target := 0.0
	for k, pt := range parts {
		pl, typ, err := m3u8.DecodeFrom(bytes.NewReader(pt.Playlist), true)
		if err != nil {
			return nil, fmt.Errorf("channel part %d: %w", k, err)
		}
		mp, ok := pl.(*m3u8.MediaPlaylist)
		if !ok || typ != m3u8.MEDIA {
			return nil, fmt.Errorf("channel part %d: not a media playlist", k)
		}
		target = math.Max(target, mp.TargetDuration)
		var init *m3u8.Map
		if mp.Map != nil {
			init = &m3u8.Map{URI: pt.Base + mp.Map.URI}
		}
		for i, s := range mp.GetAllSegments() {
			seg := *s
			seg.URI = pt.Base + s.URI
			seg.Map, seg.Discontinuity = nil, false
			items = append(items, item{seg: &seg, seq: pt.Sequence + int(mp.SeqNo) + i, part: k, init: init})
		}
	}
	if window > 0 && len(items) > window {
		items = items[len(items)-window:]
	}
	p, err := m3u8.NewMediaPlaylist(0, uint(len(items)+1))
	if err != nil {
		return nil, fmt.Errorf("channel playlist: %w", err)
	}
	p.SetVersion(3)
	if len(items) > 0 {
		p.SeqNo = uint64(items[0].seq)
		p.DiscontinuitySeq = uint64(parts[items[0].part].Discontinuity)
	}
	for i, it := range items {
		// A publish's init segment goes before its first listed segment;
		// a new publish is a discontinuity unless it opens the window.
		if it.init != nil && (i == 0 || items[i-1].part != it.part) {
			it.seg.Map = it.init
			p.SetVersion(7)
		}
		it.seg.Discontinuity = i > 0 && items[i-1].part != it.part
		if err := p.AppendSegment(it.seg); err != nil {
			return nil, fmt.Errorf("channel playlist: %w", err)
		}
	}
	if target == 0 {
		target = 4
	}
	p.TargetDuration = target
	return p.Encode().Bytes(), nil
}

// End returns a live playlist with EXT-X-ENDLIST, as it is when it has one.
func End(playlist []byte) []byte {
	if _, ended := Count(playlist); ended {
		return playlist
	}
	out := append([]byte(nil), playlist...)
	if len(out) > 0 && out[len(out)-1] != '\n' {
		out = append(out, '\n')
	}
	return append(out, "#EXT-X-ENDLIST\n"...)
}
