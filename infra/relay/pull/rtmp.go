package pull

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"time"

	"github.com/bluenviron/gortmplib"

	"github.com/segflow/segflow/infra/relay/publish"
	"github.com/segflow/segflow/infra/relay/rtmp"
)

// playRTMP plays u from an RTMP server into host's stream name, through
// the same feed a publisher's messages take.
func playRTMP(ctx context.Context, u *url.URL, host publish.Host, name string, received func(int)) error {
	dialer := &net.Dialer{}
	c := &gortmplib.Client{URL: u, DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := dialer.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return countingConn{conn, received}, nil
	}}
	dctx, cancel := context.WithTimeout(ctx, publish.HandshakeTimeout)
	err := c.Initialize(dctx)
	cancel()
	if err != nil {
		host.Refused("pull")
		return fmt.Errorf("play %s: %w", u.Redacted(), err)
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, c.Close)
	defer stop()
	feed := rtmp.NewFeed(host, name)
	defer feed.End()
	for {
		c.NetConn().SetReadDeadline(time.Now().Add(publish.HandshakeTimeout))
		msg, err := c.Read()
		if err != nil {
			return err
		}
		if err := feed.Handle(msg); err != nil {
			return err
		}
	}
}

// countingConn reports every read's size.
type countingConn struct {
	net.Conn
	received func(int)
}

func (c countingConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.received(n)
	return n, err
}
