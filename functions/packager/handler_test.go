package function

import "testing"

func TestMonotonicPlaylists(t *testing.T) {
	pl := func(n int, end bool) []byte {
		b := "#EXTM3U\n"
		for i := 0; i < n; i++ {
			b += "#EXTINF:4.000,\nx.ts\n"
		}
		if end {
			b += "#EXT-X-ENDLIST\n"
		}
		return []byte(b)
	}
	tests := []struct {
		name      string
		old, next []byte
		write     bool
	}{
		{"first", nil, pl(1, false), true},
		{"more", pl(2, false), pl(3, false), true},
		{"fewer never", pl(3, false), pl(2, false), false},
		{"same", pl(3, false), pl(3, false), false},
		{"now ended", pl(3, false), pl(3, true), true},
		{"ended stays", pl(3, true), pl(3, false), false},
	}
	for _, tc := range tests {
		got, _ := monotonic(tc.next)(tc.old)
		if (got != nil) != tc.write {
			t.Errorf("%s: write=%v", tc.name, got != nil)
		}
	}
	if n := listedIn([]byte("#EXTM3U\n" + listedComment + "17\n")); n != 17 {
		t.Fatalf("listedIn = %d", n)
	}
	if n := listedIn([]byte("#EXTM3U\n")); n != -1 {
		t.Fatalf("listedIn without comment = %d", n)
	}
}
