package spool

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segflow/segflow/shared/storage"
	"github.com/segflow/segflow/shared/testenv"
)

// A spool that could not upload keeps its items on disk; the next one
// opened on the folder uploads them in order with their metadata, and
// drops a damaged item without stopping.
func TestSpoolCarriesItemsOverARestart(t *testing.T) {
	dir := t.TempDir()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	down, err := storage.New(storage.Options{Endpoint: testenv.FreeAddr(t), AccessKey: "x", SecretKey: "y"})
	if err != nil {
		t.Fatal(err)
	}
	first, err := Open(dir, "media", down, 1<<20, log, nil)
	if err != nil {
		t.Fatal(err)
	}
	items := map[string][]byte{}
	for i := range 3 {
		key := fmt.Sprintf("assets/x/source/%05d.ts", i)
		data := bytes.Repeat([]byte{byte(i + 1)}, 1000*(i+1))
		items[key] = data
		if err := first.Add(Item{Key: key, ContentType: "video/mp2t", Metadata: map[string]string{"Segment-Index": fmt.Sprint(i)}}, data); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if err := first.Close(ctx); err == nil {
		t.Fatal("Close with storage down: want an error saying what is left")
	}
	// A damaged item between good ones: too short for its header.
	os.WriteFile(filepath.Join(dir, "000000002x.item"), []byte("x"), 0o644)

	m := testenv.StartMinIO(t)
	m.Bucket(t, "media")
	// The second spool reaches MinIO through a proxy that records the
	// order of the uploads.
	target, _ := url.Parse("http://" + m.Options.Endpoint)
	proxy := &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		r.SetURL(target)
		r.Out.Host = r.In.Host // signed by the client
	}}
	var mu sync.Mutex
	var puts []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut {
			mu.Lock()
			puts = append(puts, strings.TrimPrefix(r.URL.Path, "/media/"))
			mu.Unlock()
		}
		proxy.ServeHTTP(w, r)
	}))
	defer srv.Close()
	via := m.Options
	via.Endpoint = strings.TrimPrefix(srv.URL, "http://")
	viaProxy, err := storage.New(via)
	if err != nil {
		t.Fatal(err)
	}
	second, err := Open(dir, "media", viaProxy, 1<<20, log, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx2, cancel2 := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel2()
	if err := second.Close(ctx2); err != nil {
		t.Fatal(err)
	}
	for key, want := range items {
		got, err := m.Client.GetBytes(context.Background(), "media", key)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("%s: %d bytes, %v; want %d bytes", key, len(got), err, len(want))
		}
		info, err := m.Client.Stat(context.Background(), "media", key)
		if err != nil || info.Meta("Segment-Index") == "" || info.ContentType != "video/mp2t" {
			t.Fatalf("%s: metadata %+v %v", key, info, err)
		}
	}
	mu.Lock()
	order := strings.Join(puts, " ")
	mu.Unlock()
	if want := "assets/x/source/00000.ts assets/x/source/00001.ts assets/x/source/00002.ts"; order != want {
		t.Fatalf("uploaded in the order %q, want %q", order, want)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		left, _ := filepath.Glob(filepath.Join(dir, "*"))
		t.Fatalf("spool folder still holds %v", left)
	}
}
