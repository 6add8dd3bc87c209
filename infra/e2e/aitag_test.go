package e2e

import (
	"context"
	"encoding/json"
	"math"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/segflow/segflow/infra/internal/e2ekit"
	"github.com/segflow/segflow/infra/internal/teststack"
	"github.com/segflow/segflow/shared/asset"
	"github.com/segflow/segflow/shared/layout"
	"github.com/segflow/segflow/shared/media/mediatest"
	"github.com/segflow/segflow/shared/storage"
)

type hit struct {
	Asset, Kind, Snippet, Playback string
	Start, End                     float64
}

func search(t *testing.T, s *teststack.Stack, q string) []hit {
	req, _ := http.NewRequest(http.MethodGet, s.Env.Gateway+"/api/search?q="+url.QueryEscape(q), nil)
	req.SetBasicAuth(s.Env.GatewayUser, s.Env.GatewayPassword)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var hits []hit
	json.NewDecoder(resp.Body).Decode(&hits)
	return hits
}

// TestAITagSearchAndCaptions uploads a clip with on-screen text, black,
// silence and speech, and finds each through the catalog API.
func TestAITagSearchAndCaptions(t *testing.T) {
	if testing.Short() {
		t.Skip("runs OCR and speech recognition")
	}
	s := teststack.Up(t)
	ctx := context.Background()
	clip := filepath.Join(t.TempDir(), "tagged.mp4")
	mediatest.TaggedClip(t, clip)
	s.Upload("uploads/tagged.mp4", clip, nil)
	id := e2ekit.AssetOf(t, s, "uploads/tagged.mp4")
	s.WaitStatus(id, 3*time.Minute, asset.StateComplete)
	a := layout.Asset(id)
	deadline := time.Now().Add(3 * time.Minute)
	for {
		if _, err := s.Store.Stat(ctx, s.Bucket, a.Tags(-1)); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no merged tags\n%s", s.Log())
		}
		time.Sleep(500 * time.Millisecond)
	}
	// The catalog indexes within a sync or two.
	// The text is on screen 0-3 s, across the cut at 2 s: until segment 1's
	// tags are indexed the hit ends at the cut.
	var hits []hit
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
		if hits = search(t, s, "segflow"); len(hits) > 0 && math.Abs(hits[0].End-3) <= 0.5 {
			break
		}
	}
	if len(hits) != 1 || hits[0].Asset != id || hits[0].Kind != "text" || math.Abs(hits[0].Start) > 0.5 || math.Abs(hits[0].End-3) > 0.5 {
		t.Fatalf("search segflow: %+v", hits)
	}
	if !strings.HasSuffix(hits[0].Playback, "/assets/"+id+"/master.m3u8#t=0.000") {
		t.Errorf("playback URL %s", hits[0].Playback)
	}
	// The merged tags reach the catalog on a later sync than the first hit.
	var black, silence bool
	var word string
	var wordAt float64
	var last any
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline) && !(black && silence && word != ""); time.Sleep(500 * time.Millisecond) {
		var d struct {
			Tags []struct {
				Kind, Label string
				Start, End  float64
			}
		}
		req, _ := http.NewRequest(http.MethodGet, s.Env.Gateway+"/api/assets/"+id, nil)
		req.SetBasicAuth(s.Env.GatewayUser, s.Env.GatewayPassword)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		json.NewDecoder(resp.Body).Decode(&d)
		resp.Body.Close()
		last = d.Tags
		black, silence, word = false, false, ""
		digits := "one two three four five six seven eight nine"
		for _, tg := range d.Tags {
			switch {
			case tg.Kind == "black" && math.Abs(tg.Start-3) <= 0.5 && math.Abs(tg.End-6) <= 0.5:
				black = true
			case tg.Kind == "silence" && math.Abs(tg.Start) <= 0.5 && math.Abs(tg.End-6) <= 0.5:
				silence = true
			case tg.Kind == "word" && strings.Contains(digits, tg.Label) && word == "":
				word, wordAt = tg.Label, tg.Start
			}
		}
	}
	if !black || !silence || word == "" {
		t.Fatalf("black %v, silence %v, a spoken digit %q; tags %+v", black, silence, word, last)
	}
	// The spoken word is in the captions and found by search at its time.
	hits = search(t, s, word)
	found := false
	for _, h := range hits {
		if h.Asset == id && h.Kind == "speech" && h.Start <= wordAt+0.5 && h.End >= wordAt-0.5 {
			found = true
		}
	}
	if !found {
		t.Errorf("search %q: %+v (said at %.2fs)", word, hits, wordAt)
	}
	// The master lists the captions once their playlist has ended: the
	// rebuild the last caption triggers may still be on its way.
	var master []byte
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		master, _ = s.Store.GetBytes(ctx, s.Bucket, a.Master())
		if strings.Contains(string(master), `TYPE=SUBTITLES,GROUP-ID="subs"`) || time.Now().After(deadline) {
			break
		}
	}
	if !strings.Contains(string(master), `TYPE=SUBTITLES,GROUP-ID="subs"`) || !strings.Contains(string(master), `SUBTITLES="subs"`) {
		t.Errorf("master has no captions:\n%s", master)
	}
	if sub, err := s.Store.GetBytes(ctx, s.Bucket, a.Playlist(layout.SubtitlesRendition)); err != nil || !strings.Contains(string(sub), "#EXT-X-ENDLIST") {
		t.Errorf("the master lists a captions playlist that has not ended: %v\n%s", err, sub)
	}
	var vtt strings.Builder
	subs, _ := s.Store.List(ctx, s.Bucket, a.Prefix()+"subs/", storage.ListOptions{})
	for _, o := range subs {
		b, _ := s.Store.GetBytes(ctx, s.Bucket, o.Key)
		vtt.Write(b)
	}
	if !strings.Contains(vtt.String(), word) {
		t.Errorf("captions lack %q:\n%s", word, vtt.String())
	}
}
