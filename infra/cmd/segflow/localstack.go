package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/gorilla/mux"
	"github.com/nats-io/nats.go"
	"github.com/openfaas/faas-provider/auth"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/segflow/segflow/infra/catalog"
	"github.com/segflow/segflow/infra/console"
	"github.com/segflow/segflow/infra/envfile"
	"github.com/segflow/segflow/infra/gwclient"
	"github.com/segflow/segflow/infra/playback"
	"github.com/segflow/segflow/infra/provider"
	"github.com/segflow/segflow/infra/provider/gateway"
	"github.com/segflow/segflow/infra/queue"
	"github.com/segflow/segflow/infra/relay"
	"github.com/segflow/segflow/infra/router"
	"github.com/segflow/segflow/infra/s3iam"
	"github.com/segflow/segflow/infra/stack"
	"github.com/segflow/segflow/shared/config"
	"github.com/segflow/segflow/shared/layout"
	"github.com/segflow/segflow/shared/miniosrv"
	"github.com/segflow/segflow/shared/storage"
)

// stackCreds are the stack's own secrets in the state folder, each made
// on the first run and kept (0600): see README's Security section.
type stackCreds struct {
	GatewayUser, GatewayPassword string
	S3User, S3Password           string // MinIO's root
	WebhookToken                 string // what MinIO's notifications carry
	PlaybackKey                  string // signs private assets' URLs
	DemoStreamKey                string
	NATS                         map[string]string // component: password
}

// natsUsers are the components that use the queue, each a user: MinIO
// publishes the router's journal (router/journal.go).
var natsUsers = []string{"router", "gateway", "minio"}

// natsClients are the users segflow itself connects as.
var natsClients = []string{"router", "gateway"}

func loadCreds(home string) (stackCreds, error) {
	authDir, minioDir := filepath.Join(home, "auth"), filepath.Join(home, "minio-auth")
	c := stackCreds{NATS: map[string]string{}}
	fields := []struct {
		dst         *string
		path, fixed string
	}{
		{&c.GatewayUser, filepath.Join(authDir, "basic-auth-user"), "admin"},
		{&c.GatewayPassword, filepath.Join(authDir, "basic-auth-password"), ""},
		{&c.S3User, filepath.Join(minioDir, "root-user"), "segflow"},
		{&c.S3Password, filepath.Join(minioDir, "root-password"), ""},
		{&c.WebhookToken, filepath.Join(minioDir, "webhook-token"), ""},
		{&c.PlaybackKey, filepath.Join(authDir, "playback-key"), ""},
		{&c.DemoStreamKey, filepath.Join(authDir, "demo-stream-key"), ""},
	}
	for _, f := range fields {
		v, err := credential(f.path, f.fixed)
		if err != nil {
			return c, err
		}
		*f.dst = v
	}
	for _, u := range natsUsers {
		v, err := credential(filepath.Join(authDir, "nats-"+u+"-password"), "")
		if err != nil {
			return c, err
		}
		c.NATS[u] = v
	}
	return c, nil
}

// localStack is what `segflow up` runs in its process, each component
// opened in order by a start* method (Open ... Close, as every
// long-running component of segflow); close stops them in reverse order.
type localStack struct {
	o          upOptions
	home, repo string
	log        *slog.Logger
	creds      stackCreds
	st         *stack.Stack
	gwURL      string
	s3Addr     string

	closers []func()

	minio *miniosrv.Server // nil with --nodes (a pool: cluster)
	// storageDone is closed when the one MinIO server exits (a pool's
	// servers are started again instead: nil).
	storageDone <-chan struct{}
	cluster     *cluster        // the processes of --nodes; nil without
	natsURL     string          // every queue node's client URL, comma-separated
	root        *storage.Client // MinIO's root: the relay, the router, bucket set-up
	rootOps     storage.Options
	admin       *s3iam.Admin
	queue       *queue.Server
	rtr         *router.Router
	relay       *relay.Relay // nil with RTMP and SRT off
	gw          *gwclient.Client
}

func (s *localStack) onClose(f func()) { s.closers = append(s.closers, f) }

func (s *localStack) close() {
	for i := len(s.closers) - 1; i >= 0; i-- {
		s.closers[i]()
	}
}

func (s *localStack) authDir() string { return filepath.Join(s.home, "auth") }

// startStorage runs MinIO (one server, or with --nodes a distributed
// pool) and sets the bucket up: notifications to the router's webhook,
// anonymous read of public assets only.
func (s *localStack) startStorage(ctx context.Context) error {
	if s.cluster != nil {
		if err := s.startPool(ctx); err != nil {
			return err
		}
	} else {
		o, err := s.minioOptions(filepath.Join(s.home, "minio"))
		if err != nil {
			return err
		}
		o.Address, o.Console = s.s3Addr, fmt.Sprintf("127.0.0.1:%d", s.o.s3Port+1)
		s.log.Info("starting minio", "address", s.s3Addr)
		s.minio, err = miniosrv.Open(ctx, o)
		if err != nil {
			return err
		}
		s.onClose(s.minio.Close)
		s.storageDone = s.minio.Done()
	}
	s.rootOps = storage.Options{Endpoint: s.s3Addr, AccessKey: s.creds.S3User, SecretKey: s.creds.S3Password}
	var err error
	if s.root, err = storage.New(s.rootOps); err != nil {
		return err
	}
	s.admin = adminFor(s.rootOps)
	// A pool that has just formed may still refuse a write to its
	// configuration ("Resource requested is unwritable") for a moment.
	deadline := time.Now().Add(time.Minute)
	for {
		err := s.setupBucket(ctx)
		if err == nil || time.Now().After(deadline) || ctx.Err() != nil {
			return err
		}
		s.log.Warn("bucket set-up failed; trying again", "err", err)
		time.Sleep(time.Second)
	}
}

// setupBucket makes the bucket, subscribes the router's webhook to it
// and lets anyone read public assets.
func (s *localStack) setupBucket(ctx context.Context) error {
	if err := s.root.EnsureBucket(ctx, s.o.bucket); err != nil {
		return err
	}
	if err := s.webhookTarget().Subscribe(ctx, s.root, s.o.bucket); err != nil {
		return err
	}
	// Players fetch public assets' playlists and segments straight from
	// the bucket; private ones only through /play/.
	return s.root.SetPublicRead(ctx, s.o.bucket, layout.AssetsPrefix, layout.AssetsPrefix+layout.PrivateIDPrefix)
}

// minioOptions are what every MinIO server of the stack runs with: its
// data under dataDir, root keys, the router's webhook as a notification
// target, output to minio.log.
func (s *localStack) minioOptions(dataDir string) (miniosrv.Options, error) {
	// What MinIO posts while the router is not up yet (or restarting) is
	// dropped; the router's catch-up finds those writes in the bucket.
	minioLog, err := os.OpenFile(filepath.Join(s.home, "minio.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return miniosrv.Options{}, err
	}
	s.onClose(func() { minioLog.Close() })
	return miniosrv.Options{DataDir: dataDir, RootUser: s.creds.S3User, RootPassword: s.creds.S3Password, Log: minioLog,
		Env: s.webhookTarget().Env()}, nil
}

// webhookTarget is how MinIO tells the router of writes: the webhook, and
// the journal on the queue (with --nodes, the first node's: MinIO takes
// one address; while that node is down its publishes fail, MinIO counts
// them, and the router lists the bucket to catch up).
func (s *localStack) webhookTarget() router.MinIOTarget {
	natsAddr := fmt.Sprintf("127.0.0.1:%d", s.o.natsPort)
	if s.cluster != nil {
		natsAddr = s.cluster.file.NATS[0].Addr
	}
	return router.MinIOTarget{ID: "segflow", Endpoint: s.gwURL + "/events/minio", Token: s.creds.WebhookToken,
		NATSAddress: natsAddr, NATSUser: "minio", NATSPassword: s.creds.NATS["minio"]}
}

// scoped returns a client signed in as user, a MinIO user with grant g
// and a new secret: the root keys stay with the relay and the router.
func (s *localStack) scoped(ctx context.Context, user string, g s3iam.Grant) (*storage.Client, error) {
	return scopedClient(ctx, s.admin, s.rootOps, s.o.bucket, user, g)
}

// startQueue runs NATS JetStream with a user per component (a local
// process without their passwords cannot read, forge or delete queued
// work) and connects each.
func (s *localStack) startQueue(ctx context.Context) (map[string]*nats.Conn, error) {
	if s.cluster != nil {
		return s.startQueueNodes(ctx)
	}
	var err error
	s.queue, err = queue.Open(queue.Options{StoreDir: filepath.Join(s.home, "nats"), Port: s.o.natsPort, Users: s.creds.NATS})
	if err != nil {
		return nil, err
	}
	s.onClose(s.queue.Close)
	s.natsURL = s.queue.ClientURL()
	conns := map[string]*nats.Conn{}
	for _, u := range natsClients {
		nc, err := s.queue.Connect(u)
		if err != nil {
			return nil, err
		}
		s.onClose(nc.Close)
		conns[u] = nc
	}
	return conns, nil
}

// startRelay runs RTMP and SRT ingest with the stream keys of
// auth/stream-keys (name=key lines; a "demo" key on the first run).
func (s *localStack) startRelay() error {
	if s.o.rtmpPort <= 0 && s.o.srtPort <= 0 && s.o.webrtcPort <= 0 {
		return nil
	}
	keysFile := filepath.Join(s.authDir(), "stream-keys")
	if !fileExists(keysFile) {
		if err := os.WriteFile(keysFile, []byte("# stream=key, one per line\ndemo="+s.creds.DemoStreamKey+"\n"), 0o600); err != nil {
			return err
		}
	}
	keys, err := relay.LoadKeys(keysFile)
	if err != nil {
		return err
	}
	signer, err := playback.NewSigner([]byte(s.creds.PlaybackKey))
	if err != nil {
		return err
	}
	cfg := relay.Config{Keys: keys, Playback: signer, Store: s.root, Bucket: s.o.bucket, SpoolDir: filepath.Join(s.home, "spool"), LowLatencyURL: s.gwURL + "/live",
		PullsFile: pullsFile(s.home),
		Logger:    s.log.With("component", "relay"), Registerer: prometheus.DefaultRegisterer}
	if s.o.rtmpPort > 0 {
		cfg.RTMPAddr = fmt.Sprintf(":%d", s.o.rtmpPort)
	}
	if s.o.srtPort > 0 {
		cfg.SRTAddr = fmt.Sprintf(":%d", s.o.srtPort)
	}
	if s.o.webrtcPort > 0 {
		cfg.WebRTCAddr = fmt.Sprintf(":%d", s.o.webrtcPort)
	}
	rl, err := relay.Open(cfg)
	if err != nil {
		return err
	}
	s.relay = rl
	s.onClose(rl.Close)
	return nil
}

// startRouter opens the router on its queue connection.
func (s *localStack) startRouter(ctx context.Context, nc *nats.Conn) error {
	s.gw = gwclient.New(s.gwURL, s.creds.GatewayUser, s.creds.GatewayPassword)
	var err error
	s.rtr, err = router.Open(ctx, router.Config{NATS: nc, Gateway: s.gw, Token: s.creds.WebhookToken, Storage: s.root,
		CatchUpBucket: s.o.bucket, Logger: s.log.With("component", "router"), Registerer: prometheus.DefaultRegisterer,
		Replicas: s.replicas()})
	if err != nil {
		return err
	}
	s.onClose(s.rtr.Close)
	return nil
}

// routes are segflow's own routes on the gateway: the router's webhook
// and dead letters, the catalog, playback and the console, each a MinIO
// user of its own.
func (s *localStack) routes(ctx context.Context) (func(*mux.Router), error) {
	// The console's presigned part URLs carry the signer's key id.
	uiStore, err := s.scoped(ctx, "segflow-console", console.StorageGrant())
	if err != nil {
		return nil, err
	}
	catStore, err := s.scoped(ctx, "segflow-catalog", catalog.StorageGrant())
	if err != nil {
		return nil, err
	}
	signer, err := playback.NewSigner([]byte(s.creds.PlaybackKey))
	if err != nil {
		return nil, err
	}
	playStore, err := s.scoped(ctx, "segflow-playback", playback.StorageGrant())
	if err != nil {
		return nil, err
	}
	play := &playback.Server{Signer: signer, Store: playStore, Bucket: s.o.bucket, Public: "http://" + s.s3Addr + "/" + s.o.bucket,
		Gateway: s.gwURL, TTL: 4 * time.Hour, Log: s.log.With("component", "playback")}
	assetBase := func(id string) string { return play.Base(id, 0) }
	// SQLite in the home folder, or PostgreSQL when SEGFLOW_CATALOG_URL
	// names one (postgres://...), for several gateways sharing a catalog.
	cat, err := catalog.Open(config.Env("SEGFLOW_CATALOG_URL", filepath.Join(s.home, "catalog.db")), catStore, s.o.bucket)
	if err != nil {
		return nil, err
	}
	cat.RegisterMetrics(prometheus.DefaultRegisterer)
	cat.Watch(2*time.Second, s.log.With("component", "catalog"))
	s.onClose(func() { cat.Close() })
	api := &catalog.API{Catalog: cat, MediaBase: play.Public, AssetBase: assetBase}
	ui := &console.Console{Store: uiStore, Bucket: s.o.bucket, MediaBase: play.Public, AssetBase: assetBase}
	if s.relay != nil && s.relay.WebRTCAddr() != nil {
		ui.WHIPURL = "/whip" // on this gateway, the page's own origin
		ui.WHEPURL = "/whep"
		ui.WHEPToken = func(stream string) string { t, _ := play.StreamToken(stream, 0); return t }
	}
	creds := &auth.BasicAuthCredentials{User: s.creds.GatewayUser, Password: s.creds.GatewayPassword}
	withAuth := func(h http.Handler) http.Handler { return auth.DecorateWithBasicAuth(h.ServeHTTP, creds) }
	return func(r *mux.Router) {
		r.Handle("/events/minio", s.rtr.WebhookHandler()).Methods(http.MethodPost)
		r.Handle("/system/deadletters", withAuth(http.HandlerFunc(s.rtr.DeadLettersHandler())))
		// The catalog knows every asset's name, on-screen text and speech:
		// it answers the gateway's users only, as does issuing play URLs.
		r.PathPrefix("/api/play/").Handler(withAuth(play.Handler()))
		if s.relay != nil {
			r.Handle("/api/pulls", withAuth(s.relay.PullsHandler())).Methods(http.MethodGet)
		}
		r.PathPrefix("/api/").Handler(withAuth(api.Handler()))
		// The token in the path is the credential: no basic auth.
		r.PathPrefix("/play/").Handler(play.Handler())
		// The web console can upload and replay dead letters.
		r.Handle("/ui", http.RedirectHandler("/ui/", http.StatusMovedPermanently))
		r.PathPrefix("/ui/").Handler(withAuth(ui.Handler()))
		// Live streams' LL-HLS source renditions, public as their
		// playlists in the bucket are.
		if s.relay != nil {
			r.PathPrefix("/live/").Handler(http.StripPrefix("/live", s.relay.LowLatency()))
			// WHIP publishers: the stream key is the bearer token.
			r.Handle("/whip", s.relay.WHIP())
			r.PathPrefix("/whip/").Handler(s.relay.WHIP())
			// WHEP viewers of live streams, open as the channels are.
			r.PathPrefix("/whep/").Handler(s.relay.WHEP())
		}
	}, nil
}

// startGateway serves the gateway (the OpenFaaS API and the functions'
// runtime) and deploys the stack through it, as faas-cli would.
func (s *localStack) startGateway(ctx context.Context, nc *nats.Conn, routes func(*mux.Router)) (*gateway.Gateway, error) {
	g, err := gateway.Open(ctx, gateway.Config{
		// The stack deploys as written for OpenFaaS: the runtime's function
		// settings (this MinIO, this bucket) win over the stack's defaults.
		Runtime: provider.Config{Home: filepath.Join(s.home, "runtime"), RepoRoot: s.repo, Logger: s.log,
			FunctionEnv: []string{"S3_ENDPOINT=" + s.s3Addr, "S3_BUCKET=" + s.o.bucket, "SEGFLOW_GATEWAY=" + s.gwURL}},
		Host: s.o.host, Port: s.o.port, AuthDir: s.authDir(), NATS: nc,
		Async:  provider.AsyncOptions{Callbacks: provider.CallbackPolicy{Hosts: s.o.callbacks}, Replicas: s.replicas()},
		Routes: routes,
	})
	if err != nil {
		return nil, err
	}
	s.onClose(g.Close)
	gws := []*gwclient.Client{s.gw}
	if s.cluster != nil {
		nodes, err := s.startRuntimeNodes(ctx)
		if err != nil {
			return nil, err
		}
		gws = append(gws, nodes...)
	}
	if err := deployStack(ctx, gws, s.admin, s.st, s.o.bucket, s.log); err != nil {
		return nil, err
	}
	return g, s.rtr.Refresh(ctx)
}

// env is what the env file exports: where everything is, and the keys a
// user at a shell needs (NATS's stay in the auth folder).
func (s *localStack) env() envfile.Env {
	e := envfile.Env{PID: os.Getpid(), Home: s.home, Gateway: s.gwURL, Console: s.gwURL + "/ui/",
		GatewayUser: s.creds.GatewayUser, GatewayPassword: s.creds.GatewayPassword,
		S3Endpoint: s.s3Addr, S3AccessKey: s.creds.S3User, S3SecretKey: s.creds.S3Password, S3Bucket: s.o.bucket,
		NATS: s.natsURL, Functions: strings.Join(s.st.Names(), ",")}
	if s.o.rtmpPort > 0 {
		e.RTMPURL = fmt.Sprintf("rtmp://127.0.0.1:%d/live/%s", s.o.rtmpPort, s.creds.DemoStreamKey)
	}
	if s.o.webrtcPort > 0 {
		e.WHIPURL = s.gwURL + "/whip"
		e.WHEPURL = s.gwURL + "/whep/{stream}"
	}
	if s.o.srtPort > 0 {
		e.SRTURL = fmt.Sprintf("srt://127.0.0.1:%d?streamid=%s", s.o.srtPort, s.creds.DemoStreamKey)
	}
	return e
}
