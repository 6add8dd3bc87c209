package relay

import (
	"bufio"
	"crypto/subtle"
	"fmt"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/segflow/segflow/shared/asset"
)

// Keys maps stream keys to stream names. The file holds one
// "name=key [dvr=<duration>] [reconnect=<duration>] [packaging=cmaf]
// [private]" per line (# comments allowed), as mounted from a secret.
type Keys struct {
	byName map[string]keyEntry
}

type keyEntry struct {
	key  string
	opts StreamOptions
}

// StreamOptions are a stream's own settings from its keys line; zero
// values take the relay's.
type StreamOptions struct {
	// DVR is how far back the stream's channel playlists reach.
	DVR time.Duration
	// Reconnect is how long a stopped stream waits for its publisher to
	// come back before its channel ends.
	Reconnect time.Duration
	// Packaging is asset.PackagingCMAF for fMP4 renditions with a live
	// DASH manifest beside the HLS master; empty for MPEG-TS.
	Packaging string
	// Private makes every publish a private asset (private_live-<name>-
	// <start>, which the bucket does not serve anonymously) with no public
	// channel playlists and no LL-HLS rendition, and lets WebRTC viewers
	// in only with a signed, expiring token (playback.StreamSubject).
	Private bool
}

var streamName = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,40}$`)

// LoadKeys reads a stream-keys file.
func LoadKeys(path string) (*Keys, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("stream keys: %w", err)
	}
	defer f.Close()
	k := &Keys{byName: map[string]keyEntry{}}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Fields(line)
		name, key, ok := strings.Cut(fields[0], "=")
		if !ok || !streamName.MatchString(name) || len(key) < 8 {
			return nil, fmt.Errorf("stream keys %s:%d: want name=key (name: a-z 0-9 -, key: 8+ characters, no spaces)", path, n)
		}
		e := keyEntry{key: key}
		for _, f := range fields[1:] {
			opt, val, _ := strings.Cut(f, "=")
			var dst *time.Duration
			switch opt {
			case "dvr":
				dst = &e.opts.DVR
			case "reconnect":
				dst = &e.opts.Reconnect
			case "packaging":
				if val != asset.PackagingCMAF && val != asset.PackagingTS {
					return nil, fmt.Errorf("stream keys %s:%d: %s: want packaging=cmaf or packaging=ts", path, n, f)
				}
				if val == asset.PackagingCMAF {
					e.opts.Packaging = val
				}
				continue
			case "private":
				if val != "" {
					return nil, fmt.Errorf("stream keys %s:%d: %s: private takes no value", path, n, f)
				}
				e.opts.Private = true
				continue
			default:
				return nil, fmt.Errorf("stream keys %s:%d: unknown option %q (dvr, reconnect, packaging, private)", path, n, opt)
			}
			d, err := time.ParseDuration(val)
			if err != nil || d < 0 {
				return nil, fmt.Errorf("stream keys %s:%d: %s: want a duration such as 90s", path, n, f)
			}
			*dst = d
		}
		k.byName[name] = e
	}
	return k, sc.Err()
}

// Stream returns the stream a key publishes, comparing in constant time.
func (k *Keys) Stream(key string) (string, bool) {
	found := ""
	for name, want := range k.byName {
		if subtle.ConstantTimeCompare([]byte(key), []byte(want.key)) == 1 {
			found = name
		}
	}
	return found, found != ""
}

// Options are stream name's own settings.
func (k *Keys) Options(name string) StreamOptions { return k.byName[name].opts }
