package stage_test

import (
	"context"
	"strings"
	"testing"

	"github.com/segflow/segflow/shared/events"
	"github.com/segflow/segflow/shared/stage"
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
