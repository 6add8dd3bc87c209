// Package pull feeds the relay streams it fetches instead of streams
// pushed to it: an RTMP server played, an HTTP-FLV URL, an HLS playlist
// followed, an SRT listener called. Each source runs as a Puller that connects, feeds the same
// publish.Host the protocol servers do (so segmenting, spooling and
// everything downstream are unchanged) and, when the source drops or
// cannot be reached, tries again with a growing, jittered wait.
package pull

import (
	"bufio"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"strings"
)

// Source is one stream to pull: its stream name (as a stream key's line
// names one) and where to fetch it.
type Source struct {
	Name string `json:"name"`
	URL  string `json:"url"`
}

var streamName = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,40}$`)

// Check says whether a source can be pulled: a valid stream name and a
// URL of a kind this package fetches.
func (s Source) Check() error {
	if !streamName.MatchString(s.Name) {
		return fmt.Errorf("pull %q: name: want a-z 0-9 - (up to 41)", s.Name)
	}
	u, err := url.Parse(s.URL)
	if err != nil || u.Host == "" {
		return fmt.Errorf("pull %s: URL %q: want rtmp://, srt://, http(s)://...flv or http(s)://...m3u8", s.Name, s.URL)
	}
	if _, err := kindOf(u); err != nil {
		return fmt.Errorf("pull %s: %w", s.Name, err)
	}
	return nil
}

// kind is how a source is fetched.
type kind string

const (
	kindRTMP kind = "rtmp"
	kindSRT  kind = "srt"
	kindFLV  kind = "http-flv"
	kindHLS  kind = "hls"
)

func kindOf(u *url.URL) (kind, error) {
	switch u.Scheme {
	case "rtmp", "rtmps":
		return kindRTMP, nil
	case "srt":
		return kindSRT, nil
	case "http", "https":
		if strings.HasSuffix(u.Path, ".flv") {
			return kindFLV, nil
		}
		if strings.HasSuffix(u.Path, ".m3u8") {
			return kindHLS, nil
		}
		return "", fmt.Errorf("%s: an http(s) source must end in .flv (HTTP-FLV) or .m3u8 (HLS)", u.Redacted())
	}
	return "", fmt.Errorf("%s: scheme %q: want rtmp, rtmps, srt, http or https", u.Redacted(), u.Scheme)
}

// LoadFile reads a pulls file: "name url" per line, # comments allowed.
// A file that does not exist holds no sources.
func LoadFile(path string) ([]Source, error) {
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("pulls: %w", err)
	}
	defer f.Close()
	var out []Source
	seen := map[string]bool{}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Fields(line)
		if len(fields) != 2 {
			return nil, fmt.Errorf("pulls %s:%d: want \"name url\"", path, n)
		}
		s := Source{Name: fields[0], URL: fields[1]}
		if err := s.Check(); err != nil {
			return nil, fmt.Errorf("pulls %s:%d: %w", path, n, err)
		}
		if seen[s.Name] {
			return nil, fmt.Errorf("pulls %s:%d: %s is pulled twice", path, n, s.Name)
		}
		seen[s.Name] = true
		out = append(out, s)
	}
	return out, sc.Err()
}
