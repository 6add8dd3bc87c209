package packager

import (
	"bytes"
	"context"
	"testing"

	"github.com/segflow/segflow/shared/stage"
	"github.com/segflow/segflow/shared/storage"
	"github.com/segflow/segflow/shared/testenv"
)

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
		if kept := behind(countRank, tc.next)(tc.old); kept == tc.write {
			t.Errorf("%s: write=%v", tc.name, !kept)
		}
	}
}

// TestPutDecidesFromListing writes playlists the way a rebuild does, from a
// listing taken before, against a real MinIO: the listed rank decides
// without a read, a stale listing falls back to read-compare-write, and
// nothing ever replaces a playlist by one that reaches less.
func TestPutDecidesFromListing(t *testing.T) {
	m := testenv.StartMinIO(t)
	bucket := m.Bucket(t, "media")
	ctx := context.Background()
	e := &stage.Env{Name: name, Store: m.Client}
	pl := func(n int) []byte {
		b := "#EXTM3U\n"
		for i := 0; i < n; i++ {
			b += "#EXTINF:4.000,\nx.ts\n"
		}
		return []byte(b)
	}
	const key = "assets/a1/720p.m3u8"
	listed := func() storage.Info {
		objs, err := m.Client.List(ctx, bucket, "assets/a1/", storage.ListOptions{Recursive: true, WithMetadata: true})
		if err != nil || len(objs) != 1 {
			t.Fatalf("list = %v, %v", objs, err)
		}
		return objs[0]
	}
	write := func(from storage.Info, body []byte) {
		t.Helper()
		rk := rank{n: bytes.Count(body, []byte("#EXTINF"))}
		if err := put(ctx, e, bucket, from, key, body, rk, func(old rank) bool { return !rk.ahead(old) }, behind(countRank, body)); err != nil {
			t.Fatal(err)
		}
	}
	stored := func() int {
		b, err := m.Client.GetBytes(ctx, bucket, key)
		if err != nil {
			t.Fatal(err)
		}
		return bytes.Count(b, []byte("#EXTINF"))
	}

	write(storage.Info{}, pl(2)) // none listed: create
	if n := stored(); n != 2 {
		t.Fatalf("created with %d segments", n)
	}
	two := listed()
	if two.Meta(rankMeta) != "2" {
		t.Fatalf("rank metadata = %q", two.Meta(rankMeta))
	}
	write(two, pl(3)) // ahead of the listed copy: written on its ETag
	if n := stored(); n != 3 {
		t.Fatalf("after a longer playlist: %d segments", n)
	}
	three := listed()
	write(three, pl(1)) // behind the listed rank: left alone, no read
	write(two, pl(2))   // stale listing: same rank as it showed, left alone
	if n := stored(); n != 3 {
		t.Fatalf("a shorter playlist replaced the stored one: %d segments", n)
	}
	// Stale listings whose copy has moved on: the write on the old ETag
	// fails, and read-compare-write decides on what is stored.
	write(two, pl(4)) // further than stored: written
	if n := stored(); n != 4 {
		t.Fatalf("after a stale listing and a longer playlist: %d segments", n)
	}
	write(two, pl(3)) // ahead of what it listed, behind what is stored: kept
	if n := stored(); n != 4 {
		t.Fatalf("a stale listing took segments away: %d", n)
	}
	if got := listed().Meta(rankMeta); got != "4" {
		t.Fatalf("rank metadata after the fallback = %q", got)
	}
	// A playlist someone else wrote without a rank (the relay ends channel
	// playlists so): its content decides.
	if err := m.Client.PutBytes(ctx, bucket, key, pl(5), storage.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	write(listed(), pl(4)) // behind what it lists: kept
	if n := stored(); n != 5 {
		t.Fatalf("a shorter playlist replaced one without a rank: %d segments", n)
	}
	write(listed(), pl(6))
	if n := stored(); n != 6 || listed().Meta(rankMeta) != "6" {
		t.Fatalf("after a longer playlist over one without a rank: %d segments, rank %q", n, listed().Meta(rankMeta))
	}
}
