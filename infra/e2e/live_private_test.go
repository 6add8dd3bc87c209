package e2e

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/segflow/segflow/infra/internal/e2ekit"
	"github.com/segflow/segflow/infra/internal/teststack"
	"github.com/segflow/segflow/infra/internal/whiptest"
	"github.com/segflow/segflow/shared/asset"
	"github.com/segflow/segflow/shared/layout"
	"github.com/segflow/segflow/shared/storage"
)

// TestLivePrivate publishes over RTMP to a stream keyed private: its
// publish is a private asset (the bucket refuses it to anonymous players,
// /api/play/<id> hands out a signed URL that plays it), its channel gets
// no public playlists, and its WebRTC viewers need the token
// /api/play/live/<stream> issues.
func TestLivePrivate(t *testing.T) {
	if testing.Short() {
		t.Skip("publishes for real time")
	}
	s := teststack.UpWithKeys(t, "vip=vipkey-12345 private\n")
	publish := s.Env.RTMPURL[:strings.LastIndex(s.Env.RTMPURL, "/")+1] + "vipkey-12345"
	since := time.Now()
	done := e2ekit.Publishing(e2ekit.TestPublisher("640x360", 10, "flv", publish))
	id := e2ekit.WaitAsset(t, s, layout.PrivateIDPrefix+"live-vip-", since)
	ctx := context.Background()
	get := func(url string, auth bool) (int, []byte) {
		t.Helper()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if auth {
			req.SetBasicAuth(s.Env.GatewayUser, s.Env.GatewayPassword)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}

	// WebRTC while it publishes: only with the stream's token.
	whep := strings.ReplaceAll(s.Env.WHEPURL, "{stream}", "vip")
	if code, body, _, err := whiptest.Post(ctx, whep, "", "v=0\r\n"); err != nil || code != http.StatusUnauthorized {
		t.Errorf("WHEP without a token: %d %s (%v), want 401", code, body, err)
	}
	if code, body, _, err := whiptest.Post(ctx, whep, "vipkey-12345", "v=0\r\n"); err != nil || code != http.StatusForbidden {
		t.Errorf("WHEP with the stream key as token: %d %s (%v), want 403", code, body, err)
	}
	if code, _ := get(s.Env.Gateway+"/api/play/live/vip", false); code != http.StatusUnauthorized {
		t.Errorf("stream token without the gateway's credentials: %d, want 401", code)
	}
	code, body := get(s.Env.Gateway+"/api/play/live/vip?ttl=5m", true)
	var issued struct{ WHEP, Token string }
	if err := json.Unmarshal(body, &issued); code != http.StatusOK || err != nil || issued.Token == "" {
		t.Fatalf("stream token: %d %s", code, body)
	}
	v, err := whiptest.View(ctx, whep, t.TempDir(), whiptest.ViewOptions{Token: issued.Token})
	if err != nil {
		t.Fatalf("WHEP with the issued token: %v", err)
	}
	time.Sleep(3 * time.Second)
	v.Close()
	if v.FirstFrame().IsZero() {
		t.Error("the viewer with the token received no video")
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if st := s.WaitStatus(id, time.Minute, asset.StateComplete); st.State != asset.StateComplete {
		t.Fatalf("status %+v", st)
	}

	// HLS: refused by the bucket, played through the signed URL.
	a := layout.Asset(id)
	if code, _ := get("http://"+s.Env.S3Endpoint+"/"+s.Bucket+"/"+a.Master(), false); code != http.StatusForbidden {
		t.Errorf("anonymous GET of the private publish's master: %d, want 403", code)
	}
	code, body = get(s.Env.Gateway+"/api/play/"+id, true)
	var play struct{ URL string }
	if err := json.Unmarshal(body, &play); code != http.StatusOK || err != nil || !strings.Contains(play.URL, "/play/") {
		t.Fatalf("play URL: %d %s", code, body)
	}
	base := strings.TrimSuffix(play.URL, "master.m3u8")
	if code, body := get(base+"360p.m3u8", false); code != http.StatusOK || !strings.Contains(string(body), "#EXT-X-ENDLIST") {
		t.Errorf("360p playlist through the signed URL: %d\n%s", code, body)
	}
	// The channel, anonymously readable, lists nothing of it.
	objs, err := s.Store.List(ctx, s.Bucket, layout.Channel("vip").Prefix(), storage.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		if strings.HasSuffix(o.Key, ".m3u8") || strings.HasSuffix(o.Key, ".mpd") {
			t.Errorf("a private stream's channel has %s", o.Key)
		}
	}
}
