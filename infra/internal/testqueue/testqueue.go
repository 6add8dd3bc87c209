// Package testqueue runs a JetStream cluster of embedded NATS servers on
// free ports for tests: the shape a queue takes beyond one machine.
package testqueue

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/segflow/segflow/infra/queue"
	"github.com/segflow/segflow/shared/testenv"
)

// Cluster is n nodes of one JetStream cluster.
type Cluster struct {
	t      testing.TB
	Nodes  []*queue.Server // nil for a node not started yet
	users  map[string]string
	routes []string
}

// Start runs n nodes (users: component -> password) and waits until
// their JetStream cluster has formed; the nodes stop when the test ends.
func Start(t testing.TB, n int, users map[string]string) *Cluster {
	t.Helper()
	return StartSome(t, n, n, users)
}

// StartSome plans n nodes and starts the first started of them, waiting
// until those have formed the cluster (a quorum elects a leader); the
// rest come with StartNode, as a node booting last does.
func StartSome(t testing.TB, n, started int, users map[string]string) *Cluster {
	t.Helper()
	c := &Cluster{t: t, users: users, Nodes: make([]*queue.Server, n), routes: make([]string, n)}
	for i := range c.routes {
		c.routes[i] = testenv.FreeAddr(t)
	}
	for i := range started {
		c.StartNode(i)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, ns := range c.Nodes[:started] {
		if err := ns.WaitClustered(ctx); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

// StartNode starts node i (n1 is 0) with routes to every other node.
func (c *Cluster) StartNode(i int) {
	c.t.Helper()
	var others []string
	for j, r := range c.routes {
		if j != i {
			others = append(others, r)
		}
	}
	_, port, _ := strings.Cut(c.routes[i], ":")
	var p int
	fmt.Sscan(port, &p)
	ns, err := queue.Open(queue.Options{StoreDir: c.t.TempDir(), Users: c.users, Cluster: &queue.Cluster{
		Name: "segflow-test", Node: fmt.Sprintf("n%d", i+1), Port: p, Routes: others, User: "route", Password: "route-pw"}})
	if err != nil {
		c.t.Fatal(err)
	}
	c.Nodes[i] = ns
	c.t.Cleanup(ns.Close)
}

// Connect opens a TCP client as user that knows every node, so it moves
// to another when its node goes.
func (c *Cluster) Connect(user string, opts ...nats.Option) *nats.Conn {
	c.t.Helper()
	var urls []string
	for _, ns := range c.Nodes {
		if ns != nil {
			urls = append(urls, ns.UserURL(user))
		}
	}
	opts = append([]nats.Option{nats.MaxReconnects(-1), nats.ReconnectWait(100 * time.Millisecond), nats.DontRandomize()}, opts...)
	nc, err := nats.Connect(strings.Join(urls, ","), opts...)
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(nc.Close)
	return nc
}

// Leader is the node leading stream's replicas, waiting for one.
func (c *Cluster) Leader(stream string) *queue.Server {
	c.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		for _, ns := range c.Nodes {
			if ns != nil && ns.LeadsStream(stream) {
				return ns
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	c.t.Fatalf("no node leads stream %s", stream)
	return nil
}

// StreamInfo reads the named stream's state and placement through nc.
func StreamInfo(nc *nats.Conn, name string) (*jetstream.StreamInfo, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	st, err := js.Stream(context.Background(), name)
	if err != nil {
		return nil, err
	}
	return st.Info(context.Background())
}
