package provider

import (
	"context"
	"testing"
	"time"

	"github.com/openfaas/faas-provider/logs"
)

func TestLogStoreQuery(t *testing.T) {
	s, err := newLogStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	next := func(ch <-chan logs.Message) (logs.Message, bool) {
		t.Helper()
		select {
		case m, ok := <-ch:
			return m, ok
		case <-ctx.Done():
			t.Fatal("no message within 10 s")
			return logs.Message{}, false
		}
	}

	// Following a function that has logged nothing yet waits for its
	// first line instead of ending at once.
	follow, err := s.Query(ctx, logs.Request{Name: "quiet", Follow: true})
	if err != nil {
		t.Fatal(err)
	}
	s.Append("quiet", 7, "first words")
	if m, ok := next(follow); !ok || m.Text != "first words" || m.Instance != "7" {
		t.Fatalf("followed %+v (open %v)", m, ok)
	}
	s.Append("quiet", 7, "second")
	if m, ok := next(follow); !ok || m.Text != "second" {
		t.Fatalf("followed %+v (open %v)", m, ok)
	}

	// Without follow: the last Tail messages, then the channel ends.
	for _, line := range []string{"a", "b", "c"} {
		s.Append("chatty", 1, line)
	}
	tail, err := s.Query(ctx, logs.Request{Name: "chatty", Tail: 2})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for {
		m, ok := next(tail)
		if !ok {
			break
		}
		got = append(got, m.Text)
	}
	if len(got) != 2 || got[0] != "b" || got[1] != "c" {
		t.Fatalf("tail 2 = %v", got)
	}
	// A function with no log and no follow: an empty, closed channel.
	none, err := s.Query(ctx, logs.Request{Name: "never"})
	if err != nil {
		t.Fatal(err)
	}
	if m, ok := next(none); ok {
		t.Fatalf("got %+v from a function that never logged", m)
	}
}
