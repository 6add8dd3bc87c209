// Package media wraps the ffmpeg and ffprobe the distribution ships as
// typed calls (Probe, Split, Transcode, Thumbnail...) that return parsed
// results; callers never build command lines.
package media

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
)

// Error is a failed ffmpeg/ffprobe run with the tail of what it said.
type Error struct {
	Tool   string
	Err    error
	Stderr string
}

func (e *Error) Error() string {
	msg := strings.TrimSpace(e.Stderr)
	if len(msg) > 600 {
		msg = "..." + msg[len(msg)-600:]
	}
	if msg == "" {
		return fmt.Sprintf("%s: %v", e.Tool, e.Err)
	}
	return fmt.Sprintf("%s: %v: %s", e.Tool, e.Err, msg)
}

func (e *Error) Unwrap() error { return e.Err }

// run executes tool with args and returns its standard output.
func run(ctx context.Context, tool string, args ...string) ([]byte, error) {
	out, _, err := runOutput(ctx, tool, args...)
	return out, err
}

// runOutput executes tool and returns both of its outputs.
func runOutput(ctx context.Context, tool string, args ...string) ([]byte, string, error) {
	return runIn(ctx, "", tool, args...)
}

// runIn is runOutput in directory dir ("" the current one): a filter
// option then names its files without the escaping a path needs there.
func runIn(ctx context.Context, dir, tool string, args ...string) ([]byte, string, error) {
	cmd := exec.CommandContext(ctx, tool, args...)
	cmd.Dir = dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			err = errors.Join(err, ctx.Err())
		}
		return stdout.Bytes(), stderr.String(), &Error{Tool: tool, Err: err, Stderr: stderr.String()}
	}
	return stdout.Bytes(), stderr.String(), nil
}

// ffmpeg runs ffmpeg quietly, failing on any error it reports.
func ffmpeg(ctx context.Context, args ...string) error {
	return ffmpegNice(ctx, 0, args...)
}

// ffmpegNice is ffmpeg at niceness nice (coreutils nice: the encoder
// threads inherit it from their start), so that it yields the cores to
// work someone waits on.
func ffmpegNice(ctx context.Context, nice int, args ...string) error {
	args = append([]string{"-hide_banner", "-nostdin", "-v", "error", "-y"}, args...)
	if nice <= 0 {
		_, err := run(ctx, "ffmpeg", args...)
		return err
	}
	// nice execs ffmpeg: a cancel kills ffmpeg, and a failure is its.
	_, err := run(ctx, "nice", append([]string{"-n", strconv.Itoa(nice), "ffmpeg"}, args...)...)
	var e *Error
	if errors.As(err, &e) {
		e.Tool = "ffmpeg"
	}
	return err
}
