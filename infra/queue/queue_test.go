package queue_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/segflow/segflow/infra/internal/testqueue"
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

// TestClusterKeepsStreamsThroughANodeLoss: on three nodes, a stream at
// replicas 3 keeps every message it acknowledged when its leader stops,
// and takes new ones once the other two have elected a leader.
func TestClusterKeepsStreamsThroughANodeLoss(t *testing.T) {
	ctx := context.Background()
	c := testqueue.Start(t, 3, map[string]string{"router": "pw"})
	nc := c.Connect("router")
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "KEEP", Subjects: []string{"keep.>"},
		Storage: jetstream.FileStorage, Replicas: 3}); err != nil {
		t.Fatal(err)
	}
	publish := func(from, to int) {
		for i := from; i < to; i++ {
			// A publish during the election fails; the client tries again,
			// as the router's webhook (refusing) and MinIO do.
			deadline := time.Now().Add(20 * time.Second)
			for {
				_, err := js.Publish(ctx, fmt.Sprintf("keep.%d", i), []byte("m"), jetstream.WithMsgID(fmt.Sprint(i)))
				if err == nil {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("publish %d: %v", i, err)
				}
				time.Sleep(50 * time.Millisecond)
			}
		}
	}
	publish(0, 50)
	leader := c.Leader("KEEP")
	leader.Close()
	publish(50, 100)
	var next *queue.Server
	for _, ns := range c.Nodes {
		if ns != leader && ns.LeadsStream("KEEP") {
			next = ns
		}
	}
	if next == nil {
		next = c.Leader("KEEP")
	}
	s, err := js.Stream(ctx, "KEEP")
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 100 {
		t.Fatalf("stream holds %d messages after losing %s, want 100", info.State.Msgs, leader.Name())
	}
	if info.Cluster == nil || info.Cluster.Leader != next.Name() || len(info.Cluster.Replicas) != 2 {
		t.Fatalf("stream cluster %+v, want %s leading and two replicas", info.Cluster, next.Name())
	}
	t.Logf("%s led; %s leads after it", leader.Name(), next.Name())
}
