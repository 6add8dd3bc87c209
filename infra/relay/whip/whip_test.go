package whip

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
	"github.com/pion/webrtc/v4"

	"github.com/segflow/segflow/infra/internal/whiptest"
	"github.com/segflow/segflow/infra/relay/publish"
	"github.com/segflow/segflow/infra/relay/rtc"
)

// keyHost takes one key for stream "s" and starts nothing: enough to see
// an answer.
type keyHost struct{}

func (keyHost) Admit(net.Addr) time.Duration { return 0 }
func (keyHost) Claim(key string, _ net.Addr) (string, error) {
	if key != "k" {
		return "", publish.ErrWrongKey
	}
	return "s", nil
}
func (keyHost) Release(string) {}
func (keyHost) Start(string, []byte, *mpeg4audio.AudioSpecificConfig) (publish.Stream, error) {
	return nil, publish.ErrClosing
}
func (keyHost) Refused(string)       {}
func (keyHost) Logger() *slog.Logger { return slog.Default() }

// Behind NAT the answer's candidates carry the public address given, on
// the media port.
func TestAnswerAdvertisesPublicIP(t *testing.T) {
	tr, err := rtc.Open(rtc.Config{UDPAddr: "127.0.0.1:0", PublicIPs: []string{"203.0.113.7"}})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	s := Open(tr, Config{}, keyHost{})
	defer s.Close()
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	pc, err := webrtc.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	if _, err := pc.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly}); err != nil {
		t.Fatal(err)
	}
	offer, _ := pc.CreateOffer(nil)
	code, answer, loc, err := whiptest.Post(context.Background(), srv.URL+"/whip", "k", offer.SDP)
	if err != nil || code != http.StatusCreated || !strings.HasPrefix(loc, "/whip/") {
		t.Fatalf("%d %v %s\n%s", code, err, loc, answer)
	}
	port := tr.Addr().(*net.UDPAddr).Port
	if !strings.Contains(answer, " 203.0.113.7 ") || !strings.Contains(answer, " "+strconv.Itoa(port)+" typ host") {
		t.Errorf("answer lacks host candidate 203.0.113.7:%d:\n%s", port, answer)
	}
	if strings.Contains(answer, "VP8") && strings.Index(answer, "H264") > strings.Index(answer, "VP8") {
		t.Errorf("answer lists VP8 before H.264:\n%s", answer)
	}
}
