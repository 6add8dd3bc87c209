package rtmp

import (
	"bytes"
	"io"
	"net"
	"testing"
	"time"
)

// countingConn counts the reads that reach the socket.
type countingConn struct {
	net.Conn
	reads int
}

func (c *countingConn) Read(b []byte) (int, error) { c.reads++; return c.Conn.Read(b) }

// Once paced, a publisher sending small pieces every few milliseconds is
// read in a few large reads, and every byte arrives in order.
func TestPacedConnBatchesReads(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	sentc := make(chan []byte, 1)
	go func() {
		var sent bytes.Buffer
		defer func() { sentc <- sent.Bytes() }()
		c, err := net.Dial("tcp", l.Addr().String())
		if err != nil {
			return
		}
		defer c.Close()
		for i := range 40 { // 40 pieces, 5 ms apart: 200 ms
			piece := bytes.Repeat([]byte{byte(i)}, 700)
			sent.Write(piece)
			c.Write(piece)
			time.Sleep(5 * time.Millisecond)
		}
	}()
	c, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cc := &countingConn{Conn: c}
	p := newPacedConn(cc)
	p.pace()
	start := time.Now()
	got, err := io.ReadAll(p)
	took := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	if sent := <-sentc; !bytes.Equal(got, sent) {
		t.Fatalf("read %d bytes, sent %d (or out of order)", len(got), len(sent))
	}
	// One read per rest of 40 ms (about 6 in 200 ms, more if a busy
	// machine stretches the sender's sleeps) and the one that sees the
	// end; unpaced it takes about one per piece.
	if limit := int(took/readPace) + 3; cc.reads > limit || cc.reads >= 20 {
		t.Fatalf("%d socket reads for 40 pieces in %s: not batched", cc.reads, took.Round(time.Millisecond))
	}
}
