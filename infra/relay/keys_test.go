package relay

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLoadKeys(t *testing.T) {
	tests := []struct {
		name, file string
		want       map[string]StreamOptions // by stream; nil: an error
		err        string
	}{
		{"plain", "# comment\ndemo=abcdefgh\n", map[string]StreamOptions{"demo": {}}, ""},
		{"options", "show=abcdefgh dvr=2m reconnect=45s packaging=cmaf\nnews=12345678 reconnect=5s packaging=ts\n",
			map[string]StreamOptions{"show": {DVR: 2 * time.Minute, Reconnect: 45 * time.Second, Packaging: "cmaf"}, "news": {Reconnect: 5 * time.Second}}, ""},
		{"private", "vip=abcdefgh private dvr=1m\n", map[string]StreamOptions{"vip": {Private: true, DVR: time.Minute}}, ""},
		{"private with a value", "vip=abcdefgh private=yes\n", nil, "private takes no value"},
		{"unknown packaging", "demo=abcdefgh packaging=webm\n", nil, "want packaging=cmaf"},
		{"short key", "demo=short\n", nil, "8+ characters"},
		{"bad name", "Demo=abcdefgh\n", nil, "name=key"},
		{"unknown option", "demo=abcdefgh window=6\n", nil, `unknown option "window"`},
		{"not a duration", "demo=abcdefgh dvr=lots\n", nil, "dvr=lots"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "keys")
			if err := os.WriteFile(path, []byte(tc.file), 0o600); err != nil {
				t.Fatal(err)
			}
			k, err := LoadKeys(path)
			if tc.want == nil {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for name, opts := range tc.want {
				if got := k.Options(name); got != opts {
					t.Errorf("%s options %+v, want %+v", name, got, opts)
				}
			}
			if name, ok := k.Stream("abcdefgh"); tc.name == "plain" && (!ok || name != "demo") {
				t.Errorf("Stream = %q %v", name, ok)
			}
		})
	}
}
