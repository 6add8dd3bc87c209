package testenv

import (
	"bytes"
	"os"
	"testing"
)

// SameFile says whether files a and b hold the same bytes; a file that
// cannot be read fails the test.
func SameFile(t testing.TB, a, b string) bool {
	t.Helper()
	x, err := os.ReadFile(a)
	if err != nil {
		t.Fatal(err)
	}
	y, err := os.ReadFile(b)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Equal(x, y)
}
