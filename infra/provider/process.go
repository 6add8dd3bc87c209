package provider

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// process is one replica of a function: a child process that accepts on the
// function's shared listener (handed over as fd 3).
type process struct {
	cmd      *exec.Cmd
	started  time.Time
	done     chan struct{}
	exitErr  error
	stopping bool // set under the function's lock before a deliberate stop
}

// startProcess execs argv with the listener as fd 3 and streams its output
// line by line into logs. privateMounts gives the process a mount namespace
// of its own when the runtime may make one (root), where the classic
// watchdog mounts the function's secrets at OpenFaaS's path.
func startProcess(argv []string, env []string, dir string, listener *os.File, privateMounts bool, logs func(pid int, line string)) (*process, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(env, "LISTEN_FDS=1")
	cmd.Dir = dir
	cmd.ExtraFiles = []*os.File{listener}
	// A process group of its own so that stopping it stops what it spawned
	// (ffmpeg), and Pdeathsig so that a killed runtime leaves no orphans.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if privateMounts && os.Geteuid() == 0 {
		// Go makes the new namespace's mounts private before exec, so what
		// the process mounts stays its own.
		cmd.SysProcAttr.Unshareflags = syscall.CLONE_NEWNS
	}
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		pw.Close()
		return nil, fmt.Errorf("start %s: %w", argv[0], err)
	}
	p := &process{cmd: cmd, started: time.Now(), done: make(chan struct{})}
	pid := cmd.Process.Pid
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64*1024), 1024*1024)
		for sc.Scan() {
			logs(pid, sc.Text())
		}
		// Drain whatever is left (an over-long line) so the child never blocks.
		_, _ = io.Copy(io.Discard, pr)
	}()
	go func() {
		p.exitErr = cmd.Wait()
		pw.Close()
		close(p.done)
	}()
	return p, nil
}

func (p *process) pid() int { return p.cmd.Process.Pid }

// stop asks the process group to terminate and kills it after grace.
func (p *process) stop(grace time.Duration) {
	pgid := -p.cmd.Process.Pid
	_ = syscall.Kill(pgid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		_ = syscall.Kill(pgid, syscall.SIGKILL)
		<-p.done
	}
}
