package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/gorilla/mux"
	"github.com/openfaas/faas-provider/auth"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"

	"github.com/segflow/segflow/infra/catalog"
	"github.com/segflow/segflow/infra/console"
	"github.com/segflow/segflow/infra/gwclient"
	"github.com/segflow/segflow/infra/local"
	"github.com/segflow/segflow/infra/local/gateway"
	"github.com/segflow/segflow/infra/natsq"
	"github.com/segflow/segflow/infra/playback"
	"github.com/segflow/segflow/infra/relay"
	"github.com/segflow/segflow/infra/router"
	"github.com/segflow/segflow/infra/s3iam"
	"github.com/segflow/segflow/infra/stack"
	"github.com/segflow/segflow/shared/config"
	"github.com/segflow/segflow/shared/layout"
	"github.com/segflow/segflow/shared/miniosrv"
	"github.com/segflow/segflow/shared/storage"
	"github.com/segflow/segflow/shared/telemetry"
)

// upOptions are the ports and names of the local stack.
type upOptions struct {
	detach    bool
	host      string // the gateway's listen address
	port      int
	s3Port    int
	natsPort  int
	bucket    string
	stackFile string
	rtmpPort  int
	srtPort   int
	callbacks []string // hosts async callbacks may reach though not public
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
	cmd.Flags().StringVarP(&o.stackFile, "file", "f", "stack.yml", "stack file, relative to the repository")
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
		if env, err := readEnvFile(envFile); err == nil && env["SEGFLOW_PID"] == strconv.Itoa(child.Process.Pid) {
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

func printEndpoints(cmd *cobra.Command, env map[string]string, envFile string) {
	out := cmd.OutOrStdout()
	fmt.Fprintf(out, "segflow is up (pid %s)\n", env["SEGFLOW_PID"])
	fmt.Fprintf(out, "  gateway   %s  (user %s, password in %s)\n", env["SEGFLOW_GATEWAY"], env["SEGFLOW_GATEWAY_USER"], envFile)
	fmt.Fprintf(out, "  console   %s  (same user and password)\n", env["SEGFLOW_CONSOLE"])
	fmt.Fprintf(out, "  s3        http://%s  bucket %s\n", env["S3_ENDPOINT"], env["S3_BUCKET"])
	fmt.Fprintf(out, "  nats      %s\n", env["SEGFLOW_NATS"])
	// The stream key stays out of what is printed (and so out of
	// segflow.log); the env file (0600) has the full URLs.
	if u := env["SEGFLOW_RTMP_URL"]; u != "" {
		fmt.Fprintf(out, "  rtmp      %s/<key>  ($SEGFLOW_RTMP_URL)\n", u[:strings.LastIndex(u, "/")])
	}
	if u := env["SEGFLOW_SRT_URL"]; u != "" {
		fmt.Fprintf(out, "  srt       %s?streamid=<key>  ($SEGFLOW_SRT_URL)\n", strings.SplitN(u, "?", 2)[0])
	}
	fmt.Fprintf(out, "  functions %s\n", env["SEGFLOW_FUNCTIONS"])
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

	authDir := filepath.Join(home, "auth")
	gwUser, err := credential(filepath.Join(authDir, "basic-auth-user"), "admin")
	if err != nil {
		return err
	}
	gwPass, err := credential(filepath.Join(authDir, "basic-auth-password"), "")
	if err != nil {
		return err
	}
	s3User, err := credential(filepath.Join(home, "minio-auth", "root-user"), "segflow")
	if err != nil {
		return err
	}
	s3Pass, err := credential(filepath.Join(home, "minio-auth", "root-password"), "")
	if err != nil {
		return err
	}
	webhookToken, err := credential(filepath.Join(home, "minio-auth", "webhook-token"), "")
	if err != nil {
		return err
	}
	gwURL := fmt.Sprintf("http://127.0.0.1:%d", o.port)
	// What MinIO posts while the router is not up yet (or restarting) is
	// dropped; the router's catch-up finds those writes in the bucket.
	target := router.MinIOTarget{ID: "segflow", Endpoint: gwURL + "/events/minio", Token: webhookToken}

	// The stack deploys as written for OpenFaaS: the runtime's function
	// settings (this MinIO, this bucket) win over the stack's defaults.
	s3Addr := fmt.Sprintf("127.0.0.1:%d", o.s3Port)
	st, err := stack.Parse(filepath.Join(repo, o.stackFile))
	if err != nil {
		return err
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	minioLog, err := os.OpenFile(filepath.Join(home, "minio.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	defer minioLog.Close()
	log.Info("starting minio", "address", s3Addr)
	ms, err := miniosrv.Start(ctx, miniosrv.Options{
		DataDir: filepath.Join(home, "minio"), Address: s3Addr, Console: fmt.Sprintf("127.0.0.1:%d", o.s3Port+1),
		RootUser: s3User, RootPassword: s3Pass, Log: minioLog, Env: target.Env(),
	})
	if err != nil {
		return err
	}
	defer ms.Stop()
	rootOpts := storage.Options{Endpoint: s3Addr, AccessKey: s3User, SecretKey: s3Pass}
	sc, err := storage.New(rootOpts)
	if err != nil {
		return err
	}
	if err := sc.EnsureBucket(ctx, o.bucket); err != nil {
		return err
	}
	if err := target.Subscribe(ctx, sc, o.bucket); err != nil {
		return err
	}
	// Players fetch playlists and segments straight from the bucket.
	if err := sc.SetPublicRead(ctx, o.bucket, layout.AssetsPrefix, layout.AssetsPrefix+layout.PrivateIDPrefix); err != nil {
		return err
	}
	// The root keys stay here, with the relay and the router. The console
	// (whose presigned part URLs carry the signer's key id) and the catalog
	// get MinIO users of their own, as every function does at deploy, each
	// with a new secret on every start.
	admin := adminFor(rootOpts)
	uiStore, err := scopedClient(ctx, admin, rootOpts, o.bucket, "segflow-console", console.StorageGrant())
	if err != nil {
		return err
	}
	catStore, err := scopedClient(ctx, admin, rootOpts, o.bucket, "segflow-catalog", catalog.StorageGrant())
	if err != nil {
		return err
	}
	// Private assets (uploads/private/) are not in the bucket's anonymous
	// read; players get them through the gateway's /play/ with a signed,
	// expiring token, read as a user that sees private assets only.
	playKey, err := credential(filepath.Join(authDir, "playback-key"), "")
	if err != nil {
		return err
	}
	signer, err := playback.NewSigner([]byte(playKey))
	if err != nil {
		return err
	}
	playStore, err := scopedClient(ctx, admin, rootOpts, o.bucket, "segflow-playback", playback.StorageGrant())
	if err != nil {
		return err
	}
	play := &playback.Server{Signer: signer, Store: playStore, Bucket: o.bucket, Public: "http://" + s3Addr + "/" + o.bucket,
		Gateway: gwURL, TTL: 4 * time.Hour, Log: log.With("component", "playback")}
	assetBase := func(id string) string { return play.Base(id, 0) }

	// Each component is a NATS user of its own; a local process without
	// their passwords cannot read, forge or delete queued work.
	natsUsers := map[string]string{}
	for _, u := range []string{"router", "gateway"} {
		if natsUsers[u], err = credential(filepath.Join(authDir, "nats-"+u+"-password"), ""); err != nil {
			return err
		}
	}
	ns, err := natsq.Start(natsq.Options{StoreDir: filepath.Join(home, "nats"), Port: o.natsPort, Users: natsUsers})
	if err != nil {
		return err
	}
	defer ns.Shutdown()
	nc, err := ns.Connect("router")
	if err != nil {
		return err
	}
	defer nc.Close()
	gwNC, err := ns.Connect("gateway")
	if err != nil {
		return err
	}
	defer gwNC.Close()

	// The relay: stream keys from a secrets file (name=key lines); a "demo"
	// key is made on the first run.
	keysFile := filepath.Join(authDir, "stream-keys")
	demoKey, err := credential(filepath.Join(authDir, "demo-stream-key"), "")
	if err != nil {
		return err
	}
	if !fileExists(keysFile) {
		if err := os.WriteFile(keysFile, []byte("# stream=key, one per line\ndemo="+demoKey+"\n"), 0o600); err != nil {
			return err
		}
	}
	keys, err := relay.LoadKeys(keysFile)
	if err != nil {
		return err
	}
	rl := &relay.Relay{}
	rcfg := relay.Config{Keys: keys, Store: sc, Bucket: o.bucket, SpoolDir: filepath.Join(home, "spool"),
		Logger: log.With("component", "relay"), Registerer: prometheus.DefaultRegisterer}
	if o.rtmpPort > 0 {
		rcfg.RTMPAddr = fmt.Sprintf(":%d", o.rtmpPort)
	}
	if o.srtPort > 0 {
		rcfg.SRTAddr = fmt.Sprintf(":%d", o.srtPort)
	}
	if rcfg.RTMPAddr != "" || rcfg.SRTAddr != "" {
		if err := rl.Initialize(rcfg); err != nil {
			return err
		}
		defer rl.Close()
	}

	gw := gwclient.New(gwURL, gwUser, gwPass)
	rtr, err := router.Open(ctx, router.Config{NATS: nc, Gateway: gw, Token: webhookToken, Storage: sc,
		CatchUpBucket: o.bucket, Logger: log.With("component", "router"), Registerer: prometheus.DefaultRegisterer})
	if err != nil {
		return err
	}
	defer rtr.Close()
	creds := &auth.BasicAuthCredentials{User: gwUser, Password: gwPass}
	// SQLite in the home folder, or PostgreSQL when SEGFLOW_CATALOG_URL
	// names one (postgres://...), for several gateways sharing a catalog.
	cat, err := catalog.Open(config.Env("SEGFLOW_CATALOG_URL", filepath.Join(home, "catalog.db")), catStore, o.bucket)
	if err != nil {
		return err
	}
	defer cat.Close()
	go cat.Run(ctx, 2*time.Second, log.With("component", "catalog"))
	api := &catalog.API{Catalog: cat, MediaBase: play.Public, AssetBase: assetBase}
	ui := &console.Console{Store: uiStore, Bucket: o.bucket, MediaBase: play.Public, AssetBase: assetBase}
	ready := make(chan error, 1)
	runErr := make(chan error, 1)
	go func() {
		runErr <- gateway.Run(ctx, gateway.Config{
			Runtime: local.Config{Home: filepath.Join(home, "runtime"), RepoRoot: repo, Logger: log,
				FunctionEnv: []string{"S3_ENDPOINT=" + s3Addr, "S3_BUCKET=" + o.bucket, "SEGFLOW_GATEWAY=" + gwURL}},
			Host: o.host, Port: o.port, AuthDir: authDir, NATS: gwNC,
			Async: local.AsyncOptions{Callbacks: local.CallbackPolicy{Hosts: o.callbacks}},
			Routes: func(r *mux.Router) {
				r.Handle("/events/minio", rtr.WebhookHandler()).Methods(http.MethodPost)
				r.HandleFunc("/system/deadletters", auth.DecorateWithBasicAuth(rtr.DeadLettersHandler(), creds))
				// The catalog knows every asset's name, on-screen text and
				// speech: it answers the gateway's users only.
				r.PathPrefix("/api/play/").Handler(auth.DecorateWithBasicAuth(play.Handler().ServeHTTP, creds))
				r.PathPrefix("/api/").Handler(auth.DecorateWithBasicAuth(api.Handler().ServeHTTP, creds))
				// The token in the path is the credential: no basic auth.
				r.PathPrefix("/play/").Handler(play.Handler())
				// The web console: it can upload and replay dead letters, so it
				// sits behind the gateway's basic auth.
				r.Handle("/ui", http.RedirectHandler("/ui/", http.StatusMovedPermanently))
				r.PathPrefix("/ui/").Handler(auth.DecorateWithBasicAuth(ui.Handler().ServeHTTP, creds))
			},
			Ready: func(rt *local.Runtime) {
				err := deployStack(ctx, gw, admin, st, o.bucket, log)
				if err == nil {
					err = rtr.Refresh(ctx)
				}
				ready <- err
			},
		})
	}()
	select {
	case err := <-runErr:
		if err == nil {
			err = errors.New("gateway stopped before it was ready")
		}
		return err
	case err := <-ready:
		if err != nil {
			stop()
			<-runErr
			return err
		}
	}
	env := map[string]string{
		"SEGFLOW_PID":              strconv.Itoa(os.Getpid()),
		"SEGFLOW_HOME":             home,
		"SEGFLOW_GATEWAY":          gwURL,
		"SEGFLOW_CONSOLE":          gwURL + "/ui/",
		"OPENFAAS_URL":             gwURL,
		"SEGFLOW_GATEWAY_USER":     gwUser,
		"SEGFLOW_GATEWAY_PASSWORD": gwPass,
		"S3_ENDPOINT":              s3Addr,
		"S3_ACCESS_KEY":            s3User,
		"S3_SECRET_KEY":            s3Pass,
		"S3_BUCKET":                o.bucket,
		"SEGFLOW_NATS":             ns.ClientURL(), // no credentials: they stay in the auth folder
		"SEGFLOW_FUNCTIONS":        strings.Join(st.Names(), ","),
	}
	if o.rtmpPort > 0 {
		env["SEGFLOW_RTMP_URL"] = fmt.Sprintf("rtmp://127.0.0.1:%d/live/%s", o.rtmpPort, demoKey)
	}
	if o.srtPort > 0 {
		env["SEGFLOW_SRT_URL"] = fmt.Sprintf("srt://127.0.0.1:%d?streamid=%s", o.srtPort, demoKey)
	}
	if err := writeEnvFile(envFile, env); err != nil {
		return err
	}
	printEndpoints(cmd, env, envFile)
	log.Info("segflow up", "gateway", gwURL, "s3", s3Addr, "bucket", o.bucket)
	select {
	case err := <-runErr:
		return err
	case <-ms.Done():
		stop()
		<-runErr
		return errors.New("minio exited; stack stopped")
	}
}

// deployStack gives every function its MinIO user and deploys it through
// the gateway API, as `segflow grant` and faas-cli would.
func deployStack(ctx context.Context, c *gwclient.Client, admin *s3iam.Admin, st *stack.Stack, bucket string, log *slog.Logger) error {
	if err := grantFunctions(ctx, admin, c, st, bucket, nil); err != nil {
		return err
	}
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
		log.Info("function deployed", "function", n, "took_ms", time.Since(start).Milliseconds())
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
