// Package queue runs the embedded NATS JetStream server that holds segflow's
// durable queues (async function calls, router deliveries) on local disk, so
// queued work survives a restart of the process that queued it.
package queue

import (
	"context"
	"fmt"
	"net/url"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// Options for the embedded server.
type Options struct {
	StoreDir string
	Host     string // default 127.0.0.1
	Port     int    // 0 picks a free port; -1 serves no TCP port (in-process only)
	// Users are the components allowed in, by name and password; every
	// client, in-process ones too, must be one of them. Empty: no
	// authentication, for a server with no TCP port only.
	Users map[string]string
	// Cluster, when set, makes this server one node of a JetStream
	// cluster: streams and KV buckets created with replicas > 1 are then
	// kept on that many nodes, and survive one of them dying.
	Cluster *Cluster
}

// Cluster is one node's part of a JetStream cluster.
type Cluster struct {
	Name string // the cluster's, the same on every node
	Node string // this node's, unique in the cluster
	Port int    // the route port other nodes dial (0: a free one)
	// Routes are the other nodes' route addresses (host:port).
	Routes []string
	// User and Password are what a node shows another: a local process
	// without them cannot join as a route and read every queue.
	User, Password string
}

// Server is a running embedded NATS server.
type Server struct {
	srv   *server.Server
	users map[string]string
}

// Open runs the server and waits until it accepts clients; Close stops it.
func Open(o Options) (*Server, error) {
	if o.Host == "" {
		o.Host = "127.0.0.1"
	}
	port := o.Port
	if port == 0 {
		port = server.RANDOM_PORT
	}
	name := "segflow"
	if o.Cluster != nil {
		name = o.Cluster.Node
	}
	opts := &server.Options{
		ServerName: name,
		Host:       o.Host,
		Port:       port,
		DontListen: o.Port < 0,
		JetStream:  true,
		StoreDir:   o.StoreDir,
		// An async call or a delivery carries its body; allow media-sized
		// control payloads, not media (media goes through the bucket).
		MaxPayload: 8 << 20,
		NoSigs:     true,
		NoLog:      true,
	}
	if len(o.Users) == 0 && o.Port >= 0 {
		return nil, fmt.Errorf("nats server: a TCP port needs users (any local process could read and write every queue)")
	}
	for name, pw := range o.Users {
		opts.Users = append(opts.Users, &server.User{Username: name, Password: pw})
	}
	if c := o.Cluster; c != nil {
		if err := c.apply(opts); err != nil {
			return nil, err
		}
	}
	s, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("nats server: %w", err)
	}
	go s.Start()
	if !s.ReadyForConnections(15 * time.Second) {
		s.Shutdown()
		return nil, fmt.Errorf("nats server: not ready within 15s")
	}
	return &Server{srv: s, users: o.Users}, nil
}

func (c *Cluster) apply(opts *server.Options) error {
	if c.Name == "" || c.Node == "" || c.User == "" || c.Password == "" {
		return fmt.Errorf("nats server: a cluster node needs the cluster's name, its own and the route credentials")
	}
	port := c.Port
	if port == 0 {
		port = server.RANDOM_PORT
	}
	opts.Cluster = server.ClusterOpts{Name: c.Name, Host: opts.Host, Port: port, Username: c.User, Password: c.Password,
		// Ours are the configured routes only: a node learns no others
		// from gossip, which would reach past the ones named.
		NoAdvertise: true}
	for _, r := range c.Routes {
		u, err := url.Parse("nats-route://" + r)
		if err != nil {
			return fmt.Errorf("nats server: route %q: %w", r, err)
		}
		u.User = url.UserPassword(c.User, c.Password)
		opts.Routes = append(opts.Routes, u)
	}
	return nil
}

// WaitClustered waits until this node's JetStream has a meta leader and
// is current with it: before that, creating a stream fails ("JetStream
// system temporarily unavailable"). A single server is ready at once.
func (s *Server) WaitClustered(ctx context.Context) error {
	for {
		if s.srv.JetStreamIsCurrent() {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("nats server %s: JetStream cluster not formed: %w", s.srv.Name(), ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// RouteAddr is where other nodes reach this one ("" when not clustered).
func (s *Server) RouteAddr() string {
	if a := s.srv.ClusterAddr(); a != nil {
		return a.String()
	}
	return ""
}

// Name is the node's name in its cluster.
func (s *Server) Name() string { return s.srv.Name() }

// LeadsStream reports whether this node leads the named stream's replicas.
func (s *Server) LeadsStream(stream string) bool {
	return s.srv.JetStreamIsStreamLeader(server.DEFAULT_GLOBAL_ACCOUNT, stream)
}

// ClientURL is the nats:// address for other processes (no credentials).
func (s *Server) ClientURL() string { return s.srv.ClientURL() }

// UserURL is the nats:// address with user's credentials in it, for a
// component in another process (segflow router --nats).
func (s *Server) UserURL(user string) string {
	u, err := url.Parse(s.srv.ClientURL())
	if err != nil {
		return ""
	}
	u.User = url.UserPassword(user, s.users[user])
	return u.String()
}

// Connect opens an in-process client connection as user (one of
// Options.Users, when there are any).
func (s *Server) Connect(user string) (*nats.Conn, error) {
	opts := []nats.Option{nats.InProcessServer(s.srv), nats.Name(user), nats.MaxReconnects(-1)}
	if pw, ok := s.users[user]; ok {
		opts = append(opts, nats.UserInfo(user, pw))
	}
	nc, err := nats.Connect("", opts...)
	if err != nil {
		return nil, fmt.Errorf("nats connect: %w", err)
	}
	return nc, nil
}

// Close stops the server after flushing JetStream state to disk.
func (s *Server) Close() {
	s.srv.Shutdown()
	s.srv.WaitForShutdown()
}
