package rtmp

import (
	"bufio"
	"io"
	"net"
	"time"
)

// readPace is how long a publisher's connection rests after it found its
// socket drained: the bytes that arrive meanwhile (a frame or two) are
// then taken in one read. Reading each TCP segment as it came woke the
// relay some 170 times a second per 3 Mb/s stream, and those wakeups
// (thread switches, the Go scheduler's idle-busy transitions) were about
// a third of its CPU. 40 ms is nothing beside a 2 s segment, and far
// below what fills the socket's receive buffer.
const readPace = 40 * time.Millisecond

// pacedConn is what gortmplib reads a publisher from: a 64 KiB buffer over
// the connection, paced once media flows (the handshake and the publish
// request are answered at once). Writes go straight to the connection.
type pacedConn struct {
	conn net.Conn
	buf  *bufio.Reader
	src  *pacedReader
}

func newPacedConn(c net.Conn) *pacedConn {
	src := &pacedReader{conn: c}
	return &pacedConn{conn: c, buf: bufio.NewReaderSize(src, 64<<10), src: src}
}

func (p *pacedConn) Read(b []byte) (int, error)  { return p.buf.Read(b) }
func (p *pacedConn) Write(b []byte) (int, error) { return p.conn.Write(b) }

// pace starts resting between drained reads.
func (p *pacedConn) pace() { p.src.paced = true }

type pacedReader struct {
	conn    net.Conn
	paced   bool
	drained time.Time // when a read last found less than it asked for
}

func (r *pacedReader) Read(b []byte) (int, error) {
	if r.paced && !r.drained.IsZero() {
		if rest := readPace - time.Since(r.drained); rest > 0 {
			time.Sleep(rest)
		}
	}
	n, err := r.conn.Read(b)
	if n < len(b) {
		r.drained = time.Now()
	} else {
		r.drained = time.Time{}
	}
	return n, err
}

var _ io.ReadWriter = (*pacedConn)(nil)
