package provider

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/segflow/segflow/shared/testenv"
)

// TestBuilderKeepsItsLink builds the probe fixture the way a deploy does:
// the linked binary stays in the cache beside the deployed copy, one per
// handler whatever the deployment's name (go build
// finds it up to date next time and links nothing: ~0.3 s against ~2.5 s
// for a function), builds at once into one folder take turns and each gets
// a whole binary, a rebuild leaves a deployed binary alone, and changed
// code makes a new one.
func TestBuilderKeepsItsLink(t *testing.T) {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	handler := t.TempDir()
	for _, f := range []string{"go.mod", "handler.go"} {
		b, err := os.ReadFile(filepath.Join("testdata", "probe", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(handler, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b := &Builder{RepoRoot: root, Dir: t.TempDir()}
	ctx := context.Background()
	out := t.TempDir()
	first := filepath.Join(out, "first")
	if err := b.Build(ctx, "probe", handler, first); err != nil {
		t.Fatal(err)
	}
	cached, err := filepath.Glob(filepath.Join(b.Dir, "*", "handler"))
	if err != nil || len(cached) != 1 {
		t.Fatalf("cached binaries %v (%v)", cached, err)
	}
	if !testenv.SameFile(t, first, cached[0]) {
		t.Fatal("the deployed binary is not the cached one")
	}

	// Another deployment of the same handler, under another name, is
	// the same build.
	if err := b.Build(ctx, "probe-too", handler, filepath.Join(out, "too")); err != nil {
		t.Fatal(err)
	}
	if again, _ := filepath.Glob(filepath.Join(b.Dir, "*", "handler")); len(again) != 1 || !testenv.SameFile(t, first, filepath.Join(out, "too")) {
		t.Errorf("a second name for one handler built %v", again)
	}

	// Three deploys at once of the unchanged function.
	if err := os.MkdirAll(filepath.Join(out, "again"), 0o755); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = b.Build(ctx, "probe", handler, filepath.Join(out, "again", string(rune('a'+i))))
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("build %d at once: %v", i, err)
		}
		if !testenv.SameFile(t, first, filepath.Join(out, "again", string(rune('a'+i)))) {
			t.Errorf("build %d at once made another binary", i)
		}
	}
	if !testenv.SameFile(t, first, cached[0]) {
		t.Error("the cached binary changed with the code unchanged")
	}
	if fi, err := os.Stat(first); err != nil || fi.Mode().Perm()&0o111 == 0 {
		t.Fatalf("the deployed copy is not executable: %v %v", fi.Mode(), err)
	}

	// A change links again, into the cache; the deployed copy stays.
	src, _ := os.ReadFile(filepath.Join(handler, "handler.go"))
	if err := os.WriteFile(filepath.Join(handler, "handler.go"), append(src, []byte("\nvar rebuilt = 1\n")...), 0o644); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(first)
	second := filepath.Join(out, "second")
	if err := b.Build(ctx, "probe", handler, second); err != nil {
		t.Fatal(err)
	}
	if testenv.SameFile(t, first, second) || !testenv.SameFile(t, second, cached[0]) {
		t.Error("changed code was not built again")
	}
	if after, _ := os.ReadFile(first); !bytes.Equal(before, after) {
		t.Error("a rebuild changed a deployed binary")
	}
}
