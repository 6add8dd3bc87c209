package media

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"strconv"
	"strings"
)

// Errors that say why a file is not usable media; split reports them.
var (
	ErrEmpty       = errors.New("file is empty")
	ErrNotMedia    = errors.New("not a media file")
	ErrUnsupported = errors.New("unsupported codec")
	ErrTruncated   = errors.New("truncated or corrupt media")
)

// Info is what segflow needs to know about a media file.
type Info struct {
	Format   string  // ffprobe's format_name
	Duration float64 // seconds
	BitRate  int64
	Video    *VideoStream
	Audio    *AudioStream // the first of Audios
	// Audios are every audio stream, in the file's order.
	Audios []AudioStream
	// StartTime is the container's start time in seconds.
	StartTime float64
	// CoverArt says the file carries a still picture (an MP3's or M4A's
	// album art, ffprobe's attached_pic): an audio-only asset's poster.
	CoverArt bool
}

// AudioOnly says the file has sound and no moving picture: a podcast or
// a song, which becomes an audio-only asset.
func (i *Info) AudioOnly() bool { return i.Video == nil && i.Audio != nil }

// VideoStream describes the first video stream.
type VideoStream struct {
	Codec   string
	Profile string
	Width   int
	Height  int
	// DisplayWidth and DisplayHeight are the size it is shown at: a
	// non-square sample aspect ratio applied, and the two swapped for a
	// quarter-turn Rotation (DisplayHeight 0: Height).
	DisplayWidth  int
	DisplayHeight int
	// Rotation is how far the picture is turned counterclockwise for
	// display (0, 90, 180 or 270): phones film upright into a landscape
	// frame and say so in the display matrix, which the source segments'
	// MPEG-TS does not carry. RotateFilter puts it upright.
	Rotation int
	// Interlaced: the stream says its frames hold two fields (field
	// order tt, bb, tb or bt).
	Interlaced bool
	// Transfer is the stream's color transfer (smpte2084 for HDR10's PQ,
	// arib-std-b67 for HLG, bt709, ...), "" when it does not say.
	Transfer string
	// CFR is the constant rate a variable-rate stream is made at (FPS
	// then says the same); 0 for a constant-rate stream.
	CFR float64
	// Crop, "w:h:x:y", is set by Cropped: the part of the frame shown.
	Crop      string
	FPS       float64
	PixFmt    string
	Duration  float64
	StartTime float64
	BitRate   int64
}

// AudioStream describes the first audio stream.
type AudioStream struct {
	Codec      string
	Profile    string // ffprobe's: "LC", "HE-AAC", ... for AAC
	SampleRate int
	Channels   int
	Bitrate    int // bits/s; 0 when the container does not say
	StartTime  float64
	Duration   float64
	// Language (ISO 639, "" when untagged) and Title are the stream's
	// tags: what a player shows in its audio menu.
	Language, Title string
}

type ffprobeOut struct {
	Streams []struct {
		CodecType    string `json:"codec_type"`
		CodecName    string `json:"codec_name"`
		Profile      string `json:"profile"`
		Width        int    `json:"width"`
		Height       int    `json:"height"`
		SampleAspect string `json:"sample_aspect_ratio"`
		PixFmt       string `json:"pix_fmt"`
		FieldOrder   string `json:"field_order"`
		ColorTrans   string `json:"color_transfer"`
		AvgFrameRate string `json:"avg_frame_rate"`
		RFrameRate   string `json:"r_frame_rate"`
		SampleRate   string `json:"sample_rate"`
		Channels     int    `json:"channels"`
		Tags         struct {
			Language string `json:"language"`
			Title    string `json:"title"`
		} `json:"tags"`
		Duration    string `json:"duration"`
		StartTime   string `json:"start_time"`
		BitRate     string `json:"bit_rate"`
		Disposition struct {
			AttachedPic int `json:"attached_pic"`
		} `json:"disposition"`
		SideData []struct {
			Type     string  `json:"side_data_type"`
			Rotation float64 `json:"rotation"`
		} `json:"side_data_list"`
	} `json:"streams"`
	Format struct {
		FormatName string `json:"format_name"`
		Duration   string `json:"duration"`
		BitRate    string `json:"bit_rate"`
		StartTime  string `json:"start_time"`
	} `json:"format"`
}

// referencing are the demuxers that open the files or URLs their input
// names.
var referencing = map[string]bool{"hls": true, "dash": true, "concat": true, "sdp": true, "imf": true, "rtsp": true}

// referenceHeads start the text formats whose demuxers open what they
// name: HLS, ffconcat, DASH and IMF (XML), SDP.
var referenceHeads = []string{"#EXTM3U", "ffconcat", "<?xml", "<MPD", "v=0"}

// refuseReferences reads the head of path (a file or an http(s) URL) and
// refuses it when it is one of referenceHeads.
func refuseReferences(ctx context.Context, path string) error {
	var head []byte
	if strings.HasPrefix(path, "http://") || strings.HasPrefix(path, "https://") {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, path, nil)
		if err != nil {
			return err
		}
		req.Header.Set("Range", "bytes=0-511")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return fmt.Errorf("read the head: %w", err)
		}
		defer resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			return fmt.Errorf("read the head: %s", resp.Status)
		}
		head, _ = io.ReadAll(io.LimitReader(resp.Body, 512))
	} else {
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		head = make([]byte, 512)
		n, _ := io.ReadFull(f, head)
		head = head[:n]
	}
	text := strings.TrimLeft(strings.TrimPrefix(string(head), "\ufeff"), " \t\r\n")
	for _, h := range referenceHeads {
		if strings.HasPrefix(text, h) {
			return fmt.Errorf("%w: it starts with %q, a playlist or description that names other media", ErrNotMedia, h)
		}
	}
	return nil
}

// decodable lists the video codecs the ladder takes as input.
var decodable = map[string]bool{"h264": true, "hevc": true, "vp8": true, "vp9": true, "av1": true,
	"mpeg2video": true, "mpeg4": true, "prores": true, "mjpeg": true, "dnxhd": true, "theora": true}

// Probe reads a file's streams with ffprobe. It fails with ErrEmpty,
// ErrNotMedia or ErrUnsupported (wrapped) for files the pipeline cannot
// take. A file with audio and no video is fine: Info.AudioOnly.
func Probe(ctx context.Context, path string) (*Info, error) {
	// A playlist or a stream description makes ffmpeg open what it names:
	// other files on this machine, or any URL the function can reach.
	// They are refused before ffprobe reads a byte of them.
	if err := refuseReferences(ctx, path); err != nil {
		return nil, fmt.Errorf("probe %s: %w", path, err)
	}
	out, err := run(ctx, "ffprobe", "-v", "error", "-print_format", "json", "-show_format", "-show_streams", path)
	if err != nil {
		var me *Error
		if errors.As(err, &me) && strings.Contains(me.Stderr, "Invalid data found") {
			return nil, fmt.Errorf("probe %s: %w", path, ErrNotMedia)
		}
		if errors.As(err, &me) && strings.Contains(me.Stderr, "moov atom not found") {
			return nil, fmt.Errorf("probe %s: %w (moov atom not found)", path, ErrTruncated)
		}
		return nil, fmt.Errorf("probe %s: %w: %v", path, ErrNotMedia, err)
	}
	var p ffprobeOut
	if err := json.Unmarshal(out, &p); err != nil {
		return nil, fmt.Errorf("probe %s: %w", path, err)
	}
	info := &Info{Format: p.Format.FormatName, Duration: num(p.Format.Duration), BitRate: int64(num(p.Format.BitRate)),
		StartTime: num(p.Format.StartTime)}
	switch f := info.Format; {
	case referencing[f]:
		return nil, fmt.Errorf("probe %s: %w: a %s playlist or description, which names other media", path, ErrNotMedia, f)
	case f == "image2" || strings.HasSuffix(f, "_pipe"):
		return nil, fmt.Errorf("probe %s: %w: a still image (%s), not a video", path, ErrNotMedia, f)
	}
	for _, s := range p.Streams {
		switch {
		case s.CodecType == "video" && s.Disposition.AttachedPic != 0:
			info.CoverArt = true
		case s.CodecType == "video" && info.Video == nil && s.Disposition.AttachedPic == 0:
			fps := rate(s.AvgFrameRate)
			if fps == 0 || fps > 240 {
				fps = rate(s.RFrameRate)
			}
			// Phones record at a variable rate: frames come late or not at
			// all in low light, so the mean rate is under the base one.
			// Renditions are made at a constant, standard rate.
			cfr := 0.0
			if r := rate(s.RFrameRate); fps > 0 && r > 0 && math.Abs(fps/r-1) > 0.01 {
				cfr = standardRate(r, fps)
				fps = cfr
			}
			v := &VideoStream{Codec: s.CodecName, Profile: s.Profile, Width: s.Width, Height: s.Height,
				DisplayWidth: s.Width, FPS: fps, PixFmt: s.PixFmt, Duration: num(s.Duration),
				StartTime: num(s.StartTime), BitRate: int64(num(s.BitRate))}
			if sar := rate(strings.Replace(s.SampleAspect, ":", "/", 1)); sar > 0 && sar != 1 {
				v.DisplayWidth = int(math.Round(float64(s.Width) * sar))
			}
			v.DisplayHeight = s.Height
			for _, sd := range s.SideData {
				if sd.Type == "Display Matrix" {
					v.Rotation = quarterTurns(sd.Rotation)
				}
			}
			v.CFR = cfr
			v.Interlaced = s.FieldOrder == "tt" || s.FieldOrder == "bb" || s.FieldOrder == "tb" || s.FieldOrder == "bt"
			v.Transfer = s.ColorTrans
			if v.Rotation == 90 || v.Rotation == 270 {
				v.DisplayWidth, v.DisplayHeight = v.DisplayHeight, v.DisplayWidth
			}
			info.Video = v
		case s.CodecType == "audio":
			sr, _ := strconv.Atoi(s.SampleRate)
			lang := s.Tags.Language
			if lang == "und" {
				lang = ""
			}
			info.Audios = append(info.Audios, AudioStream{Codec: s.CodecName, Profile: s.Profile, SampleRate: sr, Channels: s.Channels,
				Bitrate: int(num(s.BitRate)), StartTime: num(s.StartTime), Duration: num(s.Duration), Language: lang, Title: s.Tags.Title})
			info.Audio = &info.Audios[0]
		}
	}
	// A text file ffprobe reads as some exotic format still has no streams.
	if info.Video == nil && info.Audio == nil {
		return nil, fmt.Errorf("probe %s: %w (format %q, no audio or video)", path, ErrNotMedia, info.Format)
	}
	if info.Video == nil {
		return info, nil
	}
	if !decodable[info.Video.Codec] || info.Video.Width <= 0 || info.Video.Height <= 0 {
		return nil, fmt.Errorf("probe %s: %w: video codec %q %dx%d", path, ErrUnsupported, info.Video.Codec, info.Video.Width, info.Video.Height)
	}
	if info.Video.FPS <= 0 {
		info.Video.FPS = 30
	}
	return info, nil
}

// Picture is what makes the viewer's picture of this stream's decoded
// frames: upright, deinterlaced, HDR mapped to SDR.
func (v *VideoStream) Picture() Picture {
	p := Picture{Rotation: v.Rotation, Interlaced: v.Interlaced, Crop: v.Crop, CFR: v.CFR}
	switch v.Transfer {
	case "smpte2084":
		p.HDR = "pq"
	case "arib-std-b67":
		p.HDR = "hlg"
	}
	return p
}

// CheckIntegrity reads every packet of the file (no decoding) and fails
// with ErrTruncated when the container ends early or is damaged.
func CheckIntegrity(ctx context.Context, path string) error {
	_, err := run(ctx, "ffmpeg", "-hide_banner", "-nostdin", "-v", "error", "-xerror", "-i", path, "-map", "0", "-c", "copy", "-f", "null", "-")
	if err != nil {
		return fmt.Errorf("check %s: %w: %v", path, ErrTruncated, err)
	}
	return nil
}

// quarterTurns normalizes ffprobe's display-matrix rotation (degrees,
// counterclockwise, -180..180) to 0, 90, 180 or 270; other angles, which
// no camera writes, count as none.
func quarterTurns(deg float64) int {
	d := int(math.Round(deg)) % 360
	if d < 0 {
		d += 360
	}
	switch d {
	case 90, 180, 270:
		return d
	}
	return 0
}

// RotateFilter is the ffmpeg filter that shows a picture turned rotation
// degrees counterclockwise (VideoStream.Rotation) upright, as ffmpeg's own
// autorotate does; "" for none.
func RotateFilter(rotation int) string {
	switch rotation {
	case 90:
		return "transpose=cclock"
	case 180:
		return "hflip,vflip"
	case 270:
		return "transpose=clock"
	}
	return ""
}

// standardRates are the frame rates cameras and players use.
var standardRates = []float64{24000.0 / 1001, 24, 25, 30000.0 / 1001, 30, 50, 60000.0 / 1001, 60}

// standardRate is the constant rate for a variable-rate stream whose
// base rate (ffprobe's r_frame_rate) is base and mean rate mean: the base
// when it is a standard rate, else the standard rate nearest the mean.
func standardRate(base, mean float64) float64 {
	best := standardRates[0]
	for _, r := range standardRates {
		if math.Abs(base/r-1) < 0.001 {
			return r
		}
		if math.Abs(mean-r) < math.Abs(mean-best) {
			best = r
		}
	}
	return best
}

func num(s string) float64 {
	f, _ := strconv.ParseFloat(s, 64)
	return f
}

// rate parses "30000/1001".
func rate(s string) float64 {
	n, d, ok := strings.Cut(s, "/")
	if !ok {
		return num(s)
	}
	den := num(d)
	if den == 0 {
		return 0
	}
	return num(n) / den
}
