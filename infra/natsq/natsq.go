// Package natsq runs the embedded NATS JetStream server that holds segflow's
// durable queues (async function calls, router deliveries) on local disk, so
// queued work survives a restart of the process that queued it.
package natsq

import (
	"fmt"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// Options for the embedded server.
type Options struct {
	StoreDir string
	Host     string // default 127.0.0.1
	Port     int    // 0 picks a free port; -1 serves no TCP port (in-process only)
}

// Server is a running embedded NATS server.
type Server struct {
	srv *server.Server
}

// Start runs the server and waits until it accepts clients.
func Start(o Options) (*Server, error) {
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
	s, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("nats server: %w", err)
	}
	go s.Start()
	if !s.ReadyForConnections(15 * time.Second) {
		s.Shutdown()
		return nil, fmt.Errorf("nats server: not ready within 15s")
	}
	return &Server{srv: s}, nil
}

// ClientURL is the nats:// address for other processes.
func (s *Server) ClientURL() string { return s.srv.ClientURL() }

// Connect opens an in-process client connection.
func (s *Server) Connect(name string) (*nats.Conn, error) {
	nc, err := nats.Connect("", nats.InProcessServer(s.srv), nats.Name(name), nats.MaxReconnects(-1))
	if err != nil {
		return nil, fmt.Errorf("nats connect: %w", err)
	}
	return nc, nil
}

// Shutdown stops the server after flushing JetStream state to disk.
func (s *Server) Shutdown() {
	s.srv.Shutdown()
	s.srv.WaitForShutdown()
}
