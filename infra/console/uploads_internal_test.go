package console

import (
	"strings"
	"testing"
)

func TestUploadKey(t *testing.T) {
	tests := []struct {
		name, key, err string
	}{
		{"My Film (final).mp4", "uploads/My Film _final_.mp4", ""},
		{"../../etc/passwd", "uploads/passwd", ""},
		{"...", "", "nothing usable"},
		{strings.Repeat("a", 3000) + ".mp4", "", "at most 255"},
	}
	for _, tc := range tests {
		key, err := uploadKey(tc.name)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("uploadKey(%.20q) = %q, %v; want an error saying %q", tc.name, key, err, tc.err)
			}
			continue
		}
		if err != nil || key != tc.key {
			t.Errorf("uploadKey(%q) = %q, %v; want %q", tc.name, key, err, tc.key)
		}
	}
}
