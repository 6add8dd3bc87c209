package provider

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/mod/modfile"
)

// Builder turns a function's handler folder into a local binary, the way the
// golang-media template's Dockerfile does inside an image: the template's
// main.go with the function's package in place of "handler/function", built
// in a workspace made of the repository's go.work plus the function.
type Builder struct {
	// RepoRoot holds go.work and template/golang-media/main.go.
	RepoRoot string
	// Dir is where generated sources and binaries go.
	Dir string
	// Go is the go command; empty means "go" from $PATH.
	Go string
}

// Build compiles the function in handlerDir into the binary dst.
//
// The linked binary stays in Dir, one per handler folder, and dst is a
// copy of it: go build finds that binary up to date by its build
// ID and links nothing when the code has not changed (a link is ~2 s per
// function on 2 cores, so `segflow up` would spend ~17 s on seven
// unchanged ones), and a later rebuild never touches the dst a running
// replica executes. Builds of one handler into one Dir, from several
// runtimes at once, take turns (a lock file).
func (b *Builder) Build(ctx context.Context, name, handlerDir, dst string) error {
	if err := b.build(ctx, handlerDir, dst); err != nil {
		return fmt.Errorf("build %s: %w", name, err)
	}
	return nil
}

func (b *Builder) build(ctx context.Context, handlerDir, dst string) error {
	if !filepath.IsAbs(handlerDir) {
		handlerDir = filepath.Join(b.RepoRoot, handlerDir)
	}
	modBytes, err := os.ReadFile(filepath.Join(handlerDir, "go.mod"))
	if err != nil {
		return fmt.Errorf("handler %s has no go.mod: %w", handlerDir, err)
	}
	modPath := modfile.ModulePath(modBytes)
	if modPath == "" {
		return fmt.Errorf("%s/go.mod declares no module", handlerDir)
	}
	entry, err := os.ReadFile(filepath.Join(b.RepoRoot, "template", "golang-media", "main.go"))
	if err != nil {
		return fmt.Errorf("template entrypoint: %w", err)
	}
	// The import spec, not just the path: the path also appears in comments.
	const placeholder = `function "handler/function"`
	if !bytes.Contains(entry, []byte(placeholder)) {
		return fmt.Errorf("template entrypoint does not import %s", placeholder)
	}
	entry = bytes.Replace(entry, []byte(placeholder), []byte(`function "`+modPath+`"`), 1)

	work, err := b.workspace(handlerDir)
	if err != nil {
		return err
	}
	// One folder per handler folder, named by its path in the repository:
	// every clone of the repository builds into the same one (the cache
	// does not grow with each clone), and so do deployments of one
	// handler under several names.
	where := handlerDir
	if rel, err := filepath.Rel(b.RepoRoot, handlerDir); err == nil && !strings.HasPrefix(rel, "..") {
		where = rel
	}
	sum := sha256.Sum256([]byte(where))
	src := filepath.Join(b.Dir, filepath.Base(handlerDir)+"-"+hex.EncodeToString(sum[:6]))
	if err := os.MkdirAll(src, 0o755); err != nil {
		return err
	}
	unlock, err := lockFile(ctx, filepath.Join(src, ".lock"))
	if err != nil {
		return err
	}
	defer unlock()
	files := map[string][]byte{
		"main.go": entry,
		"go.mod":  []byte("module segflow.local/entry\n\ngo " + work.goVersion + "\n"),
		"go.work": []byte(work.render(src)),
	}
	for f, data := range files {
		if err := os.WriteFile(filepath.Join(src, f), data, 0o644); err != nil {
			return err
		}
	}
	bin := filepath.Join(src, "handler")
	goCmd := b.Go
	if goCmd == "" {
		goCmd = "go"
	}
	cmd := exec.CommandContext(ctx, goCmd, "build", "-o", bin, ".")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "GOWORK="+filepath.Join(src, "go.work"), "GOFLAGS=-mod=readonly")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build: %w\n%s", err, strings.TrimSpace(string(out)))
	}
	return copyExecutable(bin, dst)
}

// copyExecutable copies src to dst through a temporary file renamed into
// place: a reader of dst sees the old file or the whole new one.
func copyExecutable(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	tmp, err := os.CreateTemp(filepath.Dir(dst), "."+filepath.Base(dst)+"-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := io.Copy(tmp, in); err != nil {
		tmp.Close()
		return fmt.Errorf("copy %s: %w", src, err)
	}
	if err := tmp.Chmod(0o755); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), dst)
}

// lockFile holds an exclusive lock on path until the returned func is
// called, waiting for it as long as ctx lets it.
func lockFile(ctx context.Context, path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil // closing the file releases it
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

type workspace struct {
	goVersion string
	uses      []string // absolute module dirs
}

func (w workspace) render(self string) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "go %s\n\nuse (\n\t%q\n", w.goVersion, self)
	for _, u := range w.uses {
		fmt.Fprintf(&sb, "\t%q\n", u)
	}
	sb.WriteString(")\n")
	return sb.String()
}

// workspace reads the repository's go.work and adds handlerDir unless it is
// already one of its modules (a test fixture function lives outside it).
func (b *Builder) workspace(handlerDir string) (workspace, error) {
	p := filepath.Join(b.RepoRoot, "go.work")
	data, err := os.ReadFile(p)
	if err != nil {
		return workspace{}, fmt.Errorf("read %s: %w", p, err)
	}
	wf, err := modfile.ParseWork(p, data, nil)
	if err != nil {
		return workspace{}, fmt.Errorf("parse %s: %w", p, err)
	}
	w := workspace{goVersion: "1.26.0"}
	if wf.Go != nil {
		w.goVersion = wf.Go.Version
	}
	seen := map[string]bool{}
	for _, u := range wf.Use {
		dir := filepath.Clean(filepath.Join(b.RepoRoot, u.Path))
		seen[dir] = true
		w.uses = append(w.uses, dir)
	}
	if h := filepath.Clean(handlerDir); !seen[h] {
		w.uses = append(w.uses, h)
	}
	return w, nil
}
