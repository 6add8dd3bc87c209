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

	"github.com/segflow/segflow/infra/queue"
	"github.com/segflow/segflow/shared/testenv"
)

// Cluster is n nodes of one JetStream cluster.
type Cluster struct {
	t     testing.TB
	Nodes []*queue.Server
	users map[string]string
}

// Start runs n nodes (users: component -> password) and waits until
// their JetStream cluster has formed; the nodes stop when the test ends.
func Start(t testing.TB, n int, users map[string]string) *Cluster {
	t.Helper()
	routes := make([]string, n)
	for i := range routes {
		routes[i] = testenv.FreeAddr(t)
	}
	c := &Cluster{t: t, users: users}
	for i := range n {
		var others []string
		for j, r := range routes {
			if j != i {
				others = append(others, r)
			}
		}
		_, port, _ := strings.Cut(routes[i], ":")
		var p int
		fmt.Sscan(port, &p)
		ns, err := queue.Open(queue.Options{StoreDir: t.TempDir(), Users: users, Cluster: &queue.Cluster{
			Name: "segflow-test", Node: fmt.Sprintf("n%d", i+1), Port: p, Routes: others, User: "route", Password: "route-pw"}})
		if err != nil {
			t.Fatal(err)
		}
		c.Nodes = append(c.Nodes, ns)
		t.Cleanup(ns.Close)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, ns := range c.Nodes {
		if err := ns.WaitClustered(ctx); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

// Connect opens a TCP client as user that knows every node, so it moves
// to another when its node goes.
func (c *Cluster) Connect(user string, opts ...nats.Option) *nats.Conn {
	c.t.Helper()
	var urls []string
	for _, ns := range c.Nodes {
		urls = append(urls, ns.UserURL(user))
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
			if ns.LeadsStream(stream) {
				return ns
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	c.t.Fatalf("no node leads stream %s", stream)
	return nil
}
