package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/segflow/segflow/infra/envfile"
	"github.com/segflow/segflow/shared/asset"
	"github.com/segflow/segflow/shared/layout"
	"github.com/segflow/segflow/shared/storage"
)

// storageFor signs in to the stack's object store: S3_* from the
// environment, else from the env file `segflow up` wrote.
func storageFor(cmd *cobra.Command) (*storage.Client, string, error) {
	o, bucket, err := storageOptions(cmd)
	if err != nil {
		return nil, "", err
	}
	c, err := storage.New(o)
	return c, bucket, err
}

// storageOptions are the S3_* settings storageFor signs in with: from the
// environment, else from the env file `segflow up` wrote.
func storageOptions(cmd *cobra.Command) (storage.Options, string, error) {
	env := envfile.FromEnviron()
	if env.S3AccessKey == "" {
		home, err := homeDir(cmd)
		if err != nil {
			return storage.Options{}, "", err
		}
		if env, err = envfile.Read(filepath.Join(home, "env")); err != nil {
			return storage.Options{}, "", fmt.Errorf("no S3_* in the environment and no %s: is `segflow up` running? (%w)", filepath.Join(home, "env"), err)
		}
	}
	bucket := env.S3Bucket
	if bucket == "" {
		bucket = "media"
	}
	return storage.Options{Endpoint: env.S3Endpoint, AccessKey: env.S3AccessKey, SecretKey: env.S3SecretKey,
		Secure: os.Getenv("S3_SECURE") == "true", Region: os.Getenv("S3_REGION")}, bucket, nil
}

func uploadCmd() *cobra.Command {
	var (
		key, codecs, packaging, encryption, crop, ladder, wmText, wmImage, wmPos, wmOpacity string
		wait, quiet, private                                                                bool
	)
	cmd := &cobra.Command{
		Use:   "upload FILE",
		Short: "Upload a video to uploads/ and print its asset id",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, bucket, err := storageFor(cmd)
			if err != nil {
				return err
			}
			f, err := os.Open(args[0])
			if err != nil {
				return err
			}
			defer f.Close()
			st, err := f.Stat()
			if err != nil {
				return err
			}
			switch {
			case key == "" && private:
				key = layout.PrivateUploadsPrefix + filepath.Base(args[0])
			case key == "":
				key = layout.UploadsPrefix + filepath.Base(args[0])
			case private && !strings.HasPrefix(key, layout.PrivateUploadsPrefix):
				return fmt.Errorf("key %q: private uploads go under %s", key, layout.PrivateUploadsPrefix)
			}
			if !strings.HasPrefix(key, layout.UploadsPrefix) {
				return fmt.Errorf("key %q: uploads go under %s", key, layout.UploadsPrefix)
			}
			meta := map[string]string{}
			for k, v := range map[string]string{"Segflow-Codecs": codecs, "Segflow-Packaging": packaging, "Segflow-Encryption": encryption, "Segflow-Crop": crop, "Segflow-Ladder": ladder, "Watermark-Text": wmText,
				"Watermark-Image": wmImage, "Watermark-Position": wmPos, "Watermark-Opacity": wmOpacity} {
				if v != "" {
					meta[k] = v
				}
			}
			opts := storage.PutOptions{ContentType: "video/" + strings.TrimPrefix(filepath.Ext(args[0]), "."), Metadata: meta}
			if !quiet {
				opts.Progress = progressbar.DefaultBytes(st.Size(), "uploading "+filepath.Base(args[0]))
			}
			if err := c.Put(cmd.Context(), bucket, key, f, st.Size(), opts); err != nil {
				return err
			}
			info, err := c.Stat(cmd.Context(), bucket, key)
			if err != nil {
				return err
			}
			id := layout.AssetID(key, info.ETag)
			if !quiet {
				fmt.Fprintln(os.Stderr)
			}
			fmt.Fprintln(cmd.OutOrStdout(), id)
			if wait {
				return waitFor(cmd.Context(), c, bucket, id, 30*time.Minute, cmd)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&key, "key", "", "object key (default uploads/<file name>)")
	cmd.Flags().StringVar(&codecs, "codecs", "", "rendition codecs, comma separated: h264,h265,vp9,av1 (default h264)")
	cmd.Flags().StringVar(&packaging, "packaging", "", "cmaf: every rendition fragmented MP4, listed by master.m3u8 and a DASH manifest.mpd (default MPEG-TS for H.264)")
	cmd.Flags().StringVar(&encryption, "encryption", "", "aes-128: encrypt every MPEG-TS segment; cbcs (with --packaging cmaf): encrypt every CMAF sample for EME Clear Key; players get the key only through the URLs /api/play/<id> returns")
	cmd.Flags().StringVar(&crop, "crop", "", "auto: cut off the black bars (cropdetect over the file), the ladder from what is left")
	cmd.Flags().StringVar(&ladder, "ladder", "", "content-aware: fit each H.264 rung's quality to the picture (trial encodes of three 2 s samples; a capped CRF for 0.997 SSIM), fewer bytes where the picture is easy; fixed (default): every rung at its fixed bitrate")
	cmd.Flags().StringVar(&wmText, "watermark-text", "", "burn this text into the video")
	cmd.Flags().StringVar(&wmImage, "watermark-image", "", "burn this PNG (a key in the bucket) into the video")
	cmd.Flags().StringVar(&wmPos, "watermark-position", "", "top-left, top-right, bottom-left, bottom-right (default) or center")
	cmd.Flags().StringVar(&wmOpacity, "watermark-opacity", "", "watermark opacity, 0..1 (default 0.7)")
	cmd.Flags().BoolVar(&private, "private", false, "a private asset (uploads/private/): played through signed, expiring URLs only (segflow play)")
	cmd.Flags().BoolVar(&wait, "wait", false, "wait until the asset is complete or failed")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "no progress bar")
	return cmd
}

func statusCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "status ASSET",
		Short: "Print an asset's status document",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, bucket, err := storageFor(cmd)
			if err != nil {
				return err
			}
			s, err := asset.ReadStatus(cmd.Context(), c, bucket, args[0])
			if err != nil {
				return err
			}
			enc := json.NewEncoder(cmd.OutOrStdout())
			enc.SetIndent("", "  ")
			return enc.Encode(s)
		},
	}
}

func waitCmd() *cobra.Command {
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "wait ASSET",
		Short: "Wait until an asset is complete (exit 0) or failed (exit 1)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, bucket, err := storageFor(cmd)
			if err != nil {
				return err
			}
			return waitFor(cmd.Context(), c, bucket, args[0], timeout, cmd)
		},
	}
	cmd.Flags().DurationVar(&timeout, "timeout", 30*time.Minute, "give up after this long")
	return cmd
}

// waitFor polls the status until it is complete or failed.
func waitFor(ctx context.Context, c *storage.Client, bucket, id string, timeout time.Duration, cmd *cobra.Command) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		s, err := asset.ReadStatus(ctx, c, bucket, id)
		switch {
		case err == nil && s.State == asset.StateComplete:
			fmt.Fprintf(cmd.OutOrStdout(), "%s complete: %s/%s\n", id, bucket, layout.Asset(id).Master())
			return nil
		case err == nil && s.State == asset.StateFailed:
			return fmt.Errorf("%s failed: %s", id, s.Error)
		case err != nil && !errors.Is(err, storage.ErrNotFound):
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: still not done: %w", id, ctx.Err())
		case <-time.After(500 * time.Millisecond):
		}
	}
}
