// Package teststack runs the whole local stack the way a user does, with
// `segflow up` as a process on free ports, for end-to-end tests.
package teststack

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/segflow/segflow/infra/envfile"
	"github.com/segflow/segflow/infra/gwclient"
	"github.com/segflow/segflow/infra/internal/testgw"
	"github.com/segflow/segflow/shared/asset"
	"github.com/segflow/segflow/shared/layout"
	"github.com/segflow/segflow/shared/storage"
)

// Stack is a running `segflow up`.
type Stack struct {
	T      testing.TB
	Home   string
	Env    envfile.Env
	Store  *storage.Client
	Bucket string
	GW     *gwclient.Client
	cmd    *exec.Cmd
}

func freePort(t testing.TB) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
}

// Up starts the stack and waits until it is ready; env (KEY=VALUE) is
// added to segflow up's environment.
func Up(t testing.TB, env ...string) *Stack {
	t.Helper()
	return UpWithKeys(t, "", env...)
}

// UpWithKeys is Up with the relay's stream keys file (name=key lines)
// given instead of the one made on the first run.
func UpWithKeys(t testing.TB, streamKeys string, env ...string) *Stack {
	t.Helper()
	return upWith(t, streamKeys, nil, env)
}

// UpNodes is Up with `segflow up --nodes n`: the queue as n NATS
// processes in one JetStream cluster, MinIO as a pool of four.
func UpNodes(t testing.TB, n int, env ...string) *Stack {
	t.Helper()
	return upWith(t, "", []string{"--nodes", strconv.Itoa(n)}, env)
}

func upWith(t testing.TB, streamKeys string, args, env []string) *Stack {
	t.Helper()
	// A port found free can be taken by another process before segflow
	// binds it: a start that fails so is tried again on other ports.
	for attempt := 1; ; attempt++ {
		s, err := up(t, streamKeys, args, env)
		if err == nil {
			return s
		}
		if attempt < 3 && strings.Contains(s.Log(), "address already in use") {
			t.Logf("segflow up lost a port to another process (%v); again on other ports", err)
			continue
		}
		t.Fatalf("segflow up: %v\n%s", err, s.Log())
	}
}

// up starts one stack on ports found free; an error when segflow up
// exits before it is ready.
func up(t testing.TB, streamKeys string, args, env []string) (*Stack, error) {
	t.Helper()
	s := &Stack{T: t, Home: t.TempDir()}
	if streamKeys != "" {
		auth := filepath.Join(s.Home, "auth")
		if err := os.MkdirAll(auth, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(auth, "stream-keys"), []byte(streamKeys), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	s3 := freePort(t)
	for { // MinIO's console takes the port after the S3 one
		if l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(atoi(s3)+1)); err == nil {
			l.Close()
			break
		}
		s3 = freePort(t)
	}
	s.cmd = exec.Command(testgw.Binary(t), "up", "--home", s.Home, "--repo", testgw.RepoRoot(),
		"--port", freePort(t), "--s3-port", s3, "--nats-port", freePort(t),
		"--rtmp-port", freePort(t), "--srt-port", freeUDPPort(t), "--webrtc-port", freeUDPPort(t))
	s.cmd.Args = append(s.cmd.Args, args...)
	s.cmd.Env = append(os.Environ(), env...)
	logf, err := os.Create(filepath.Join(s.Home, "up.log"))
	if err != nil {
		t.Fatal(err)
	}
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Down)
	exited := make(chan error, 1)
	go func() { exited <- s.cmd.Wait() }()
	deadline := time.After(5 * time.Minute)
	for s.Env.PID == 0 {
		select {
		case err := <-exited:
			return s, fmt.Errorf("exited before it was ready: %v", err)
		case <-deadline:
			t.Fatalf("segflow up not ready\n%s", s.Log())
		case <-time.After(100 * time.Millisecond):
		}
		s.Env, _ = envfile.Read(filepath.Join(s.Home, "env"))
	}
	go func() { <-exited }()
	s.Bucket = s.Env.S3Bucket
	s.Store, err = storage.New(storage.Options{Endpoint: s.Env.S3Endpoint, AccessKey: s.Env.S3AccessKey, SecretKey: s.Env.S3SecretKey})
	if err != nil {
		t.Fatal(err)
	}
	s.GW = gwclient.New(s.Env.Gateway, s.Env.GatewayUser, s.Env.GatewayPassword)
	return s, nil
}

func freeUDPPort(t testing.TB) string {
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return strconv.Itoa(c.LocalAddr().(*net.UDPAddr).Port)
}

func atoi(s string) int { n, _ := strconv.Atoi(s); return n }

// Down stops the stack.
func (s *Stack) Down() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		// A stack left running would load every later test and bench;
		// its MinIO and functions die with it (parent-death signal).
		s.T.Logf("segflow up still running 15s after SIGTERM; killed")
		_ = s.cmd.Process.Kill()
		<-done
	}
	s.cmd = nil
}

// WaitRouted returns once the stack's router delivers to fn (delivering)
// or has stopped delivering to it, which it logs when it next reads the
// deployments after a deploy or a removal.
func (s *Stack) WaitRouted(fn string, delivering bool) {
	s.T.Helper()
	line := func(msg string) string {
		return fmt.Sprintf(`"msg":%q,"service":"segflow","component":"router","function":%q`, msg, fn)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		b, _ := os.ReadFile(filepath.Join(s.Home, "up.log"))
		on := strings.LastIndex(string(b), line("router: delivering")) > strings.LastIndex(string(b), line("router: stopped delivering"))
		if on == delivering {
			return
		}
		if time.Now().After(deadline) {
			s.T.Fatalf("the router never took %s's deployment (delivering %v)\n%s", fn, delivering, s.Log())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Log is what segflow up (and every function) logged.
func (s *Stack) Log() string {
	b, _ := os.ReadFile(filepath.Join(s.Home, "up.log"))
	if len(b) > 6000 {
		b = b[len(b)-6000:]
	}
	return string(b)
}

// Upload puts a local file under key the way mc does.
func (s *Stack) Upload(key, file string, meta map[string]string) {
	s.T.Helper()
	if err := s.Store.PutFile(context.Background(), s.Bucket, key, file, storage.PutOptions{ContentType: "video/mp4", Metadata: meta}); err != nil {
		s.T.Fatal(err)
	}
}

// WaitStatus waits until an asset's status is in one of states.
func (s *Stack) WaitStatus(id string, within time.Duration, states ...string) *asset.Status {
	s.T.Helper()
	deadline := time.Now().Add(within)
	// The status is read when the file MinIO keeps it in changes (each
	// write renames a new one into place), looked at every 20 ms, and at
	// least once a second besides. A GET every 100 ms instead cost MinIO
	// and this process ~2% of one CPU, which a benchmark counted as the
	// pipeline's; a stat costs nothing that shows.
	file := filepath.Join(s.Home, "minio", s.Bucket, filepath.FromSlash(layout.Asset(id).Status()), "xl.meta")
	var last *asset.Status
	var seen stamp
	var read time.Time
	for time.Now().Before(deadline) {
		if now := stampOf(file); now != seen || time.Since(read) >= time.Second {
			seen, read = now, time.Now()
			st, err := asset.ReadStatus(context.Background(), s.Store, s.Bucket, id)
			if err != nil && !errors.Is(err, storage.ErrNotFound) {
				s.T.Fatal(err)
			}
			if st != nil {
				last = st
				for _, want := range states {
					if st.State == want {
						return st
					}
				}
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.T.Fatalf("asset %s: status %+v after %s, want %v\n%s", id, last, within, states, s.Log())
	return nil
}

// stamp tells one version of a file from the next.
type stamp struct {
	ino   uint64
	mtime int64
	size  int64
}

func stampOf(file string) stamp {
	fi, err := os.Stat(file)
	if err != nil {
		return stamp{}
	}
	st, _ := fi.Sys().(*syscall.Stat_t)
	if st == nil {
		return stamp{mtime: fi.ModTime().UnixNano(), size: fi.Size()}
	}
	return stamp{st.Ino, fi.ModTime().UnixNano(), fi.Size()}
}

// With returns the stack reporting to t (a subtest).
func (s *Stack) With(t testing.TB) *Stack {
	c := *s
	c.T = t
	return &c
}

// Pid is the `segflow up` process id.
func (s *Stack) Pid() int { return s.cmd.Process.Pid }
