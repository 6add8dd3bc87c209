package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/segflow/segflow/infra/front"
	"github.com/segflow/segflow/infra/gwclient"
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
	// Gateways and Routers are the runtime nodes run as processes beside
	// the one inside `segflow up` (which takes MinIO's notifications and
	// serves the API, console and ingest): each gateway runs the
	// functions, and its router takes a share of the deliveries for it.
	Gateways []clusterNode `json:"gateways"`
	Routers  []clusterNode `json:"routers"`
	// Relays are the relays run as processes beside the one in `segflow
	// up` (Addr: RTMP), on the same bucket and stream keys with a spool
	// each: a publisher whose relay dies comes back on another and its
	// channel goes on.
	Relays []clusterNode `json:"relays"`
}

// clusterNode is one process of the cluster.
type clusterNode struct {
	Name  string `json:"name"`
	Addr  string `json:"addr"`            // clients'
	Route string `json:"route,omitempty"` // NATS: where the other nodes dial
	HTTP  string `json:"http,omitempty"`  // a relay's /healthz and /metrics
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
		if len(c.file.NATS) != nodes || len(c.file.MinIO) != poolServers {
			return nil, fmt.Errorf("%s is for %d nodes; start with --nodes %d, or remove it and the state folder's nats and minio-pool", c.path, len(c.file.NATS), len(c.file.NATS))
		}
		if len(c.file.Gateways) == runtimeProcesses && len(c.file.Routers) == runtimeProcesses && len(c.file.Relays) == runtimeProcesses {
			return c, nil
		}
		// A file from before runtime nodes ran as processes: add theirs.
		c.file.Gateways, c.file.Routers, c.file.Relays = nil, nil, nil
		if err := c.pickRuntimePorts(); err != nil {
			return nil, err
		}
		return c, c.save()
	}
	for i := range nodes {
		a, err := freeAddrs(2)
		if err != nil {
			return nil, err
		}
		c.file.NATS = append(c.file.NATS, clusterNode{Name: fmt.Sprintf("n%d", i+1), Addr: a[0], Route: a[1]})
	}
	for i := range poolServers {
		a, err := freeAddrs(1)
		if err != nil {
			return nil, err
		}
		c.file.MinIO = append(c.file.MinIO, clusterNode{Name: fmt.Sprintf("minio%d", i+1), Addr: a[0]})
	}
	if err := c.pickRuntimePorts(); err != nil {
		return nil, err
	}
	return c, c.save()
}

// runtimeProcesses is how many runtime nodes (a gateway, its router and
// a relay) run as processes beside the one in `segflow up`: two runtime nodes in
// all, so either's loss leaves one running the functions.
const runtimeProcesses = 1

func (c *cluster) pickRuntimePorts() error {
	for i := range runtimeProcesses {
		a, err := freeAddrs(4)
		if err != nil {
			return err
		}
		name := fmt.Sprintf("node%d", i+2)
		c.file.Gateways = append(c.file.Gateways, clusterNode{Name: name, Addr: a[0]})
		c.file.Routers = append(c.file.Routers, clusterNode{Name: name, Addr: a[1]})
		c.file.Relays = append(c.file.Relays, clusterNode{Name: name, Addr: a[2], HTTP: a[3]})
	}
	return nil
}

// freeAddrs picks n free loopback ports, all held until all are picked
// so that none is picked twice.
func freeAddrs(n int) ([]string, error) {
	var addrs []string
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		defer l.Close()
		addrs = append(addrs, l.Addr().String())
	}
	return addrs, nil
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
		s.keepRunning(ctx, n.Name, s.process(self, args, nil, func(pid int) { s.cluster.started(nodes, i, pid) }))
		urls = append(urls, "nats://"+n.Addr)
	}
	s.natsURL = strings.Join(urls, ",")
	conns := map[string]*nats.Conn{}
	for _, u := range natsClients {
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

// startRuntimeNodes runs each further runtime node as processes, as
// Kubernetes runs them: `segflow gateway` (the functions, under the
// node's own state folder), `segflow router` delivering to that gateway
// from the shared consumers and, with ingest on, `segflow relay` (its
// own RTMP port and spool), each started again when it exits.
// It returns the gateways once each answers, for the stack to be deployed
// to. Secrets go through the environment, never the command line.
func (s *localStack) startRuntimeNodes(ctx context.Context) ([]*gwclient.Client, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	natsWith := func(user string) string {
		var urls []string
		for _, n := range s.cluster.file.NATS {
			urls = append(urls, "nats://"+url.UserPassword(user, s.creds.NATS[user]).String()+"@"+n.Addr)
		}
		return strings.Join(urls, ",")
	}
	// The router and the relay use MinIO's root keys, as in `segflow up`.
	s3Env := []string{"S3_ENDPOINT=" + s.s3Addr, "S3_ACCESS_KEY=" + s.creds.S3User, "S3_SECRET_KEY=" + s.creds.S3Password, "S3_BUCKET=" + s.o.bucket}
	var gws []*gwclient.Client
	for i, g := range s.cluster.file.Gateways {
		gwURL := "http://" + g.Addr
		host, port, _ := net.SplitHostPort(g.Addr)
		gwArgs := []string{"gateway", "--home", filepath.Join(s.home, g.Name), "--repo", s.repo, "--host", host, "--port", port,
			"--auth-dir", s.authDir(), "--replicas", strconv.Itoa(s.replicas()),
			"--function-env", "S3_ENDPOINT=" + s.s3Addr, "--function-env", "S3_BUCKET=" + s.o.bucket, "--function-env", "SEGFLOW_GATEWAY=" + gwURL}
		for _, h := range s.o.callbacks {
			gwArgs = append(gwArgs, "--callback-host", h)
		}
		gwEnv := []string{"NATS_URL=" + natsWith("gateway")}
		s.keepRunning(ctx, g.Name+"-gateway", s.process(self, gwArgs, gwEnv, func(pid int) { s.cluster.started(s.cluster.file.Gateways, i, pid) }))
		r := s.cluster.file.Routers[i]
		rtArgs := []string{"router", "--listen", r.Addr, "--gateway", gwURL, "--replicas", strconv.Itoa(s.replicas())}
		rtEnv := append([]string{"NATS_URL=" + natsWith("router"), "WEBHOOK_TOKEN=" + s.creds.WebhookToken,
			"SEGFLOW_GATEWAY_USER=" + s.creds.GatewayUser, "SEGFLOW_GATEWAY_PASSWORD=" + s.creds.GatewayPassword}, s3Env...)
		s.keepRunning(ctx, r.Name+"-router", s.process(self, rtArgs, rtEnv, func(pid int) { s.cluster.started(s.cluster.file.Routers, i, pid) }))
		if s.relay != nil {
			rl := s.cluster.file.Relays[i]
			rlArgs := []string{"relay", "--rtmp", rl.Addr, "--srt", "", "--webrtc", "", "--http", rl.HTTP,
				"--keys", filepath.Join(s.authDir(), "stream-keys"), "--playback-key", filepath.Join(s.authDir(), "playback-key"),
				"--spool", filepath.Join(s.home, rl.Name, "spool")}
			s.keepRunning(ctx, rl.Name+"-relay", s.process(self, rlArgs, s3Env, func(pid int) { s.cluster.started(s.cluster.file.Relays, i, pid) }))
		}
		gw := gwclient.New(gwURL, s.creds.GatewayUser, s.creds.GatewayPassword)
		if err := waitHealthy(ctx, gwURL+"/healthz", 2*time.Minute); err != nil {
			return nil, fmt.Errorf("runtime node %s: %w", g.Name, err)
		}
		gws = append(gws, gw)
	}
	return gws, nil
}

// process is a start function for keepRunning: self with args, the
// stack's environment plus env, in a process group of its own that a
// dying `segflow up` takes with it.
func (s *localStack) process(self string, args, env []string, started func(pid int)) func() (*exec.Cmd, error) {
	return func() (*exec.Cmd, error) {
		cmd := exec.Command(self, args...)
		cmd.Env = append(os.Environ(), env...)
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
		if err := cmd.Start(); err != nil {
			return nil, err
		}
		started(cmd.Process.Pid)
		return cmd, nil
	}
}

// waitHealthy waits until url answers 200.
func waitHealthy(ctx context.Context, url string, within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("%s: %s", url, resp.Status)
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("not healthy after %s: %w", within, err)
		}
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
