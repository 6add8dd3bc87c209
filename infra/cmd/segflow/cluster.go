package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/segflow/segflow/infra/front"
	"github.com/segflow/segflow/shared/miniosrv"
)

// poolServers is how many MinIO servers `segflow up --nodes` runs as one
// distributed pool: four drives at parity 2, so any one may die.
const poolServers = 4

// clusterFile is cluster.json in the state folder: the ports of
// `segflow up --nodes`'s processes, picked on the first run and kept
// (MinIO's pool names its servers by address), and their current pids,
// for whoever wants to stop one.
type clusterFile struct {
	NATS  []clusterNode `json:"nats"`
	MinIO []clusterNode `json:"minio"`
}

// clusterNode is one process of the cluster.
type clusterNode struct {
	Name  string `json:"name"`
	Addr  string `json:"addr"`            // clients'
	Route string `json:"route,omitempty"` // NATS: where the other nodes dial
	Pid   int    `json:"pid"`
}

// cluster is the running processes of `segflow up --nodes`.
type cluster struct {
	path string
	mu   sync.Mutex
	file clusterFile
}

// loadCluster reads cluster.json, or picks free ports for nodes NATS
// nodes and the pool's servers on the first run.
func loadCluster(home string, nodes int) (*cluster, error) {
	c := &cluster{path: filepath.Join(home, "cluster.json")}
	if b, err := os.ReadFile(c.path); err == nil {
		if err := json.Unmarshal(b, &c.file); err != nil {
			return nil, fmt.Errorf("%s: %w", c.path, err)
		}
		if len(c.file.NATS) == nodes && len(c.file.MinIO) == poolServers {
			return c, nil
		}
		return nil, fmt.Errorf("%s is for %d nodes; start with --nodes %d, or remove it and the state folder's nats and minio-pool", c.path, len(c.file.NATS), len(c.file.NATS))
	}
	for i := range nodes {
		a, err := freeAddr()
		if err != nil {
			return nil, err
		}
		r, err := freeAddr()
		if err != nil {
			return nil, err
		}
		c.file.NATS = append(c.file.NATS, clusterNode{Name: fmt.Sprintf("n%d", i+1), Addr: a, Route: r})
	}
	for i := range poolServers {
		a, err := freeAddr()
		if err != nil {
			return nil, err
		}
		c.file.MinIO = append(c.file.MinIO, clusterNode{Name: fmt.Sprintf("minio%d", i+1), Addr: a})
	}
	return c, c.save()
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func (c *cluster) save() error {
	b, err := json.MarshalIndent(c.file, "", "  ")
	if err != nil {
		return err
	}
	// Renamed into place: whoever reads it for a pid sees the old list or
	// the new one, never a half-written file.
	tmp := c.path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, c.path)
}

// started records a process's pid.
func (c *cluster) started(nodes []clusterNode, i, pid int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	nodes[i].Pid = pid
	_ = c.save()
}

// startPool runs MinIO distributed over poolServers processes behind one
// S3 address (front: each connection to a server that accepts it), each
// started again when it exits, as a StatefulSet would.
func (s *localStack) startPool(ctx context.Context) error {
	var addrs []string
	for _, n := range s.cluster.file.MinIO {
		addrs = append(addrs, n.Addr)
	}
	o, err := s.minioOptions(filepath.Join(s.home, "minio-pool"))
	if err != nil {
		return err
	}
	s.log.Info("starting minio pool", "servers", addrs, "address", s.s3Addr)
	servers, err := miniosrv.OpenPool(ctx, o, addrs)
	if err != nil {
		return err
	}
	for i, srv := range servers {
		s.cluster.started(s.cluster.file.MinIO, i, srv.Pid())
		s.keepServing(ctx, i, srv)
	}
	f, err := front.Open(s.s3Addr, addrs, s.log.With("component", "s3-front"))
	if err != nil {
		return err
	}
	s.onClose(f.Close)
	return nil
}

// keepServing starts pool server i again whenever it exits, until ctx
// ends; the stack's close stops the one running then.
func (s *localStack) keepServing(ctx context.Context, i int, srv *miniosrv.Server) {
	var mu sync.Mutex
	s.onClose(func() { mu.Lock(); defer mu.Unlock(); srv.Close() })
	go func() {
		for {
			<-srv.Done()
			if ctx.Err() != nil {
				return
			}
			s.log.Warn("minio pool server exited; starting it again", "server", srv.Endpoint())
			for ctx.Err() == nil {
				next, err := miniosrv.Open(ctx, srv.Options())
				if err == nil {
					mu.Lock()
					srv = next
					mu.Unlock()
					s.cluster.started(s.cluster.file.MinIO, i, next.Pid())
					break
				}
				s.log.Warn("minio pool server did not start", "err", err)
				time.Sleep(time.Second)
			}
		}
	}()
}

// startQueueNodes runs the queue as a JetStream cluster of one `segflow
// nats` process per node, each started again when it exits, and
// connects each component to all of them.
func (s *localStack) startQueueNodes(ctx context.Context) (map[string]*nats.Conn, error) {
	if _, err := credential(filepath.Join(s.authDir(), "nats-route-password"), ""); err != nil {
		return nil, err
	}
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	nodes := s.cluster.file.NATS
	var urls []string
	for i, n := range nodes {
		var routes []string
		for j, m := range nodes {
			if j != i {
				routes = append(routes, m.Route)
			}
		}
		_, port, _ := net.SplitHostPort(n.Addr)
		_, routePort, _ := net.SplitHostPort(n.Route)
		args := []string{"nats", "--store", filepath.Join(s.home, "nats", n.Name), "--port", port, "--node", n.Name,
			"--cluster-port", routePort, "--routes", strings.Join(routes, ","), "--auth-dir", s.authDir()}
		s.keepRunning(ctx, n.Name, func() (*exec.Cmd, error) {
			cmd := exec.Command(self, args...)
			cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
			cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
			if err := cmd.Start(); err != nil {
				return nil, err
			}
			s.cluster.started(nodes, i, cmd.Process.Pid)
			return cmd, nil
		})
		urls = append(urls, "nats://"+n.Addr)
	}
	s.natsURL = strings.Join(urls, ",")
	conns := map[string]*nats.Conn{}
	for _, u := range natsUsers {
		nc, err := nats.Connect(s.natsURL, nats.UserInfo(u, s.creds.NATS[u]), nats.Name(u), nats.MaxReconnects(-1),
			nats.ReconnectWait(250*time.Millisecond), nats.RetryOnFailedConnect(true))
		if err != nil {
			return nil, fmt.Errorf("nats %s: %w", s.natsURL, err)
		}
		s.onClose(nc.Close)
		conns[u] = nc
	}
	// Ready once JetStream answers: the nodes have met and elected.
	js, err := jetstream.New(conns["router"])
	if err != nil {
		return nil, err
	}
	wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	var last error
	for {
		// Each try on its own short clock: a request made before the
		// nodes have a leader gets no answer at all.
		actx, cancel := context.WithTimeout(wctx, 2*time.Second)
		_, err := js.AccountInfo(actx)
		cancel()
		if err == nil {
			return conns, nil
		}
		if wctx.Err() != nil {
			return nil, fmt.Errorf("nats cluster %s not ready: %w (before: %v)", s.natsURL, err, last)
		}
		last = err
		time.Sleep(100 * time.Millisecond)
	}
}

// keepRunning runs start's process again, a second after each exit,
// until ctx ends; the stack's close stops the one running then.
func (s *localStack) keepRunning(ctx context.Context, name string, start func() (*exec.Cmd, error)) {
	var mu sync.Mutex
	var cmd *exec.Cmd
	exited := make(chan struct{})
	s.onClose(func() {
		mu.Lock()
		c := cmd
		mu.Unlock()
		if c != nil {
			_ = c.Process.Signal(syscall.SIGTERM)
		}
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			if c != nil {
				_ = c.Process.Kill()
			}
		}
	})
	go func() {
		defer close(exited)
		for ctx.Err() == nil {
			c, err := start()
			if err != nil {
				s.log.Warn("cluster process did not start", "process", name, "err", err)
			} else {
				mu.Lock()
				cmd = c
				mu.Unlock()
				err = c.Wait()
				if ctx.Err() == nil {
					s.log.Warn("cluster process exited; starting it again", "process", name, "err", err)
				}
			}
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}()
}

// replicas is how many queue nodes keep each stream: one without
// --nodes, else all of them up to three (JetStream's largest useful
// count on a small cluster: a majority must agree on every write).
func (s *localStack) replicas() int {
	if s.cluster == nil {
		return 1
	}
	return min(len(s.cluster.file.NATS), 3)
}
