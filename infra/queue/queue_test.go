package queue_test

import (
	"context"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/segflow/segflow/infra/queue"
)

// TestQueueNeedsAUser: a local process without a component's password
// can neither read nor write the queues.
func TestQueueNeedsAUser(t *testing.T) {
	if _, err := queue.Open(queue.Options{StoreDir: t.TempDir()}); err == nil {
		t.Fatal("a TCP server with no users started")
	}
	ns, err := queue.Open(queue.Options{StoreDir: t.TempDir(), Users: map[string]string{"router": "pw-r", "gateway": "pw-g"}})
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	if nc, err := nats.Connect(ns.ClientURL()); err == nil || !strings.Contains(strings.ToLower(err.Error()), "authorization") {
		if nc != nil {
			nc.Close()
		}
		t.Fatalf("anonymous connect: %v, want an authorization error", err)
	}
	if nc, err := nats.Connect(strings.Replace(ns.UserURL("router"), "pw-r", "guess", 1)); err == nil {
		nc.Close()
		t.Fatal("a wrong password was let in")
	}
	for _, c := range []func() (*nats.Conn, error){
		func() (*nats.Conn, error) { return nats.Connect(ns.UserURL("router")) },
		func() (*nats.Conn, error) { return ns.Connect("gateway") },
	} {
		nc, err := c()
		if err != nil {
			t.Fatal(err)
		}
		js, err := jetstream.New(nc)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := js.AccountInfo(context.Background()); err != nil {
			t.Fatalf("JetStream for a user: %v", err)
		}
		nc.Close()
	}
}
