package split

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/segflow/segflow/shared/asset"
	"github.com/segflow/segflow/shared/layout"
	"github.com/segflow/segflow/shared/media"
	"github.com/segflow/segflow/shared/media/mediatest"
	"github.com/segflow/segflow/shared/stage"
	"github.com/segflow/segflow/shared/storage"
	"github.com/segflow/segflow/shared/testenv"
)

// TestSplitReadsInPlaceOrACopy: the split reads the upload in place,
// through a presigned URL. Where that read fails (here a proxy in front
// of a real MinIO refuses presigned requests, as a gateway that passes
// only header-signed ones would), it splits a downloaded copy, into the
// same segments. A truncated upload fails either way, judged on the copy,
// with a reason that shows no URL, in the status or in the log.
func TestSplitReadsInPlaceOrACopy(t *testing.T) {
	m := testenv.StartMinIO(t)
	bucket := m.Bucket(t, "media")
	ctx := context.Background()
	src := filepath.Join(t.TempDir(), "clip.mp4")
	mediatest.Make(t, src, mediatest.Clip{Seconds: 9, Width: 320, Height: 180, Audio: true})
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		refuse   bool // presigned requests
		body     []byte
		failed   bool
		fallback bool
	}{
		{"in place", false, data, false, false},
		{"presigned read refused", true, data, false, true},
		{"truncated", false, data[:len(data)/2], true, true},
		{"truncated, presigned read refused", true, data[:len(data)/2], true, true},
	}
	segments := map[string][]string{} // ETags of each good case's source segments
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var presigned atomic.Int64
			target, _ := url.Parse("http://" + m.Options.Endpoint)
			proxy := &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
				r.SetURL(target)
				r.Out.Host = r.In.Host // signed by the client: MinIO checks it
			}}
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Query().Has("X-Amz-Signature") {
					presigned.Add(1)
					if tc.refuse {
						http.Error(w, "query authentication is not allowed here", http.StatusForbidden)
						return
					}
				}
				proxy.ServeHTTP(w, r)
			}))
			defer srv.Close()
			opts := m.Options
			opts.Endpoint = strings.TrimPrefix(srv.URL, "http://")
			c, err := storage.New(opts)
			if err != nil {
				t.Fatal(err)
			}
			var logs bytes.Buffer
			e := &stage.Env{Name: name, Store: c, Bucket: bucket, Log: slog.New(slog.NewJSONHandler(&logs, nil)), TempDir: t.TempDir()}
			key := fmt.Sprintf("uploads/clip-%d.mp4", i)
			if err := m.Client.PutBytes(ctx, bucket, key, tc.body, storage.PutOptions{ContentType: "video/mp4"}); err != nil {
				t.Fatal(err)
			}
			info, err := m.Client.Stat(ctx, bucket, key)
			if err != nil {
				t.Fatal(err)
			}
			id := layout.AssetID(key, info.ETag)

			msg, err := split(ctx, e, &stage.Trigger{Bucket: bucket, Key: key, Layout: layout.Parse(key)})
			t.Logf("split: %q, %v", msg, err)
			if presigned.Load() == 0 {
				t.Errorf("the upload was never read in place")
			}
			if got := strings.Contains(logs.String(), "splitting a downloaded copy"); got != tc.fallback {
				t.Errorf("split a downloaded copy: %v, want %v\n%s", got, tc.fallback, logs.String())
			}
			if strings.Contains(logs.String(), "X-Amz-Signature") {
				t.Errorf("the log shows a presigned URL:\n%s", logs.String())
			}
			st, serr := asset.ReadStatus(ctx, m.Client, bucket, id)
			if serr != nil {
				t.Fatal(serr)
			}
			if tc.failed {
				var perm *stage.PermanentError
				if !errors.As(err, &perm) || st.State != asset.StateFailed || !strings.Contains(st.Error, "truncated") {
					t.Fatalf("got %v and status %s %q; want a permanent failure that says truncated", err, st.State, st.Error)
				}
				if strings.Contains(st.Error, "X-Amz") || strings.Contains(st.Error, "http://") || strings.Contains(st.Error, e.TempDir) {
					t.Errorf("the reason shows a URL or a temporary file: %s", st.Error)
				}
				if !strings.Contains(st.Error, key) {
					t.Errorf("the reason does not name the upload %s: %s", key, st.Error)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			man, err := asset.ReadManifest(ctx, m.Client, bucket, id)
			if err != nil {
				t.Fatal(err)
			}
			if man.Splitting || len(man.Segments) < 2 || st.Stages["split"].State != asset.StateDone {
				t.Fatalf("manifest %+v, split stage %+v", man, st.Stages["split"])
			}
			for _, s := range man.Segments {
				oi, err := m.Client.Stat(ctx, bucket, layout.Asset(id).Source(s.Index, ".ts"))
				if err != nil {
					t.Fatal(err)
				}
				segments[tc.name] = append(segments[tc.name], oi.ETag)
			}
		})
	}
	if a, b := strings.Join(segments["in place"], ","), strings.Join(segments["presigned read refused"], ","); a != b {
		t.Errorf("segments read in place %s, from a copy %s: want the same bytes", a, b)
	}
}

// TestUploadOptionsRefuseHostileWatermarks: options that can never work,
// or that would publish what should stay private, fail the upload at once.
func TestUploadOptionsRefuseHostileWatermarks(t *testing.T) {
	tests := []struct {
		name string
		meta map[string]string
		err  string
	}{
		{"logo", map[string]string{"Watermark-Image": "logos/mark.png"}, ""},
		{"text", map[string]string{"Watermark-Text": "LIVE %{localtime}", "Watermark-Opacity": "0.5"}, ""},
		{"private image", map[string]string{"Watermark-Image": "private/secret.png"}, "must be under logos/"},
		{"upload as image", map[string]string{"Watermark-Image": "uploads/other.mp4"}, "must be under logos/"},
		{"NaN opacity", map[string]string{"Watermark-Text": "x", "Watermark-Opacity": "NaN"}, "opacity"},
		{"opacity over 1", map[string]string{"Watermark-Text": "x", "Watermark-Opacity": "2"}, "opacity"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o, err := uploadOptions(storage.Info{Metadata: tc.meta})
			if tc.err == "" {
				if err != nil || o.watermark == nil {
					t.Fatalf("options = %+v, %v", o, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("err = %v, want one saying %q", err, tc.err)
			}
		})
	}
}

// TestUploadOptionsEncryption: each scheme goes with the container it
// encrypts, and any other pairing fails the upload at once with the fix
// in its reason.
func TestUploadOptionsLadder(t *testing.T) {
	tests := []struct {
		meta   map[string]string
		ladder string
		err    string
	}{
		{nil, "", ""},
		{map[string]string{"Segflow-Ladder": "fixed"}, "", ""},
		{map[string]string{"Segflow-Ladder": "Content-Aware"}, media.LadderContentAware, ""},
		{map[string]string{"Segflow-Ladder": "per-title"}, "", "want content-aware or fixed"},
	}
	for _, tc := range tests {
		o, err := uploadOptions(storage.Info{Metadata: tc.meta})
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%v: err = %v, want one saying %q", tc.meta, err, tc.err)
			}
			continue
		}
		if err != nil || o.ladder != tc.ladder {
			t.Errorf("%v: ladder %q, %v; want %q", tc.meta, o.ladder, err, tc.ladder)
		}
	}
}

func TestUploadOptionsEncryption(t *testing.T) {
	h264 := media.Rung{Name: "720p", Codec: media.H264}
	tests := []struct {
		name string
		meta map[string]string
		rung media.Rung
		err  string
	}{
		{"aes-128 of MPEG-TS", map[string]string{"Segflow-Encryption": "AES-128"}, h264, ""},
		{"cbcs of CMAF", map[string]string{"Segflow-Encryption": "cbcs", "Segflow-Packaging": "cmaf"}, h264, ""},
		{"none", map[string]string{"Segflow-Encryption": "none"}, h264, ""},
		{"cbcs without CMAF", map[string]string{"Segflow-Encryption": "cbcs"}, h264, "packaging cmaf"},
		{"unknown scheme", map[string]string{"Segflow-Encryption": "rot13"}, h264, "want aes-128, cbcs or none"},
		{"aes-128 of an fMP4 rung", map[string]string{"Segflow-Encryption": "aes-128"}, media.Rung{Name: "av1-720p", Codec: media.AV1}, "use cbcs"},
		{"aes-128 of CMAF", map[string]string{"Segflow-Encryption": "aes-128", "Segflow-Packaging": "cmaf"}, h264, "use cbcs"},
		{"cbcs of HEVC", map[string]string{"Segflow-Encryption": "cbcs", "Segflow-Packaging": "cmaf"}, media.Rung{Name: "h265-720p", Codec: media.H265}, "H.264 CMAF"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o, err := uploadOptions(storage.Info{Metadata: tc.meta})
			if err == nil {
				tc.rung.CMAF = o.packaging == asset.PackagingCMAF
				err = encryptable(o.encryption, tc.rung)
			}
			if tc.err == "" {
				if err != nil {
					t.Fatalf("options = %+v, %v", o, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("err = %v, want one saying %q", err, tc.err)
			}
		})
	}
}
