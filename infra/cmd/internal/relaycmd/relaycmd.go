// Package relaycmd is the relay's command line, shared by `segflow relay`
// and the thin segflow-relay binary the relay's container runs.
package relaycmd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/segflow/segflow/infra/playback"
	"github.com/segflow/segflow/infra/relay"
	"github.com/segflow/segflow/shared/config"
	"github.com/segflow/segflow/shared/storage"
	"github.com/segflow/segflow/shared/telemetry"
)

// New returns the command that runs the live ingest relay alone: the shape
// it has on Kubernetes (a Deployment with a Service for RTMP and SRT), and
// what scripts/bench live measures.
func New() *cobra.Command {
	var rtcIPs []string
	var maxViewers, maxPerStream int
	var rtmpAddr, srtAddr, rtcAddr, keysFile, playbackKeyFile, spoolDir, httpAddr, liveURL, pullsFile string
	cmd := &cobra.Command{
		Use:   "relay",
		Short: "Run the live ingest relay (RTMP, SRT, WHIP) writing segments to S3",
		RunE: func(cmd *cobra.Command, args []string) error {
			// One P unless GOMAXPROCS says otherwise: the relay only moves
			// bytes (20 publishers at 3 Mb/s take ~0.1 core), and with two
			// Ps the netpoller hands ready connections to a second thread;
			// those switches cost ~9% of its CPU in scripts/bench live
			// (3.0 -> 2.7 CPU-s; nginx-rtmp's one worker: 2.8). More
			// streams than one core carries: more replicas, as nginx
			// would add workers.
			if os.Getenv("GOMAXPROCS") == "" {
				runtime.GOMAXPROCS(1)
			}
			log := telemetry.NewLogger(os.Stderr, "relay")
			opts, err := storage.OptionsFromEnv("")
			if err != nil {
				return err
			}
			sc, err := storage.New(opts)
			if err != nil {
				return err
			}
			keys, err := relay.LoadKeys(keysFile)
			if err != nil {
				return err
			}
			signer, err := loadSigner(playbackKeyFile)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
			defer stop()
			reg := telemetry.NewRegistry()
			r, err := relay.Open(relay.Config{RTMPAddr: rtmpAddr, SRTAddr: srtAddr, WebRTCAddr: rtcAddr, WebRTCPublicIPs: rtcIPs, MaxViewers: maxViewers, MaxViewersPerStream: maxPerStream, Playback: signer, Keys: keys, Store: sc,
				Bucket: config.Env("S3_BUCKET", "media"), SpoolDir: spoolDir, LowLatencyURL: liveURL, PullsFile: pullsFile, Logger: log, Registerer: reg})
			if err != nil {
				return err
			}
			mux := http.NewServeMux()
			mux.Handle("/healthz", telemetry.HealthHandler(nil))
			mux.Handle("/metrics", telemetry.MetricsHandler(reg))
			mux.Handle("/live/", http.StripPrefix("/live", r.LowLatency()))
			mux.Handle("GET /pulls", r.PullsHandler())
			mux.Handle("/whip", r.WHIP())
			mux.Handle("/whip/", r.WHIP())
			mux.Handle("/whep/", r.WHEP())
			srv := &http.Server{Addr: httpAddr, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
			go func() {
				if err := srv.ListenAndServe(); err != nil && err != http.ErrServerClosed {
					log.Error("relay http", "err", err)
				}
			}()
			defer srv.Close()
			fmt.Fprintln(cmd.OutOrStdout(), "relay up")
			<-ctx.Done()
			r.Close()
			return nil
		},
	}
	cmd.Flags().StringVar(&rtmpAddr, "rtmp", ":1935", "RTMP listen address (empty: off)")
	cmd.Flags().StringVar(&srtAddr, "srt", ":8890", "SRT listen address (empty: off)")
	cmd.Flags().StringVar(&rtcAddr, "webrtc", ":8189", "WebRTC media address, UDP: publishers POST offers to --http's /whip, viewers to /whep/<stream> (empty: off)")
	cmd.Flags().StringSliceVar(&rtcIPs, "webrtc-ip", nil, "public address(es) WebRTC answers advertise when the relay is behind NAT")
	cmd.Flags().IntVar(&maxViewers, "max-viewers", 500, "WebRTC (WHEP) viewers the relay serves at most (0: no cap)")
	cmd.Flags().IntVar(&maxPerStream, "max-viewers-per-stream", 200, "WebRTC (WHEP) viewers of one stream at most (0: no cap)")
	cmd.Flags().StringVar(&keysFile, "keys", config.SecretsDir()+"/stream-keys", "stream keys file (name=key lines)")
	cmd.Flags().StringVar(&playbackKeyFile, "playback-key", config.SecretsDir()+"/playback-key", "the gateway's playback signing key: private streams' WebRTC viewers need a token made with it (none there: they get none)")
	cmd.Flags().StringVar(&spoolDir, "spool", "/var/lib/segflow/spool", "spool folder")
	cmd.Flags().StringVar(&pullsFile, "pulls", "", `streams to pull ("name url" lines: rtmp://, srt://, http(s)://...flv, http(s)://...m3u8), followed as it changes; served at --http's /pulls`)
	cmd.Flags().StringVar(&httpAddr, "http", ":9100", "address for /healthz, /metrics, /pulls, /whip and /live/<stream>/index.m3u8 (LL-HLS)")
	cmd.Flags().StringVar(&liveURL, "live-url", "", "the URL viewers reach --http's /live at (http://host:port/live): live masters list each stream's LL-HLS rendition there")
	return cmd
}

// loadSigner reads the playback key the gateway signs tokens with; a
// relay without one admits no WebRTC viewer of a private stream.
func loadSigner(path string) (*playback.Signer, error) {
	key, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("playback key: %w", err)
	}
	return playback.NewSigner(bytes.TrimSpace(key))
}
