package rtc

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os/exec"
	"sync"
	"time"

	"github.com/segflow/segflow/shared/media"
)

// Pipe is one ffmpeg process a WebRTC session transcodes through, as Go
// has no Opus, VP8 or AAC codec: frames written to its input, its output
// read by a function of the caller's until it ends. A publish or a
// broadcast runs one per track while it needs it.
type Pipe struct {
	cmd    *exec.Cmd
	in     io.WriteCloser
	done   chan struct{}
	err    error
	closed sync.Once
}

// StartPipe runs ffmpeg quietly with args (reading pipe:0, writing
// pipe:1) and read on its output.
//
// It runs at niceness -10 where the relay may raise priority (root, or
// CAP_SYS_NICE; elsewhere nice says so and runs it as it is): its work
// is real time, a frame late is a frame a viewer waits for, while the
// functions' encoders beside it on one machine (segflow up) work in
// segments with seconds to spare. On two cores busy with a live ladder
// (TestWHEPInConsole), the H.264-to-VP8 encoder let 5 frames a second
// through at equal priority (glass to glass p50 1.7 s), 20 at -5 (0.8
// s) and all at -10 (0.25 s).
func StartPipe(args []string, read func(out io.Reader) error) (*Pipe, error) {
	cmd := exec.CommandContext(context.Background(), "nice", append([]string{"-n", "-10", "ffmpeg",
		"-hide_banner", "-loglevel", "error", "-nostdin", "-probesize", "32", "-analyzeduration", "0"}, args...)...)
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	var stderr bytes.Buffer // read after Wait only
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("ffmpeg: %w", err)
	}
	p := &Pipe{cmd: cmd, in: in, done: make(chan struct{})}
	go func() {
		defer close(p.done)
		err := read(out)
		io.Copy(io.Discard, out) // what read left: ffmpeg must not block on it
		if werr := cmd.Wait(); err == nil && werr != nil {
			err = &media.Error{Tool: "ffmpeg", Err: werr, Stderr: stderr.String()}
		}
		p.err = err
	}()
	return p, nil
}

// Write gives ffmpeg input.
func (p *Pipe) Write(b []byte) (int, error) { return p.in.Write(b) }

// Close ends the input and waits (up to 5 s, then kills it) for ffmpeg to
// flush its last output; the error is its or read's.
func (p *Pipe) Close() error {
	p.closed.Do(func() { p.in.Close() })
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
	}
	return p.err
}
