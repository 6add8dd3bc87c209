// Package queue runs the embedded NATS JetStream server that holds segflow's
// durable queues (async function calls, router deliveries) on local disk, so
// queued work survives a restart of the process that queued it.
package queue

import (
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
	opts := &server.Options{
		ServerName: "segflow",
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
