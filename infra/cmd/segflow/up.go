package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/segflow/segflow/infra/envfile"
	"github.com/segflow/segflow/infra/gwclient"
	"github.com/segflow/segflow/infra/s3iam"
	"github.com/segflow/segflow/infra/stack"
	"github.com/segflow/segflow/shared/layout"
	"github.com/segflow/segflow/shared/storage"
	"github.com/segflow/segflow/shared/telemetry"
)

// upOptions are the ports and names of the local stack.
type upOptions struct {
	detach     bool
	host       string // the gateway's listen address
	port       int
	s3Port     int
	natsPort   int
	bucket     string
	stackFile  string
	rtmpPort   int
	srtPort    int
	webrtcPort int
	callbacks  []string // hosts async callbacks may reach though not public
	nodes      int      // queue nodes; above 1 also MinIO as a pool
}

func upCmd() *cobra.Command {
	var o upOptions
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Start MinIO, NATS, the runtime as gateway, and deploy stack.yml",
		RunE: func(cmd *cobra.Command, args []string) error {
			home, repo, err := dirs(cmd)
			if err != nil {
				return err
			}
			if o.detach {
				return upDetached(cmd, home)
			}
			return runStack(cmd, home, repo, o)
		},
	}
	cmd.Flags().BoolVarP(&o.detach, "detach", "d", false, "return once everything is healthy; `segflow down` stops it")
	cmd.Flags().IntVar(&o.port, "port", 8080, "gateway port")
	cmd.Flags().StringVar(&o.host, "host", "127.0.0.1", "the gateway's listen address (0.0.0.0: every interface)")
	cmd.Flags().IntVar(&o.s3Port, "s3-port", 9000, "MinIO S3 port (the console gets the next one)")
	cmd.Flags().IntVar(&o.natsPort, "nats-port", 4222, "NATS port")
	cmd.Flags().StringVar(&o.bucket, "bucket", "media", "media bucket")
	cmd.Flags().IntVar(&o.rtmpPort, "rtmp-port", 1935, "relay RTMP port (0: no RTMP)")
	cmd.Flags().IntVar(&o.srtPort, "srt-port", 8890, "relay SRT port, UDP (0: no SRT)")
	cmd.Flags().IntVar(&o.webrtcPort, "webrtc-port", 8189, "relay WebRTC media port, UDP; WHIP offers go to the gateway's /whip (0: no WebRTC)")
	cmd.Flags().StringVarP(&o.stackFile, "file", "f", "stack.yml", "stack file, relative to the repository")
	cmd.Flags().IntVar(&o.nodes, "nodes", 1, "NATS JetStream nodes (3: a cluster, streams at replicas 3, and MinIO distributed over four servers)")
	cmd.Flags().StringArrayVar(&o.callbacks, "callback-host", nil, "host an async call's X-Callback-Url may name even if it is not public (repeatable)")
	return cmd
}

// upDetached re-runs `segflow up` in its own session with output to
// $SEGFLOW_HOME/segflow.log and waits until it has written the env file.
func upDetached(cmd *cobra.Command, home string) error {
	if err := privateDir(home); err != nil {
		return err
	}
	envFile := filepath.Join(home, "env")
	if pid, ok := runningPid(home); ok {
		return fmt.Errorf("segflow is already running (pid %d); `segflow down` first", pid)
	}
	_ = os.Remove(envFile)
	logPath := filepath.Join(home, "segflow.log")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	self, err := os.Executable()
	if err != nil {
		return err
	}
	var args []string
	for _, a := range os.Args[1:] {
		if a != "--detach" && a != "-d" && a != "--detach=true" {
			args = append(args, a)
		}
	}
	child := exec.Command(self, args...)
	child.Stdout, child.Stderr = logf, logf
	child.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := child.Start(); err != nil {
		return fmt.Errorf("start segflow up: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- child.Wait() }()
	deadline := time.After(15 * time.Minute)
	for {
		if env, err := envfile.Read(envFile); err == nil && env.PID == child.Process.Pid {
			printEndpoints(cmd, env, envFile)
			return nil
		}
		select {
		case err := <-exited:
			return fmt.Errorf("segflow up exited before it was ready (%v); see %s", err, logPath)
		case <-deadline:
			return fmt.Errorf("segflow up not ready after 15 minutes; see %s", logPath)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func printEndpoints(cmd *cobra.Command, env envfile.Env, envFile string) {
	out := cmd.OutOrStdout()
	fmt.Fprintf(out, "segflow is up (pid %d)\n", env.PID)
	fmt.Fprintf(out, "  gateway   %s  (user %s, password in %s)\n", env.Gateway, env.GatewayUser, envFile)
	fmt.Fprintf(out, "  console   %s  (same user and password)\n", env.Console)
	fmt.Fprintf(out, "  s3        http://%s  bucket %s\n", env.S3Endpoint, env.S3Bucket)
	fmt.Fprintf(out, "  nats      %s\n", env.NATS)
	// The stream key stays out of what is printed (and so out of
	// segflow.log); the env file (0600) has the full URLs.
	if u := env.RTMPURL; u != "" {
		fmt.Fprintf(out, "  rtmp      %s/<key>  ($SEGFLOW_RTMP_URL)\n", u[:strings.LastIndex(u, "/")])
	}
	if u := env.SRTURL; u != "" {
		fmt.Fprintf(out, "  srt       %s?streamid=<key>  ($SEGFLOW_SRT_URL)\n", strings.SplitN(u, "?", 2)[0])
	}
	if env.WHIPURL != "" {
		fmt.Fprintf(out, "  whip      %s  (bearer: the stream key; or the console's Go live page)\n", env.WHIPURL)
		fmt.Fprintf(out, "  whep      %s  (WebRTC playback while it publishes)\n", env.WHEPURL)
	}
	if env.RTMPURL != "" || env.SRTURL != "" || env.WHIPURL != "" {
		fmt.Fprintf(out, "  watch     http://%s/%s/%s  (the demo stream's channel)\n", env.S3Endpoint, env.S3Bucket, layout.Channel("demo").Master())
		fmt.Fprintf(out, "  ll-hls    %s/live/demo/index.m3u8  (its source, low latency, while it publishes)\n", env.Gateway)
	}
	fmt.Fprintf(out, "  functions %s\n", env.Functions)
	fmt.Fprintf(out, "load it in a shell with: . %s\n", envFile)
}

// runningPid reads the pid file and says whether that process lives.
func runningPid(home string) (int, bool) {
	b, err := os.ReadFile(filepath.Join(home, "segflow.pid"))
	if err != nil {
		return 0, false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0, false
	}
	return pid, syscall.Kill(pid, 0) == nil
}

// runStack runs the whole local stack in this process until a signal.
func runStack(cmd *cobra.Command, home, repo string, o upOptions) error {
	log := telemetry.NewLogger(os.Stderr, "segflow")
	if pid, ok := runningPid(home); ok && pid != os.Getpid() {
		return fmt.Errorf("segflow is already running (pid %d)", pid)
	}
	if err := privateDir(home); err != nil {
		return err
	}
	pidFile, envFile := filepath.Join(home, "segflow.pid"), filepath.Join(home, "env")
	if err := os.WriteFile(pidFile, []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		return err
	}
	defer os.Remove(pidFile)
	defer os.Remove(envFile)
	creds, err := loadCreds(home)
	if err != nil {
		return err
	}
	st, err := stack.Parse(filepath.Join(repo, o.stackFile))
	if err != nil {
		return err
	}
	s := &localStack{o: o, home: home, repo: repo, log: log, creds: creds, st: st,
		gwURL: fmt.Sprintf("http://127.0.0.1:%d", o.port), s3Addr: fmt.Sprintf("127.0.0.1:%d", o.s3Port)}
	switch {
	case o.nodes == 2 || o.nodes < 1:
		// Two JetStream nodes need each other for every write: either one
		// stopping stops the queue, so two is less available than one.
		return fmt.Errorf("--nodes %d: give 1, or 3 or more (a JetStream cluster of two stops when either node does)", o.nodes)
	case o.nodes > 1:
		if s.cluster, err = loadCluster(home, o.nodes); err != nil {
			return err
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer s.close()
	defer stop()

	if err := s.startStorage(ctx); err != nil {
		return err
	}
	conns, err := s.startQueue(ctx)
	if err != nil {
		return err
	}
	if err := s.startRelay(); err != nil {
		return err
	}
	if err := s.startRouter(ctx, conns["router"]); err != nil {
		return err
	}
	routes, err := s.routes(ctx)
	if err != nil {
		return err
	}
	g, err := s.startGateway(ctx, conns["gateway"], routes)
	if err != nil {
		return err
	}
	env := s.env()
	if err := envfile.Write(envFile, env); err != nil {
		return err
	}
	printEndpoints(cmd, env, envFile)
	log.Info("segflow up", "gateway", s.gwURL, "s3", s.s3Addr, "bucket", o.bucket)
	select {
	case <-ctx.Done():
		return nil
	case err := <-g.Done():
		return fmt.Errorf("gateway: %w", err)
	case <-s.storageDone:
		return errors.New("minio exited; stack stopped")
	}
}

// deployStack gives every function its MinIO user and deploys it through
// each gateway's API, as `segflow grant` and faas-cli would.
func deployStack(ctx context.Context, gws []*gwclient.Client, admin *s3iam.Admin, st *stack.Stack, bucket string, log *slog.Logger) error {
	if err := grantFunctions(ctx, admin, gws, st, bucket, nil); err != nil {
		return err
	}
	for _, c := range gws {
		if err := deployTo(ctx, c, st, log); err != nil {
			return fmt.Errorf("deploy to %s: %w", c.URL, err)
		}
	}
	return nil
}

// deployTo deploys st's functions to the gateway c.
func deployTo(ctx context.Context, c *gwclient.Client, st *stack.Stack, log *slog.Logger) error {
	// Before functions had users of their own, the shared secrets held
	// MinIO's root keys; a state folder from then must not keep them for
	// any deployment that lists them.
	secrets, err := c.GetSecrets(ctx, "")
	if err != nil {
		return err
	}
	for _, sec := range secrets {
		if ak, sk := storage.SecretNames(""); sec.Name == ak || sec.Name == sk {
			if err := c.DeleteSecret(ctx, sec.Name, ""); err != nil {
				return fmt.Errorf("remove the shared secret %s: %w", sec.Name, err)
			}
			log.Info("removed the shared secret that held MinIO's root keys", "secret", sec.Name)
		}
	}
	for _, n := range st.Names() {
		start := time.Now()
		dep, err := st.LocalDeployment(n)
		if err != nil {
			return err
		}
		if err := c.Deploy(ctx, dep); err != nil {
			return err
		}
		log.Info("function deployed", "function", n, "gateway", c.URL, "took_ms", time.Since(start).Milliseconds())
	}
	return nil
}

// privateDir makes the state folder readable by its owner only: it holds
// MinIO's data, the catalog, the credentials and the logs.
func privateDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	return os.Chmod(dir, 0o700)
}
