// Package packager is the packager stage: on every new rendition segment
// it rebuilds the asset's HLS playlists from what the bucket holds (a
// listing plus each segment's metadata), so concurrent and repeated calls
// converge, and a playlist is only ever replaced by one that lists at least
// as much. ENDLIST goes on once every segment of a rendition is there.
package packager

import (
	"context"
	"crypto/md5"
	"errors"
	"fmt"
	"maps"
	"math"
	"net/http"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/segflow/segflow/shared/asset"
	"github.com/segflow/segflow/shared/dash"
	"github.com/segflow/segflow/shared/hls"
	"github.com/segflow/segflow/shared/layout"
	"github.com/segflow/segflow/shared/media"
	"github.com/segflow/segflow/shared/stage"
	"github.com/segflow/segflow/shared/storage"
)

const name = "packager"

// Handle receives the triggering object's CloudEvent.
var Handle = handler()

// handler coalesces the rebuilds of one asset's playlists within the
// process: events for an asset that arrive while its rebuild runs share
// the next one.
func handler() http.HandlerFunc {
	var rebuilds coalescer
	return stage.Handler(name, []layout.Kind{layout.KindRenditionSegment}, func(ctx context.Context, e *stage.Env, t *stage.Trigger, _ *http.Request) (string, error) {
		return rebuilds.Do(ctx, t.Bucket+"/"+t.Layout.AssetID, func() (string, error) {
			return Package(ctx, e, t.Bucket, t.Layout.AssetID)
		})
	})
}

// Package writes the playlists of one asset from the bucket's contents.
func Package(ctx context.Context, e *stage.Env, bucket, id string) (string, error) {
	m, err := asset.ReadManifest(ctx, e.Store, bucket, id)
	if errors.Is(err, storage.ErrNotFound) {
		return "", stage.Permanent(err)
	}
	if err != nil {
		return "", err
	}
	a := layout.Asset(id)
	objs, err := e.Store.List(ctx, bucket, a.Prefix(), storage.ListOptions{Recursive: true, WithMetadata: true})
	if err != nil {
		return "", err
	}
	p, err := makePlan(m, objs)
	if err != nil {
		return "", err
	}
	have := make(map[string]storage.Info, len(objs))
	for _, o := range objs {
		have[o.Key] = o
	}
	rankOf := countRank
	if m.Live {
		rankOf = lastRank
	}
	for _, pl := range p.media {
		key, rk := a.Playlist(pl.name), rankOf(pl.body)
		if err := put(ctx, e, bucket, have[key], key, pl.body, rk, func(old rank) bool { return !rk.ahead(old) }, behind(rankOf, pl.body)); err != nil {
			return "", err
		}
	}
	// The master's bandwidths are measured over the segments listed so far,
	// so its rank is that count, and a VOD master is only replaced by one
	// computed from at least as many. A file's master goes out once every
	// rendition it lists has a segment: a player given it then plays from
	// the start while the rest is transcoded; before, one of its variants
	// would be an empty playlist. The status says when (Playable), once.
	if m.Live || p.playable {
		if err := put(ctx, e, bucket, have[a.Master()], a.Master(), p.master, rank{n: p.listed},
			func(old rank) bool { return !m.Live && old.n > p.listed }, nil); err != nil {
			return "", err
		}
		if !m.Live && have[a.Master()].Key == "" {
			if err := asset.UpdateStatus(ctx, e.Store, bucket, id, name, func(s *asset.Status) {
				if s.Playable == nil {
					now := time.Now().UTC()
					s.Playable = &now
				}
			}); err != nil {
				return "", err
			}
		}
	}
	// A private stream's publishes get no channel playlists: those are
	// anonymously readable under assets/live/.
	if m.Live && m.Channel != "" && !layout.Private(m.ID) {
		if err := packChannel(ctx, e, bucket, m, p); err != nil {
			return "", err
		}
	}
	putDASH := func() error {
		return e.Store.PutBytes(ctx, bucket, a.DASH(), p.dash, storage.PutOptions{ContentType: "application/dash+xml", Metadata: e.Meta()})
	}
	// A live stream's MPD follows its playlists at every rebuild.
	if m.Live && p.dash != nil {
		if err := putDASH(); err != nil {
			return "", err
		}
	}
	if p.complete < p.renditions {
		return fmt.Sprintf("packaged %s: %d of %d renditions complete, %d segments listed", id, p.complete, p.renditions, p.listed), nil
	}
	// A file's DASH manifest lists what its HLS playlists do, once they
	// all end: a static MPD names every segment, so it comes last.
	if !m.Live && p.dash != nil {
		if err := putDASH(); err != nil {
			return "", err
		}
	}
	if err := asset.UpdateStatus(ctx, e.Store, bucket, id, name, func(s *asset.Status) {
		s.SetStage(name, asset.StateDone, nil)
		if s.State != asset.StateFailed {
			s.State = asset.StateComplete
		}
	}); err != nil {
		return "", err
	}
	return fmt.Sprintf("packaged %s: %d renditions complete", id, p.renditions), nil
}

// plan is what one rebuild writes: the media playlists (video, audio,
// then captions), the master, and how far they reach. It comes from the
// manifest and one listing only, so it is tested without storage.
type plan struct {
	media  []playlist
	master []byte
	// dash is a CMAF asset's MPD: a complete file's, or a live
	// stream's once it has a segment listed (nil otherwise).
	dash []byte
	// listed counts the segments in every media playlist; complete the
	// renditions (captions aside: the asset plays without them) whose
	// playlist ended, of renditions.
	listed, complete, renditions int
	// playable: every video and audio playlist lists a segment, so a
	// player given the master can start (from the first segment of a
	// file still being transcoded, its playlists growing as EVENT ones).
	playable bool
}

type playlist struct {
	name string
	body []byte
}

func makePlan(m *asset.Manifest, objs []storage.Info) (plan, error) {
	renditions := collect(objs, m)
	var video []hls.Rendition
	for _, r := range m.Ladder {
		video = append(video, renditions[r.Name])
	}
	var audio []hls.Rendition
	for _, a := range m.AudioSet() {
		audio = append(audio, renditions[a.Name])
	}
	// Captions come from aitag when it runs, subtitles from sidecar files
	// (one WebVTT segment each); they are listed, but the asset plays
	// without them, so they do not hold back "complete".
	var subs []hls.Rendition
	for _, name := range slices.Sorted(maps.Keys(renditions)) {
		if sr := renditions[name]; sr.Subtitles && len(sr.Segments) > 0 {
			subs = append(subs, sr)
		}
	}
	all := append(append([]hls.Rendition(nil), video...), audio...)
	opts := hls.MediaOptions{Total: len(m.Segments), TargetDuration: vodTarget(m)}
	if m.Splitting {
		opts.Total = 0 // more segments are coming
	}
	if m.Live {
		opts = liveOptions(m, all)
		// A live segment is listed only once every rendition of it exists.
		// Captions are listed as they come and do not hold it: waiting
		// for them (aitag, niced, behind transcode) cost 1.4-1.8 s of
		// latency on 2 cores, while players sit three segments back.
		keep := everywhere(all)
		for i := range all {
			all[i] = onlyIndices(all[i], keep)
		}
		video, audio = all[:len(video)], all[len(video):]
		for i := range subs {
			subs[i] = onlyIndices(subs[i], keep)
		}
	}
	p := plan{renditions: len(all), playable: len(all) > 0}
	for _, r := range all {
		p.playable = p.playable && len(r.Ready(0)) > 0
	}
	var listedSubs []hls.Rendition
	opts.Encryption = m.Options.Encryption
	if opts.Encryption == asset.EncryptionCBCS {
		opts.KeyID = asset.KeyID(m.ID)
	}
	add := func(r hls.Rendition, counts bool) error {
		o := opts
		if strings.HasPrefix(r.Name, layout.SidecarPrefix) && !m.Live {
			o.Total = 1 // the whole file, one segment
		}
		body, n, done, err := hls.Media(r, o)
		if err != nil {
			return err
		}
		if done && counts {
			p.complete++
		}
		// A VOD master lists captions once their playlist has ENDLIST:
		// the asset is complete when its video and audio are, and every
		// playlist its master lists must have ended by then. Live lists
		// them as they grow, as it does every playlist.
		if r.Subtitles && (done || m.Live) {
			listedSubs = append(listedSubs, r)
		}
		p.listed += n
		p.media = append(p.media, playlist{r.Name, body})
		return nil
	}
	for _, r := range all {
		if err := add(r, true); err != nil {
			return p, err
		}
	}
	for _, r := range subs {
		if err := add(r, false); err != nil {
			return p, err
		}
	}
	// Each video rendition's I-frame playlist, once its segments are
	// listed (files only: collect leaves live segments' keyframes out).
	for _, r := range video {
		body, err := hls.IFrames(r, opts)
		if err != nil {
			return p, err
		}
		if body != nil {
			p.media = append(p.media, playlist{hls.IFramesName(r.Name), body})
		}
	}
	p.master = hls.Master(video, audio, listedSubs)
	// A CMAF asset's MPD: static once a file's playlists all end; for a
	// live stream, dynamic at every rebuild from its first segment on
	// (static once the stream has ended), over the segments its HLS
	// playlists list.
	if m.CMAF() && (m.Live && len(everywhere(all)) > 0 || !m.Live && p.complete == p.renditions) {
		o := dash.Options{KeyID: opts.KeyID, Subtitles: listedSubs}
		if m.Live {
			o.Live = &dash.Live{Target: m.SegmentTarget, Now: time.Now(), Ended: opts.Ended}
			o.Subtitles = nil // captions of a live stream come in segments
		}
		var err error
		if p.dash, err = dash.Manifest(video, audio, o); err != nil {
			return p, err
		}
	}
	if ll := m.LowLatency; m.Live && !m.Ended && ll != nil && len(p.media) > 0 {
		if v, ok := lowLatencyVariant(m, ll, objs); ok {
			p.master = hls.WithLowLatency(p.master, v)
		}
	}
	return p, nil
}

// lowLatencyVariant is the master's entry for a live publish's LL-HLS
// source rendition (the relay's): its bandwidth is the source segments',
// which carry the same frames (in MPEG-TS, so a little above the fMP4
// parts: BANDWIDTH may exceed the peak, never fall short of it). None
// before a source segment is there to measure.
func lowLatencyVariant(m *asset.Manifest, ll *asset.LowLatency, objs []storage.Info) (hls.LowLatencyVariant, bool) {
	var segs []hls.Segment
	for _, o := range objs {
		if k := layout.Parse(o.Key); k.Kind != layout.KindSourceSegment || k.AssetID != m.ID {
			continue
		}
		sm, err := asset.ReadSegmentMeta(o)
		if err != nil || sm.Duration <= 0 {
			continue
		}
		segs = append(segs, hls.Segment{Duration: sm.Duration, Bandwidth: int64(float64(o.Size*8) / sm.Duration)})
	}
	if len(segs) == 0 {
		return hls.LowLatencyVariant{}, false
	}
	v := hls.LowLatencyVariant{Video: ll.URL + "video1_stream.m3u8", Codecs: ll.Codecs,
		Resolution: fmt.Sprintf("%dx%d", m.Width, m.Height), FrameRate: m.FPS,
		Bandwidth: hls.Peak(segs), AverageBandwidth: hls.Average(segs)}
	if m.Audio {
		v.Audio = ll.URL + "audio2_stream.m3u8"
	}
	return v, true
}

// rankMeta is the user metadata each playlist is written with: its rank,
// so a rebuild decides from the listing it made anyway instead of reading
// every playlist back (six reads a rebuild, most of the bucket requests a
// VOD asset made).
const rankMeta = "Segflow-Rank"

// rank is how far a playlist reaches: segments listed (or, live, the last
// one's index), and whether it ends.
type rank struct {
	n     int
	ended bool
}

func (r rank) String() string {
	if r.ended {
		return strconv.Itoa(r.n) + ",end"
	}
	return strconv.Itoa(r.n)
}

func parseRank(s string) (rank, bool) {
	num, end := strings.CutSuffix(s, ",end")
	n, err := strconv.Atoi(num)
	return rank{n, end}, err == nil
}

// ahead says whether r replaces a playlist of rank old: it reaches
// further, or as far and now ends.
func (r rank) ahead(old rank) bool { return r.n > old.n || (r.n == old.n && r.ended && !old.ended) }

// put writes a playlist of rank rk. The listed copy (zero Info when there
// was none) decides first: same bytes, or keep(its rank), leave it; else
// the write goes on its ETag (or on its absence). A playlist written since
// the listing goes to a read-compare-write that decides the same way from
// the rank in its metadata; one without a rank (the relay's ENDLIST on a
// channel playlist) is kept when keepBytes(its content) says so.
func put(ctx context.Context, e *stage.Env, bucket string, listed storage.Info, key string, body []byte, rk rank,
	keep func(old rank) bool, keepBytes func(old []byte) bool) error {
	opts := storage.PutOptions{ContentType: "application/vnd.apple.mpegurl", Metadata: e.Meta(rankMeta, rk.String())}
	update := func() error {
		return e.Store.UpdateInfo(ctx, bucket, key, opts, func(old []byte, info storage.Info) ([]byte, error) {
			if old == nil {
				return body, nil
			}
			r, ranked := parseRank(info.Meta(rankMeta))
			if string(old) == string(body) || (ranked && keep(r)) || (!ranked && keepBytes != nil && keepBytes(old)) {
				return nil, nil
			}
			return body, nil
		})
	}
	o := opts
	switch old, ok := parseRank(listed.Meta(rankMeta)); {
	case listed.Key == "":
		o.IfNoneMatch = "*"
	case !ok:
		return update()
	case listed.ETag == fmt.Sprintf("%x", md5.Sum(body)) || keep(old):
		return nil
	default:
		o.IfMatch = listed.ETag
	}
	err := e.Store.PutBytes(ctx, bucket, key, body, o)
	if storage.IsPreconditionFailed(err) {
		return update()
	}
	return err
}

// behind is the rule for a playlist without a rank in its metadata: keep
// it unless next's rank (by rankOf: segments listed, or the last one's
// index live) is ahead of it, so a slow call that listed the bucket
// earlier can never take a segment away.
func behind(rankOf func([]byte) rank, next []byte) func(old []byte) bool {
	return func(old []byte) bool { return !rankOf(next).ahead(rankOf(old)) }
}

// countRank ranks a VOD playlist by the segments it lists.
func countRank(b []byte) rank {
	n, end := hls.Count(b)
	return rank{n, end}
}

// lastRank ranks a live playlist by the index of its last segment.
func lastRank(b []byte) rank {
	n, end := hls.Last(b)
	return rank{n, end}
}

// vodTarget is a file's target duration from every segment split has
// made, not only those listed yet: an EVENT playlist must not change it
// as it grows (RFC 8216 6.2.1), and its first segment is a short one
// (media's lead cut). While the split goes on, later segments are taken
// to be at least the split's target long.
func vodTarget(m *asset.Manifest) float64 {
	target := 0.0
	if m.Splitting {
		target = media.DefaultTarget.Seconds()
	}
	for _, s := range m.Segments {
		target = math.Max(target, s.Duration)
	}
	return target
}

// liveOptions: every segment of the publish (its archive; the channel's
// playlists are the sliding window), a target duration that does not move
// while the stream runs, ENDLIST once the publisher has stopped and every
// segment it made is in every rendition.
func liveOptions(m *asset.Manifest, all []hls.Rendition) hls.MediaOptions {
	target := math.Ceil(m.SegmentTarget) + 1
	for _, s := range m.Segments {
		target = math.Max(target, math.Ceil(s.Duration))
	}
	ended := m.Ended
	if ended {
		have := everywhere(all)
		for _, s := range m.Segments {
			ended = ended && have[s.Index]
		}
	}
	return hls.MediaOptions{Ended: ended, TargetDuration: target}
}

// everywhere is the set of segment indices every rendition has.
func everywhere(all []hls.Rendition) map[int]bool {
	count := map[int]int{}
	for _, r := range all {
		for _, s := range r.Segments {
			count[s.Index]++
		}
	}
	out := map[int]bool{}
	for i, n := range count {
		if n == len(all) {
			out[i] = true
		}
	}
	return out
}

func onlyIndices(r hls.Rendition, keep map[int]bool) hls.Rendition {
	var segs []hls.Segment
	for _, s := range r.Segments {
		if keep[s.Index] {
			segs = append(segs, s)
		}
	}
	r.Segments = segs
	return r
}

// collect groups the listed rendition segments by rendition.
func collect(objs []storage.Info, m *asset.Manifest) map[string]hls.Rendition {
	out := map[string]hls.Rendition{}
	for _, r := range m.Ladder {
		h := hls.Rendition{Name: r.Name, Resolution: fmt.Sprintf("%dx%d", r.Width, r.Height), FrameRate: m.FPS}
		if r.Container() == "fmp4" {
			h.Init = r.Name + "/init.mp4"
		}
		out[r.Name] = h
	}
	for _, a := range m.AudioSet() {
		h := hls.Rendition{Name: a.Name, Audio: true, Codecs: "mp4a.40.2", Language: a.Language, Label: a.Label, Channels: a.Channels}
		if m.CMAF() {
			h.Init = a.Name + "/init.mp4"
		}
		out[a.Name] = h
	}
	out[layout.SubtitlesRendition] = hls.Rendition{Name: layout.SubtitlesRendition, Subtitles: true, Codecs: "wvtt",
		Language: "en", Label: "English (speech to text)"}
	for _, o := range objs {
		k := layout.Parse(o.Key)
		if k.Kind != layout.KindRenditionSegment {
			continue
		}
		r, ok := out[k.Rendition]
		if !ok && strings.HasPrefix(k.Rendition, layout.SidecarPrefix) {
			tag := strings.TrimPrefix(k.Rendition, layout.SidecarPrefix)
			_, label := media.Language(tag)
			r, ok = hls.Rendition{Name: k.Rendition, Subtitles: true, Codecs: "wvtt", Language: tag, Label: label}, true
		}
		if !ok {
			continue
		}
		sm, err := asset.ReadSegmentMeta(o)
		if err != nil {
			continue // not finished writing its metadata: leave it for the next call
		}
		if sm.Codecs != "" {
			r.Codecs = sm.Codecs
		}
		seg := hls.Segment{Index: k.Index, URI: k.Rendition + "/" + path.Base(o.Key), Duration: sm.Duration,
			Bandwidth: sm.Bandwidth, ProgramDateTime: sm.Wallclock, Time: sm.Time, Timescale: sm.Timescale}
		if !m.Live {
			// I-frame playlists are made for files; a live stream's
			// master has none.
			seg.Keyframes = sm.Keyframes
		}
		r.Segments = append(r.Segments, seg)
		out[k.Rendition] = r
	}
	return out
}
