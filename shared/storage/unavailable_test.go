package storage_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/segflow/segflow/shared/storage"
	"github.com/segflow/segflow/shared/testenv"
)

// TestIsUnavailable: a missing object is an answer about the request; a
// storage that is stopped or answers 503 (as an overloaded MinIO or a
// pool short of its quorum does) is unavailable.
func TestIsUnavailable(t *testing.T) {
	ctx := context.Background()
	m := testenv.StartMinIO(t)
	m.Bucket(t, "media")
	busy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(http.StatusServiceUnavailable)
		w.Write([]byte(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDownWrite</Code><Message>Resource requested is unwritable, please reduce your request rate</Message></Error>`))
	}))
	defer busy.Close()
	o := m.Options
	o.Endpoint = strings.TrimPrefix(busy.URL, "http://")
	overloaded, err := storage.New(o)
	if err != nil {
		t.Fatal(err)
	}
	get := func(c *storage.Client) error {
		_, err := c.GetBytes(ctx, "media", "assets/a/manifest.json")
		return err
	}
	// One attempt each: minio-go would retry a 503 and a refused dial
	// for seconds first.
	short, cancel := context.WithCancel(ctx)
	cancel()
	cases := []struct {
		name string
		err  error
		want bool
	}{
		{"missing object", get(m.Client), false},
		{"nil", nil, false},
		{"the caller's context ended", func() error { _, err := m.Client.GetBytes(short, "media", "x"); return err }(), false},
		{"503 SlowDownWrite", get(overloaded), true},
	}
	m.Stop()
	cases = append(cases, struct {
		name string
		err  error
		want bool
	}{"server stopped", get(m.Client), true})
	for _, c := range cases {
		if got := storage.IsUnavailable(c.err); got != c.want {
			t.Errorf("%s: IsUnavailable(%v) = %v, want %v", c.name, c.err, got, c.want)
		}
	}
}
