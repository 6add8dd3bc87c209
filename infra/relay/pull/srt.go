package pull

import (
	"context"
	"fmt"
	"io"
	"net/url"

	gosrt "github.com/datarhei/gosrt"

	"github.com/segflow/segflow/infra/relay/publish"
	"github.com/segflow/segflow/infra/relay/srt"
)

// callSRT calls an SRT listener (srt://host:port?streamid=...&passphrase=...)
// and demuxes the MPEG-TS it sends as an SRT publisher's is.
func callSRT(ctx context.Context, u *url.URL, host publish.Host, name string, received func(int)) error {
	cfg := gosrt.DefaultConfig()
	if err := cfg.UnmarshalQuery(u.RawQuery); err != nil {
		return fmt.Errorf("%s: %w", u.Redacted(), err)
	}
	conn, err := gosrt.Dial("srt", u.Host, cfg)
	if err != nil {
		host.Refused("pull")
		return fmt.Errorf("call %s: %w", u.Redacted(), err)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	return srt.Demux(readCounter{conn, received}, conn.SetReadDeadline, host, name)
}

// readCounter reports every read's size.
type readCounter struct {
	r        io.Reader
	received func(int)
}

func (c readCounter) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.received(n)
	return n, err
}
