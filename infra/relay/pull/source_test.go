package pull

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadFile(t *testing.T) {
	tests := []struct {
		name, file string
		want       int // sources; -1: an error
		err        string
	}{
		{"every kind", "# comment\ncam rtmp://h/live/k\nflv https://h/s.flv\nsrt srt://h:9000?streamid=x\nhls http://h/live.m3u8\n", 4, ""},
		{"empty", "", 0, ""},
		{"not FLV", "web http://h/page.html\n", -1, "must end in .flv"},
		{"other scheme", "f file:///etc/passwd\n", -1, "scheme"},
		{"bad name", "Cam rtmp://h/live/k\n", -1, "name"},
		{"twice", "cam rtmp://h/a\ncam rtmp://h/b\n", -1, "pulled twice"},
		{"three fields", "cam rtmp://h/a extra\n", -1, `want "name url"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "pulls")
			if err := os.WriteFile(path, []byte(tc.file), 0o644); err != nil {
				t.Fatal(err)
			}
			got, err := LoadFile(path)
			if tc.want < 0 {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || len(got) != tc.want {
				t.Fatalf("sources = %+v, %v", got, err)
			}
		})
	}
	if got, err := LoadFile(filepath.Join(t.TempDir(), "none")); err != nil || got != nil {
		t.Errorf("missing file: %v %v", got, err)
	}
}
