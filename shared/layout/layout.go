// Package layout is the bucket's key layout (ARCHITECTURE.md, "Bucket layout") in one
// place: which key means what, the topic each key raises, and the builders
// every stage uses so that outputs land under deterministic keys.
package layout

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode"
)

// Topics a function subscribes to with the `topic` annotation.
const (
	TopicUpload           = "upload"            // uploads/<file>
	TopicSourceSegment    = "segment.source"    // assets/<id>/source/<n>.ts|.mkv
	TopicMarkedSegment    = "segment.marked"    // assets/<id>/marked/<n>.ts
	TopicRenditionSegment = "segment.rendition" // assets/<id>/<rendition>/<n>.<ext>
)

// Prefixes of the layout.
const (
	UploadsPrefix    = "uploads/"
	AssetsPrefix     = "assets/"
	DeadLetterPrefix = "deadletter/"
	// LogosPrefix holds the images an upload may burn in as a watermark;
	// nothing else in the bucket can be named as one.
	LogosPrefix = "logos/"
	// PrivateUploadsPrefix holds uploads that become private assets: their
	// ids start with PrivateIDPrefix, which the bucket's anonymous read
	// excludes, and players reach them through signed playback URLs.
	PrivateUploadsPrefix = UploadsPrefix + "private/"
	// PrivateIDPrefix starts every private asset's id. Public ids never
	// hold '_' (their slugs are letters, digits and '-').
	PrivateIDPrefix = "private_"
	// KeysPrefix holds encrypted assets' content keys, outside assets/
	// (which anyone may read): transcode encrypts with them, and only the
	// playback route hands them out, to a player with a valid token.
	KeysPrefix = "keys/"
)

// Private says whether the asset id is a private asset's.
func Private(id string) bool { return strings.HasPrefix(id, PrivateIDPrefix) }

// SubtitlesRendition is the folder of the WebVTT caption segments.
const SubtitlesRendition = "subs"

// SidecarPrefix starts the folder of a sidecar subtitle file's WebVTT:
// subs-<language>.
const SidecarPrefix = "subs-"

// subtitleFolder says whether an asset folder holds WebVTT.
func subtitleFolder(name string) bool {
	return name == SubtitlesRendition || (strings.HasPrefix(name, SidecarPrefix) && len(name) > len(SidecarPrefix))
}

var reSidecar = regexp.MustCompile(`^(.+)\.([A-Za-z]{2,3}(?:-[A-Za-z0-9]{2,8})?)\.(srt|vtt)$`)

// Sidecar reads an upload key as a sidecar subtitle file,
// uploads/<video name>.<language>.srt|vtt: the key of the video it goes
// with, less its extension ("uploads/talk" for uploads/talk.en.srt), the
// language tag, and the format ("srt" or "vtt").
func Sidecar(key string) (video, lang, format string, ok bool) {
	if Parse(key).Kind != KindUpload {
		return "", "", "", false
	}
	m := reSidecar.FindStringSubmatch(key)
	if m == nil {
		return "", "", "", false
	}
	return m[1], strings.ToLower(m[2]), m[3], true
}

// ProducerMeta is the user-metadata key a function sets on what it writes,
// so the router never hands an object back to the function that made it.
const ProducerMeta = "Segflow-Producer"

// Folders under assets/<id>/ that hold no media segments.
var nonRendition = map[string]bool{"source": true, "marked": true, "thumbs": true, "tags": true, "meta": true, "audio-src": true}

// Kind says what a key is.
type Kind int

// Kinds of key.
const (
	KindOther Kind = iota
	KindUpload
	KindSourceSegment
	KindMarkedSegment
	KindRenditionSegment
)

// Key is a parsed bucket key.
type Key struct {
	Kind      Kind
	AssetID   string
	Rendition string // for KindRenditionSegment
	Index     int    // segment number
	Ext       string // ".ts", ".m4s", ...
}

// Parse reads a key by the layout.
func Parse(key string) Key {
	if strings.HasPrefix(key, UploadsPrefix) && len(key) > len(UploadsPrefix) && !strings.HasSuffix(key, "/") {
		return Key{Kind: KindUpload}
	}
	parts := strings.Split(key, "/")
	if len(parts) != 4 || parts[0] != "assets" || parts[1] == "" {
		return Key{}
	}
	ext := path.Ext(parts[3])
	n, err := strconv.Atoi(strings.TrimSuffix(parts[3], ext))
	// Captions are a rendition too: WebVTT segments under subs/. Matroska
	// holds only source segments (of codecs MPEG-TS does not carry).
	media := slices.Contains(segmentExts, ext) && (ext != ".vtt" || subtitleFolder(parts[2])) &&
		(ext != ".mkv" || parts[2] == "source")
	if err != nil || n < 0 || !media {
		return Key{}
	}
	k := Key{AssetID: parts[1], Index: n, Ext: ext}
	switch parts[2] {
	case "source":
		k.Kind = KindSourceSegment
	case "marked":
		k.Kind = KindMarkedSegment
	default:
		if nonRendition[parts[2]] {
			return Key{}
		}
		k.Kind, k.Rendition = KindRenditionSegment, parts[2]
	}
	return k
}

// segmentExts are the extensions of the media segments under assets/.
var segmentExts = []string{".ts", ".m4s", ".mp4", ".vtt", ".mkv"}

// Filter is a bucket notification rule: keys with this prefix and suffix.
type Filter struct{ Prefix, Suffix string }

// EventFilters are the notification rules that cover every key raising a
// topic: the bucket need not announce the rest (status, manifests,
// playlists, thumbnails, tags), which are most of what stages write. No
// two rules overlap, as S3 and MinIO require of one target's rules.
func EventFilters() []Filter {
	out := []Filter{{Prefix: UploadsPrefix}}
	for _, ext := range segmentExts {
		out = append(out, Filter{Prefix: AssetsPrefix, Suffix: ext})
	}
	return out
}

// Topic is the topic a newly written key raises, "" for none.
func Topic(key string) string {
	switch Parse(key).Kind {
	case KindUpload:
		return TopicUpload
	case KindSourceSegment:
		return TopicSourceSegment
	case KindMarkedSegment:
		return TopicMarkedSegment
	case KindRenditionSegment:
		return TopicRenditionSegment
	}
	return ""
}

// AssetID names the asset an upload becomes: a readable slug of the file
// name and a hash of key and content tag, so the same file uploaded twice
// is the same asset (and its stages rewrite the same keys) while a new file
// under the same name is a new asset. An upload under uploads/private/
// becomes a private asset (PrivateIDPrefix).
func AssetID(uploadKey, etag string) string {
	base := path.Base(uploadKey)
	base = strings.TrimSuffix(base, path.Ext(base))
	var sb strings.Builder
	for _, r := range strings.ToLower(base) {
		switch {
		case r < unicode.MaxASCII && (unicode.IsLetter(r) || unicode.IsDigit(r)):
			sb.WriteRune(r)
		case sb.Len() > 0 && !strings.HasSuffix(sb.String(), "-"):
			sb.WriteByte('-')
		}
		if sb.Len() >= 32 {
			break
		}
	}
	slug := strings.Trim(sb.String(), "-")
	if slug == "" {
		slug = "asset"
	}
	sum := sha256.Sum256([]byte(uploadKey + "\x00" + strings.Trim(etag, `"`)))
	id := slug + "-" + hex.EncodeToString(sum[:])[:10]
	if strings.HasPrefix(uploadKey, PrivateUploadsPrefix) {
		id = PrivateIDPrefix + id
	}
	return id
}

// SegmentName is the file name of segment n: zero-padded so listings sort.
func SegmentName(n int, ext string) string { return fmt.Sprintf("%05d%s", n, ext) }

// Asset builds the keys of one asset.
type Asset string

func (a Asset) key(parts ...string) string {
	return AssetsPrefix + string(a) + "/" + strings.Join(parts, "/")
}

// Prefix is assets/<id>/.
func (a Asset) Prefix() string { return AssetsPrefix + string(a) + "/" }

// Source is the n-th source segment, in the container ext (".ts", or
// ".mkv" for the codecs MPEG-TS does not carry: media.SourceExt).
func (a Asset) Source(n int, ext string) string { return a.key("source", SegmentName(n, ext)) }

// Marked is the n-th watermarked segment.
func (a Asset) Marked(n int) string { return a.key("marked", SegmentName(n, ".ts")) }

// Rendition is the n-th segment of a rendition.
func (a Asset) Rendition(name string, n int, ext string) string {
	return a.key(name, SegmentName(n, ext))
}

// InitSegment is an fMP4 rendition's initialisation segment.
func (a Asset) InitSegment(name string) string { return a.key(name, "init.mp4") }

// Playlist is a rendition's media playlist.
func (a Asset) Playlist(name string) string { return a.key(name + ".m3u8") }

// ContentKey is an encrypted asset's AES-128 key (16 raw bytes).
func (a Asset) ContentKey() string { return KeysPrefix + string(a) }

// DASH is the MPEG-DASH manifest of a CMAF asset, beside its HLS master.
func (a Asset) DASH() string { return a.key("manifest.mpd") }

// Master is the master playlist.
func (a Asset) Master() string { return a.key("master.m3u8") }

// Manifest is the asset manifest written by split.
func (a Asset) Manifest() string { return a.key("manifest.json") }

// Status is the per-asset status document.
func (a Asset) Status() string { return a.key("status.json") }

// Meta holds per-stage metadata documents, e.g. Meta("transcode", n).
func (a Asset) Meta(stage string, n int) string { return a.key("meta", stage, SegmentName(n, ".json")) }

// Thumb is a file under thumbs/.
func (a Asset) Thumb(name string) string { return a.key("thumbs", name) }

// Tags is the n-th segment's tags, or the asset merge with n < 0.
func (a Asset) Tags(n int) string {
	if n < 0 {
		return a.key("tags", "asset.json")
	}
	return a.key("tags", SegmentName(n, ".json"))
}

// ChannelsFolder is the folder under assets/ that holds the live
// channels. Asset ids always end in "-<something>", so none is "live".
const ChannelsFolder = "live"

// Channel builds the keys of a live stream's channel: playlists that keep
// one URL across the stream's publishes (each publish is an asset, its
// archive), listing segments that stay in the publishes' folders.
type Channel string

// Prefix is assets/live/<stream>/.
func (c Channel) Prefix() string { return AssetsPrefix + ChannelsFolder + "/" + string(c) + "/" }

// Playlist is the channel's media playlist of a rendition.
func (c Channel) Playlist(name string) string { return c.Prefix() + name + ".m3u8" }

// Master is the channel's master playlist.
func (c Channel) Master() string { return c.Prefix() + "master.m3u8" }

// State is the channel's state (the relay's: which publish is on).
func (c Channel) State() string { return c.Prefix() + "channel.json" }

// ChannelBase is the way from a channel's folder to asset id's, which a
// channel playlist puts in front of the asset's own URIs.
func ChannelBase(id string) string { return "../../" + id + "/" }
