package console

import (
	"strings"
	"testing"
)

func TestUploadKey(t *testing.T) {
	tests := []struct {
		name    string
		private bool
		key     string
		err     string
	}{
		{"My Film (final).mp4", false, "uploads/My Film _final_.mp4", ""},
		{"../../etc/passwd", false, "uploads/passwd", ""},
		{"private/x.mp4", false, "uploads/x.mp4", ""}, // a name cannot make it private
		{"x.mp4", true, "uploads/private/x.mp4", ""},
		{"../../x.mp4", true, "uploads/private/x.mp4", ""},
		{"...", false, "", "nothing usable"},
		{strings.Repeat("a", 3000) + ".mp4", false, "", "at most 255"},
	}
	for _, tc := range tests {
		key, err := uploadKey(tc.name, tc.private)
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
