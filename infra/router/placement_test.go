package router_test

import (
	"context"
	"testing"
	"time"

	"github.com/segflow/segflow/infra/gwclient"
	"github.com/segflow/segflow/infra/internal/testqueue"
	"github.com/segflow/segflow/infra/router"
)

// TestOpenWaitsForTheLastQueueNode: a router opened while two of the
// three queue nodes are up (they have a leader, so JetStream answers)
// must wait for the third instead of failing on "no suitable peers for
// placement" for its replicas-3 streams, as `segflow up --nodes 3` did
// when its third node booted last.
func TestOpenWaitsForTheLastQueueNode(t *testing.T) {
	c := testqueue.StartSome(t, 3, 2, map[string]string{"router": "router-pw"})
	nc := c.Connect("router")
	opened := make(chan error, 1)
	go func() {
		rt, err := router.Open(context.Background(), router.Config{NATS: nc,
			Gateway: gwclient.New("http://127.0.0.1:1", "admin", "pw"), Replicas: 3})
		if err == nil {
			t.Cleanup(rt.Close)
		}
		opened <- err
	}()
	select {
	case err := <-opened:
		t.Fatalf("Open returned before the third node started: %v", err)
	case <-time.After(2 * time.Second):
	}
	c.StartNode(2)
	select {
	case err := <-opened:
		if err != nil {
			t.Fatalf("Open with the third node up: %v", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("Open still waiting a minute after the third node started")
	}
	info, err := testqueue.StreamInfo(nc, "SEGFLOW_EVENTS")
	if err != nil {
		t.Fatal(err)
	}
	if got := len(info.Cluster.Replicas) + 1; got != 3 {
		t.Errorf("events stream on %d nodes, want 3", got)
	}
}
