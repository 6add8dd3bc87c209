// Package asset holds the documents that describe one asset in the bucket:
// the manifest split writes (segments, ladder, options) and the status every
// stage updates, with the read and update calls the stages share.
package asset

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"github.com/segflow/segflow/shared/layout"
	"github.com/segflow/segflow/shared/media"
	"github.com/segflow/segflow/shared/storage"
)

// Manifest is assets/<id>/manifest.json.
type Manifest struct {
	ID         string  `json:"id"`
	Source     string  `json:"source"` // the upload key
	SourceETag string  `json:"sourceETag"`
	Duration   float64 `json:"duration"`
	Width      int     `json:"width"`
	Height     int     `json:"height"`
	FPS        float64 `json:"fps"`
	VideoCodec string  `json:"videoCodec"`
	Audio      bool    `json:"audio"`
	// AudioRenditions are the AAC renditions, in the order the source
	// segments carry them; none listed with Audio set is one stereo
	// rendition (media.DefaultAudio: live streams, older manifests).
	AudioRenditions []media.AudioRendition `json:"audioRenditions,omitempty"`
	Segments        []Segment              `json:"segments"`
	Ladder          []media.Rung           `json:"ladder"`
	Watermark       *Watermark             `json:"watermark,omitempty"`
	// Picture is what makes the viewer's picture of the source segments,
	// which are stored as recorded: every stage that decodes one applies
	// it (rotation, deinterlace, crop, tone map). Width and Height are the
	// size it makes.
	media.Picture
	// SourceExt is the container of the source segments: ".mkv" for the
	// codecs MPEG-TS does not carry (media.SourceExt); "" is ".ts".
	SourceExt string `json:"sourceExt,omitempty"`
	Live      bool   `json:"live,omitempty"`
	// Splitting says split is still cutting the upload: Segments lists
	// each segment before it is written and grows until split ends (the
	// manifest that ends it comes before the last segment). Whatever waits
	// for every segment (ENDLIST, the storyboard, merged tags) waits for
	// it to be false.
	Splitting bool `json:"splitting,omitempty"`
	// Ended says a live stream's publisher has stopped; Segments is then
	// complete.
	Ended bool `json:"ended,omitempty"`
	// LiveWindow is how many segments the channel's playlists list (the
	// DVR depth; 0: 6). The publish's own playlists list every segment:
	// they are its archive, a VOD once it ends.
	LiveWindow int `json:"liveWindow,omitempty"`
	// Channel is the stream a live publish belongs to: its playlists are
	// joined, after the previous publish's, into the stream's channel
	// (layout.Channel), whose URL outlives publishes. Previous is the
	// publish before this one ("" for none), Sequence the channel's media
	// sequence number of this publish's segment 0, and Discontinuity how
	// many publishes came before it.
	Channel       string `json:"channel,omitempty"`
	Previous      string `json:"previous,omitempty"`
	Sequence      int    `json:"sequence,omitempty"`
	Discontinuity int    `json:"discontinuity,omitempty"`
	// LowLatency is where the relay serves a live publish's LL-HLS source
	// rendition while it is on (nil: nowhere a viewer reaches); the live
	// masters list it beside the transcoded rungs until the publish ends.
	LowLatency *LowLatency `json:"lowLatency,omitempty"`
	// SegmentTarget is the live segment duration aimed at, in seconds.
	SegmentTarget float64       `json:"segmentTarget,omitempty"`
	Created       time.Time     `json:"created"`
	Options       UploadOptions `json:"options"`
}

// LowLatency is a live publish's LL-HLS source rendition.
type LowLatency struct {
	// URL is the folder of its playlists (…/live/<stream>/): the video
	// playlist is video1_stream.m3u8 and the audio audio2_stream.m3u8,
	// gohlslib's names for a muxer's first and second track.
	URL string `json:"url"`
	// Codecs is the RFC 6381 string of the video and audio as published
	// (from the H.264 SPS and the AAC config).
	Codecs string `json:"codecs"`
}

// Segment is one source segment.
type Segment struct {
	Index    int     `json:"index"`
	Start    float64 `json:"start"`
	Duration float64 `json:"duration"`
}

// Watermark is the overlay asked for at upload: text or a PNG in the
// bucket, a corner, and an opacity.
type Watermark struct {
	Text     string  `json:"text,omitempty"`
	Image    string  `json:"image,omitempty"` // bucket key of a PNG
	Position string  `json:"position"`        // top-left, top-right, bottom-left, bottom-right, center
	Opacity  float64 `json:"opacity"`
}

// UploadOptions are what the uploader asked for through object metadata.
type UploadOptions struct {
	Codecs []media.Codec `json:"codecs,omitempty"`
	// Packaging is PackagingCMAF or empty (MPEG-TS where it carries the
	// codec).
	Packaging string `json:"packaging,omitempty"`
	// Encryption is EncryptionAES128, EncryptionCBCS or empty (clear).
	Encryption string `json:"encryption,omitempty"`
	// Ladder is media.LadderContentAware or empty (the fixed ladder):
	// what chose the rungs' rates in Manifest.Ladder.
	Ladder string `json:"ladder,omitempty"`
}

// Encryptions an upload may ask for, both with the asset's content key.
const (
	// EncryptionAES128 encrypts every MPEG-TS segment whole (HLS
	// METHOD=AES-128).
	EncryptionAES128 = "aes-128"
	// EncryptionCBCS encrypts the samples of every fMP4 rendition with
	// Common Encryption's cbcs scheme (HLS METHOD=SAMPLE-AES, DASH
	// ContentProtection; browsers decrypt it through EME Clear Key).
	EncryptionCBCS = "cbcs"
)

// Encrypted says whether the asset's segments are encrypted: a player
// needs its key, which only the playback route serves.
func (m *Manifest) Encrypted() bool { return m.Options.Encryption != "" }

// Packagings an upload may ask for.
const (
	PackagingTS   = "ts"
	PackagingCMAF = "cmaf"
)

// CMAF says whether every rendition of the asset is fragmented MP4, listed
// by a DASH manifest as well as by the HLS master.
func (m *Manifest) CMAF() bool { return m.Options.Packaging == PackagingCMAF }

// LadderKind is what chose the rungs' rates: media.LadderContentAware, or
// media.LadderFixed (also when the upload named none).
func (m *Manifest) LadderKind() string {
	if m.Options.Ladder == "" {
		return media.LadderFixed
	}
	return m.Options.Ladder
}

// Rung finds a ladder rung by name.
func (m *Manifest) Rung(name string) (media.Rung, bool) {
	for _, r := range m.Ladder {
		if r.Name == name {
			return r, true
		}
	}
	return media.Rung{}, false
}

// AudioSet is the asset's audio renditions (none without audio).
func (m *Manifest) AudioSet() []media.AudioRendition {
	switch {
	case !m.Audio:
		return nil
	case len(m.AudioRenditions) == 0:
		return media.DefaultAudio
	}
	return m.AudioRenditions
}

// RenditionNames are the names of the asset's media playlists: the
// ladder's rungs, then its audio renditions.
func (m *Manifest) RenditionNames() []string {
	var names []string
	for _, r := range m.Ladder {
		names = append(names, r.Name)
	}
	for _, a := range m.AudioSet() {
		names = append(names, a.Name)
	}
	return names
}

// AudioOnly says the asset is sound alone (a podcast, a song): no ladder,
// only the audio rendition.
func (m *Manifest) AudioOnly() bool { return m.Audio && len(m.Ladder) == 0 }

// SourceKey is the key of the n-th source segment.
func (m *Manifest) SourceKey(n int) string {
	ext := m.SourceExt
	if ext == "" {
		ext = ".ts"
	}
	return layout.Asset(m.ID).Source(n, ext)
}

// ReadManifest loads an asset's manifest.
func ReadManifest(ctx context.Context, c *storage.Client, bucket, id string) (*Manifest, error) {
	b, err := c.GetBytes(ctx, bucket, layout.Asset(id).Manifest())
	if err != nil {
		return nil, fmt.Errorf("manifest of %s: %w", id, err)
	}
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("manifest of %s: %w", id, err)
	}
	return &m, nil
}

// Settled returns m, or when m was read while split was still cutting,
// the manifest as it is now. A stage that checks for every segment after
// its own write calls it: the manifest that ends a split may have come
// after m was read, but always before the last segment's write.
func Settled(ctx context.Context, c *storage.Client, bucket string, m *Manifest) (*Manifest, error) {
	if !m.Splitting {
		return m, nil
	}
	return ReadManifest(ctx, c, bucket, m.ID)
}

// Stage states.
const (
	StatePending    = "pending"
	StateProcessing = "processing"
	StateDone       = "done"
	StateFailed     = "failed"
	StateSkipped    = "skipped"
	StateComplete   = "complete"
)

// Status is assets/<id>/status.json: where the asset and each of its
// segments stand, and why anything failed.
type Status struct {
	ID       string                 `json:"id"`
	Source   string                 `json:"source,omitempty"`
	State    string                 `json:"state"` // processing, complete, failed
	Error    string                 `json:"error,omitempty"`
	Stages   map[string]StageStatus `json:"stages"` // asset-level: split, packager
	Segments []SegmentStatus        `json:"segments"`
	// Playable is when a file's master playlist first went out: from
	// then on players can start it while the rest is transcoded (its
	// media playlists growing as EVENT ones until ENDLIST).
	Playable *time.Time `json:"playable,omitempty"`
	// Quality is each rendition's quality against the source so far (the
	// qa stage's, per segment in Segments), and QualityWarning names the
	// renditions under the configured SSIM floor: SetQuality.
	Quality        map[string]RungQuality `json:"quality,omitempty"`
	QualityWarning string                 `json:"qualityWarning,omitempty"`
	Updated        time.Time              `json:"updated"`
}

// StageStatus is one stage's state with its error.
type StageStatus struct {
	State string `json:"state"`
	Error string `json:"error,omitempty"`
}

// SegmentStatus is one segment's progress through the stages.
type SegmentStatus struct {
	Index  int                    `json:"index"`
	Stages map[string]StageStatus `json:"stages"`
	// Quality is the qa stage's score of each video rendition.
	Quality map[string]media.Quality `json:"quality,omitempty"`
}

// ReadStatus loads an asset's status.
func ReadStatus(ctx context.Context, c *storage.Client, bucket, id string) (*Status, error) {
	b, err := c.GetBytes(ctx, bucket, layout.Asset(id).Status())
	if err != nil {
		return nil, fmt.Errorf("status of %s: %w", id, err)
	}
	var s Status
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("status of %s: %w", id, err)
	}
	return &s, nil
}

// UpdateStatus changes an asset's status with optimistic locking, so
// stages that finish at once never overwrite each other.
func UpdateStatus(ctx context.Context, c *storage.Client, bucket, id, producer string, change func(s *Status)) error {
	return c.Update(ctx, bucket, layout.Asset(id).Status(), storage.PutOptions{
		ContentType: "application/json",
		Metadata:    map[string]string{layout.ProducerMeta: producer},
	}, func(old []byte) ([]byte, error) {
		s := &Status{ID: id, State: StateProcessing, Stages: map[string]StageStatus{}}
		if old != nil {
			if err := json.Unmarshal(old, s); err != nil {
				return nil, fmt.Errorf("status of %s: %w", id, err)
			}
			if s.Stages == nil {
				s.Stages = map[string]StageStatus{}
			}
		}
		change(s)
		s.Updated = time.Now().UTC()
		return json.MarshalIndent(s, "", "  ")
	})
}

// SetStage records an asset-level stage.
func (s *Status) SetStage(stage, state string, err error) {
	st := StageStatus{State: state}
	if err != nil {
		st.Error = err.Error()
	}
	s.Stages[stage] = st
	if state == StateFailed && s.State != StateComplete {
		s.State, s.Error = StateFailed, stage+": "+st.Error
	}
}

// optional stages describe an asset without being needed to play it: their
// failures are recorded but do not fail the asset.
var optional = map[string]bool{"aitag": true, "thumbnail": true, "qa": true}

// SetSegment records a segment's stage.
func (s *Status) SetSegment(index int, stage, state string, err error) {
	i := sort.Search(len(s.Segments), func(i int) bool { return s.Segments[i].Index >= index })
	if i == len(s.Segments) || s.Segments[i].Index != index {
		s.Segments = append(s.Segments, SegmentStatus{})
		copy(s.Segments[i+1:], s.Segments[i:])
		s.Segments[i] = SegmentStatus{Index: index, Stages: map[string]StageStatus{}}
	}
	st := StageStatus{State: state}
	if err != nil {
		st.Error = err.Error()
	}
	s.Segments[i].Stages[stage] = st
	if state == StateFailed && s.State != StateComplete && !optional[stage] {
		s.State, s.Error = StateFailed, fmt.Sprintf("segment %d %s: %s", index, stage, st.Error)
	}
}
