package provider

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

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

// Build compiles the function in handlerDir and returns the binary's path.
// Go's build cache makes a rebuild of unchanged code take well under a second.
func (b *Builder) Build(ctx context.Context, name, handlerDir string) (string, error) {
	if !filepath.IsAbs(handlerDir) {
		handlerDir = filepath.Join(b.RepoRoot, handlerDir)
	}
	modBytes, err := os.ReadFile(filepath.Join(handlerDir, "go.mod"))
	if err != nil {
		return "", fmt.Errorf("build %s: handler %s has no go.mod: %w", name, handlerDir, err)
	}
	modPath := modfile.ModulePath(modBytes)
	if modPath == "" {
		return "", fmt.Errorf("build %s: %s/go.mod declares no module", name, handlerDir)
	}
	entry, err := os.ReadFile(filepath.Join(b.RepoRoot, "template", "golang-media", "main.go"))
	if err != nil {
		return "", fmt.Errorf("build %s: template entrypoint: %w", name, err)
	}
	// The import spec, not just the path: the path also appears in comments.
	const placeholder = `function "handler/function"`
	if !bytes.Contains(entry, []byte(placeholder)) {
		return "", fmt.Errorf("build %s: template entrypoint does not import %s", name, placeholder)
	}
	entry = bytes.Replace(entry, []byte(placeholder), []byte(`function "`+modPath+`"`), 1)

	work, err := b.workspace(handlerDir)
	if err != nil {
		return "", fmt.Errorf("build %s: %w", name, err)
	}
	src := filepath.Join(b.Dir, "src", name)
	if err := os.MkdirAll(src, 0o755); err != nil {
		return "", fmt.Errorf("build %s: %w", name, err)
	}
	files := map[string][]byte{
		"main.go": entry,
		"go.mod":  []byte("module segflow.local/entry/" + name + "\n\ngo " + work.goVersion + "\n"),
		"go.work": []byte(work.render(src)),
	}
	for f, data := range files {
		if err := os.WriteFile(filepath.Join(src, f), data, 0o644); err != nil {
			return "", fmt.Errorf("build %s: %w", name, err)
		}
	}
	bin := filepath.Join(b.Dir, "bin", name)
	goCmd := b.Go
	if goCmd == "" {
		goCmd = "go"
	}
	cmd := exec.CommandContext(ctx, goCmd, "build", "-o", bin, ".")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "GOWORK="+filepath.Join(src, "go.work"), "GOFLAGS=-mod=readonly")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build %s: go build: %w\n%s", name, err, strings.TrimSpace(string(out)))
	}
	return bin, nil
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
