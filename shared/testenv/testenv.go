// Package testenv starts the real services that integration tests need
// (a MinIO process on free ports) and cleans them up with the test.
package testenv

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/segflow/segflow/shared/miniosrv"
	"github.com/segflow/segflow/shared/storage"
)

// FreeAddr returns a loopback host:port that was free a moment ago.
func FreeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("free port: %v", err)
	}
	defer l.Close()
	return l.Addr().String()
}

// MinIO is a running server with a client signed in as root.
type MinIO struct {
	opts    miniosrv.Options
	Server  *miniosrv.Server
	Options storage.Options
	Client  *storage.Client
	DataDir string
}

// StartMinIO runs a MinIO server for the test. Extra environment (for
// notification targets) goes to the server. It fails the test when the
// binary is missing: scripts/setup.sh builds it.
func StartMinIO(t testing.TB, env ...string) *MinIO {
	t.Helper()
	dir := t.TempDir()
	var (
		opts miniosrv.Options
		srv  *miniosrv.Server
		err  error
	)
	// A port found free can be taken by another process (tests of other
	// packages run beside this one) before MinIO binds it, and MinIO then
	// exits: a start that fails so is tried again on other ports.
	for attempt := 1; ; attempt++ {
		opts = miniosrv.Options{
			DataDir:      filepath.Join(dir, "data"),
			Address:      FreeAddr(t),
			Console:      FreeAddr(t),
			RootUser:     "segflowtest",
			RootPassword: "segflowtest-secret",
			Env:          env,
		}
		if testing.Verbose() {
			opts.Log = os.Stderr
		}
		if srv, err = miniosrv.Open(context.Background(), opts); err == nil {
			break
		}
		if attempt == 3 {
			t.Fatalf("start minio: %v", err)
		}
		t.Logf("start minio: %v; again on other ports", err)
	}
	so := storage.Options{Endpoint: srv.Endpoint(), AccessKey: opts.RootUser, SecretKey: opts.RootPassword}
	c, err := storage.New(so)
	if err != nil {
		t.Fatal(err)
	}
	m := &MinIO{opts: opts, Server: srv, Options: so, Client: c, DataDir: opts.DataDir}
	t.Cleanup(func() { m.Server.Close() })
	return m
}

// Stop stops the server (an outage); Start brings it back on the same
// address and data.
func (m *MinIO) Stop() { m.Server.Close() }

// Start restarts a stopped server.
func (m *MinIO) Start(t testing.TB) {
	t.Helper()
	srv, err := miniosrv.Open(context.Background(), m.opts)
	if err != nil {
		t.Fatalf("restart minio: %v", err)
	}
	m.Server = srv
}

// Env returns the variables a function process needs to reach this MinIO.
func (m *MinIO) Env() []string {
	return []string{
		"S3_ENDPOINT=" + m.Options.Endpoint,
		"S3_ACCESS_KEY=" + m.Options.AccessKey,
		"S3_SECRET_KEY=" + m.Options.SecretKey,
	}
}

// Bucket creates a fresh bucket for the test.
func (m *MinIO) Bucket(t testing.TB, name string) string {
	t.Helper()
	if err := m.Client.EnsureBucket(context.Background(), name); err != nil {
		t.Fatalf("bucket %s: %v", name, err)
	}
	return name
}

// String helps in failure messages.
func (m *MinIO) String() string { return fmt.Sprintf("minio@%s", m.Options.Endpoint) }
