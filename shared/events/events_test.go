package events_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/segflow/segflow/shared/events"
)

type record struct {
	Key  string `json:"key"`
	Size int64  `json:"size"`
}

func TestRoundTripOverHTTP(t *testing.T) {
	got := make(chan events.Event, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e, err := events.FromRequest(r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		got <- e
	}))
	defer srv.Close()

	e, err := events.New("evt-1", events.TypeObjectCreated, "media", "uploads/a.mp4", record{"uploads/a.mp4", 42})
	if err != nil {
		t.Fatal(err)
	}
	req, err := events.NewRequest(context.Background(), srv.URL, e)
	if err != nil {
		t.Fatal(err)
	}
	if req.Header.Get("ce-id") != "evt-1" {
		t.Fatalf("not binary mode: headers %v", req.Header)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	r := <-got
	var rec record
	if err := r.DataAs(&rec); err != nil {
		t.Fatal(err)
	}
	if r.ID() != "evt-1" || r.Subject() != "uploads/a.mp4" || r.Source() != "media" || rec.Size != 42 {
		t.Fatalf("received %v %+v", r, rec)
	}
}

func TestFromRequestRejectsPlainBodies(t *testing.T) {
	tests := []struct {
		name    string
		headers map[string]string
		body    string
	}{
		{"no ce headers", map[string]string{"Content-Type": "application/json"}, `{"a":1}`},
		{"missing id", map[string]string{"ce-specversion": "1.0", "ce-type": "t", "ce-source": "s"}, ""},
		{"garbage structured", map[string]string{"Content-Type": "application/cloudevents+json"}, "{nope"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodPost, "/", io.NopCloser(strings.NewReader(tc.body)))
			for k, v := range tc.headers {
				req.Header.Set(k, v)
			}
			if _, err := events.FromRequest(req); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}
