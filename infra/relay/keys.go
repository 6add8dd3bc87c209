package relay

import (
	"bufio"
	"crypto/subtle"
	"fmt"
	"os"
	"regexp"
	"strings"
)

// Keys maps stream keys to stream names. The file holds one "name=key" per
// line (# comments allowed), as mounted from a secret.
type Keys struct {
	byName map[string]string
}

var streamName = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,40}$`)

// LoadKeys reads a stream-keys file.
func LoadKeys(path string) (*Keys, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("stream keys: %w", err)
	}
	defer f.Close()
	k := &Keys{byName: map[string]string{}}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, key, ok := strings.Cut(line, "=")
		name, key = strings.TrimSpace(name), strings.TrimSpace(key)
		if !ok || !streamName.MatchString(name) || len(key) < 8 {
			return nil, fmt.Errorf("stream keys %s:%d: want name=key (name: a-z 0-9 -, key: 8+ characters)", path, n)
		}
		k.byName[name] = key
	}
	return k, sc.Err()
}

// Stream returns the stream a key publishes, comparing in constant time.
func (k *Keys) Stream(key string) (string, bool) {
	found := ""
	for name, want := range k.byName {
		if subtle.ConstantTimeCompare([]byte(key), []byte(want)) == 1 {
			found = name
		}
	}
	return found, found != ""
}
