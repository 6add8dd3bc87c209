package stage_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/segflow/segflow/shared/events"
	"github.com/segflow/segflow/shared/stage"
	"github.com/segflow/segflow/shared/storage"
	"github.com/segflow/segflow/shared/testenv"
)

// TestReadTriggerKeepsToItsBucket: an event naming another bucket as its
// source is refused for good, not acted on with the function's rights.
func TestReadTriggerKeepsToItsBucket(t *testing.T) {
	env := &stage.Env{Name: "split", Bucket: "media"}
	tests := []struct {
		source, err string
	}{
		{"media", ""},
		{"other-bucket", `source bucket "other-bucket": split serves bucket "media" only`},
	}
	for _, tc := range tests {
		t.Run(tc.source, func(t *testing.T) {
			ev, err := events.New("id-1", events.TypeObjectCreated, tc.source, "uploads/x.mp4", nil)
			if err != nil {
				t.Fatal(err)
			}
			req, err := events.NewRequest(context.Background(), "http://127.0.0.1/function/split", ev)
			if err != nil {
				t.Fatal(err)
			}
			trig, err := env.ReadTrigger(req)
			if tc.err == "" {
				if err != nil || trig.Bucket != "media" || trig.Key != "uploads/x.mp4" {
					t.Fatalf("trigger = %+v, %v", trig, err)
				}
				return
			}
			if err == nil || !stage.IsPermanent(err) || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("err = %v, want a permanent error saying %q", err, tc.err)
			}
		})
	}
}

// TestRespondSaysWhoseFault: the router retries a 500 on an attempt,
// waits out a 503 (the storage out of reach: nothing about the event)
// and drops a 422.
func TestRespondSaysWhoseFault(t *testing.T) {
	env := &stage.Env{Name: "transcode", Bucket: "media", Log: slog.New(slog.DiscardHandler)}
	dead, err := storage.New(storage.Options{Endpoint: testenv.FreeAddr(t), AccessKey: "k", SecretKey: "secret-key"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, unreachable := dead.GetBytes(ctx, "media", "assets/a/manifest.json")
	for _, c := range []struct {
		name string
		err  error
		want int
	}{
		{"done", nil, http.StatusOK},
		{"bad input", stage.Permanent(errors.New("not a video")), http.StatusUnprocessableEntity},
		{"ffmpeg failed", errors.New("transcode: exit status 1"), http.StatusInternalServerError},
		{"storage unreachable", fmt.Errorf("transcode assets/a/source/00000.ts: %w", unreachable), http.StatusServiceUnavailable},
	} {
		w := httptest.NewRecorder()
		env.Respond(context.Background(), w, nil, "ok", c.err, time.Second)
		if w.Code != c.want {
			t.Errorf("%s (%v): %d, want %d", c.name, c.err, w.Code, c.want)
		}
		if c.want == http.StatusServiceUnavailable && w.Header().Get("Retry-After") == "" {
			t.Errorf("%s: 503 without Retry-After", c.name)
		}
	}
}

// TestGetTriggerReadsAgainWhatIsNotThereYet: the object an event names is
// read again while it reads as missing (a pool short of a server answers
// so for a moment), up to a bound; one that stays missing is ErrNotFound.
func TestGetTriggerReadsAgainWhatIsNotThereYet(t *testing.T) {
	m := testenv.StartMinIO(t)
	m.Bucket(t, "media")
	env := &stage.Env{Name: "transcode", Store: m.Client, Bucket: "media", Log: slog.New(slog.DiscardHandler)}
	ctx := context.Background()
	late := &stage.Trigger{Bucket: "media", Key: "assets/a/source/00000.ts"}
	go func() {
		time.Sleep(1500 * time.Millisecond)
		_ = m.Client.Put(ctx, "media", late.Key, strings.NewReader("segment"), 7, storage.PutOptions{})
	}()
	file := filepath.Join(t.TempDir(), "in.ts")
	if info, err := env.GetTrigger(ctx, late, file); err != nil || info.Size != 7 {
		t.Fatalf("an object written 1.5 s after the read: %+v, %v", info, err)
	}
	if info, err := env.StatTrigger(ctx, late); err != nil || info.Size != 7 {
		t.Fatalf("stat: %+v, %v", info, err)
	}
	start := time.Now()
	_, err := env.GetTrigger(ctx, &stage.Trigger{Bucket: "media", Key: "assets/a/source/00001.ts"}, file)
	if !errors.Is(err, storage.ErrNotFound) || time.Since(start) < 4*time.Second {
		t.Errorf("a missing object: %v after %s, want not found after reading again for about 5 s", err, time.Since(start))
	}
}
