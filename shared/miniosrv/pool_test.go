package miniosrv_test

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/segflow/segflow/shared/miniosrv"
	"github.com/segflow/segflow/shared/storage"
	"github.com/segflow/segflow/shared/testenv"
)

// TestPoolSurvivesAServerKilled runs MinIO distributed over four server
// processes and kills one (SIGKILL) between writes: what was written
// before reads back whole, writes go on while it is dead, and once it
// is back the pool reads everything from every server.
func TestPoolSurvivesAServerKilled(t *testing.T) {
	if testing.Short() {
		t.Skip("four MinIO processes")
	}
	ctx := context.Background()
	var addrs []string
	for range 4 {
		addrs = append(addrs, testenv.FreeAddr(t))
	}
	o := miniosrv.Options{DataDir: t.TempDir(), RootUser: "pooltest", RootPassword: "pooltest-secret"}
	servers, err := miniosrv.OpenPool(ctx, o, addrs)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, s := range servers {
			s.Close()
		}
	})
	client := func(s *miniosrv.Server) *storage.Client {
		c, err := storage.New(storage.Options{Endpoint: s.Endpoint(), AccessKey: o.RootUser, SecretKey: o.RootPassword})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	c := client(servers[0])
	if err := c.EnsureBucket(ctx, "media"); err != nil {
		t.Fatal(err)
	}
	body := func(i int) []byte { return bytes.Repeat([]byte(fmt.Sprintf("segment %03d ", i)), 20000) }
	put := func(from, to int) {
		for i := from; i < to; i++ {
			if err := c.PutBytes(ctx, "media", fmt.Sprintf("assets/a/720p/%05d.ts", i), body(i), storage.PutOptions{}); err != nil {
				t.Fatalf("put %d: %v", i, err)
			}
		}
	}
	// A read right after a server died may find too few drives for a
	// moment, which MinIO answers as not found (CI, under load: once,
	// for the first object written after the kill): each read is tried
	// for up to 10 s, and a late one is logged.
	check := func(s *miniosrv.Server, n int) {
		c := client(s)
		for i := range n {
			start := time.Now()
			for {
				got, err := c.GetBytes(ctx, "media", fmt.Sprintf("assets/a/720p/%05d.ts", i))
				if err == nil && bytes.Equal(got, body(i)) {
					break
				}
				if time.Since(start) > 10*time.Second {
					t.Fatalf("get %d from %s: %d bytes, %v", i, s.Endpoint(), len(got), err)
				}
				time.Sleep(100 * time.Millisecond)
			}
			if d := time.Since(start); d > time.Second {
				t.Logf("get %d from %s took %s", i, s.Endpoint(), d.Round(time.Millisecond))
			}
		}
	}
	put(0, 10)
	killed := servers[2]
	killed.Kill()
	put(10, 20)
	check(servers[0], 20)
	back, err := miniosrv.Open(ctx, killed.Options())
	if err != nil {
		t.Fatal(err)
	}
	servers[2] = back
	deadline := time.Now().Add(30 * time.Second)
	for _, s := range servers {
		for {
			// Each server serves the whole pool, the one killed too.
			_, err := client(s).GetBytes(ctx, "media", "assets/a/720p/00019.ts")
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("server %s after the restart: %v", s.Endpoint(), err)
			}
			time.Sleep(200 * time.Millisecond)
		}
		check(s, 20)
	}
}
