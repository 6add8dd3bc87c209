package media

import (
	"strings"
	"testing"
	"time"
)

func TestCutTimes(t *testing.T) {
	for _, c := range []struct {
		offset, duration float64
		target           time.Duration
		want             string
	}{
		{0, 13, 4 * time.Second, "2.000,6.000,10.000,14.000"},
		{1.4, 5, 6 * time.Second, "3.400,9.400"},
		{0, 0.5, 6 * time.Second, "2.000"},
	} {
		if got := cutTimes(c.offset, c.duration, c.target); got != c.want {
			t.Errorf("cutTimes(%v, %v, %v) = %s, want %s", c.offset, c.duration, c.target, got, c.want)
		}
	}
	// The longest file listed stays one argument the kernel takes.
	if n := len(cutTimes(1.4, maxListed.Seconds(), 6*time.Second)); n >= 128<<10 {
		t.Errorf("cuts of %v: %d bytes, over MAX_ARG_STRLEN", maxListed, n)
	}
	if !strings.HasPrefix(cutTimes(0, 60, time.Second), "2.000,3.000,") {
		t.Error("a 1 s target does not follow the lead cut")
	}
}
