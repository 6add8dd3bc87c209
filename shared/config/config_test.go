package config

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestSecret(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "s3-secret-key"), []byte("fromfile\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SEGFLOW_SECRETS_DIR", dir)
	t.Setenv("ONLY_ENV", "fromenv")
	t.Setenv("S3_SECRET_KEY", "shadowed")

	tests := []struct {
		name    string
		want    string
		wantErr bool
	}{
		{"s3-secret-key", "fromfile", false},
		{"only-env", "fromenv", false},
		{"missing", "", true},
		{"../etc/passwd", "", true},
		{"", "", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Secret(tc.name)
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Fatalf("Secret(%q) = %q, %v; want %q, err=%v", tc.name, got, err, tc.want, tc.wantErr)
			}
		})
	}
}

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		bad  bool
	}{
		{"90s", 90 * time.Second, false},
		{"15m", 15 * time.Minute, false},
		{"2", 2 * time.Second, false},
		{"0.5", 500 * time.Millisecond, false},
		{"soon", 0, true},
	}
	for _, tc := range tests {
		got, err := ParseDuration(tc.in)
		if (err != nil) != tc.bad || got != tc.want {
			t.Errorf("ParseDuration(%q) = %v, %v", tc.in, got, err)
		}
	}
}

func TestFloat(t *testing.T) {
	for _, tc := range []struct {
		v       string
		want    float64
		wantErr bool
	}{
		{"", 0.9, false},
		{"0.95", 0.95, false},
		{"0", 0, false},
		{"1.5", 0, true},
		{"-0.1", 0, true},
		{"NaN", 0, true},
		{"high", 0, true},
	} {
		t.Setenv("SEGFLOW_TEST_FLOAT", tc.v)
		got, err := Float("SEGFLOW_TEST_FLOAT", 0.9, 0, 1)
		if (err != nil) != tc.wantErr || (!tc.wantErr && got != tc.want) {
			t.Errorf("%q: %v, %v", tc.v, got, err)
		}
	}
}
