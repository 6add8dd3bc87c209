package stack_test

import (
	"debug/elf"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"testing"

	"github.com/openfaas/go-sdk/builder"
	sdkstack "github.com/openfaas/go-sdk/stack"

	"github.com/segflow/segflow/infra/stack"
)

// instruction is one Dockerfile instruction of a stage.
type instruction struct {
	op   string // upper case: COPY, RUN, WORKDIR, ENV, ...
	args string
}

type stage struct {
	name string
	ins  []instruction
}

// parseDockerfile splits a Dockerfile into stages of instructions, with
// continuation lines joined and comments dropped.
func parseDockerfile(t *testing.T, p string) []stage {
	t.Helper()
	raw, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	var stages []stage
	var line strings.Builder
	for _, l := range strings.Split(string(raw), "\n") {
		trimmed := strings.TrimSpace(l)
		if line.Len() == 0 && (trimmed == "" || strings.HasPrefix(trimmed, "#")) {
			continue
		}
		if strings.HasSuffix(trimmed, "\\") {
			line.WriteString(strings.TrimSuffix(trimmed, "\\") + " ")
			continue
		}
		line.WriteString(trimmed)
		op, args, _ := strings.Cut(line.String(), " ")
		line.Reset()
		op = strings.ToUpper(op)
		if op == "FROM" {
			f := strings.Fields(args)
			name := ""
			if len(f) >= 3 && strings.EqualFold(f[len(f)-2], "AS") {
				name = f[len(f)-1]
			}
			stages = append(stages, stage{name: name})
			continue
		}
		if len(stages) > 0 {
			stages[len(stages)-1].ins = append(stages[len(stages)-1].ins, instruction{op, strings.TrimSpace(args)})
		}
	}
	return stages
}

// copyTree copies a file or folder.
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	if out, err := exec.Command("cp", "-a", src, dst).CombinedOutput(); err != nil {
		t.Fatalf("cp %s %s: %v %s", src, dst, err, out)
	}
}

// TestShrinkwrapContextBuilds makes each function's build context with
// go-sdk's builder.CreateBuildContext (the code `faas-cli build
// --shrinkwrap` runs), checks that every COPY source of the template's
// Dockerfile is in it, runs the build stage's steps outside Docker on it,
// and checks that the binary it yields is the one the image's fprocess and
// template.yml name.
func TestShrinkwrapContextBuilds(t *testing.T) {
	root := repoRoot()
	st, err := stack.Parse(filepath.Join(root, "stack.yml"))
	if err != nil {
		t.Fatal(err)
	}
	// faas-cli resolves the template, handlers and copy paths from the
	// stack file's folder.
	t.Chdir(root)
	buildDir := t.TempDir()
	for _, name := range st.Names() {
		t.Run(name, func(t *testing.T) {
			fn := st.Functions[name]
			ctxDir, err := builder.CreateBuildContext(name, fn.Handler, fn.Language, st.StackConfiguration.CopyExtraPaths,
				builder.WithBuildDir(buildDir))
			if err != nil {
				t.Fatal(err)
			}
			stages := parseDockerfile(t, filepath.Join(ctxDir, "Dockerfile"))
			var build *stage
			for i := range stages {
				if stages[i].name == "build" {
					build = &stages[i]
				}
				for _, in := range stages[i].ins {
					if in.op != "COPY" || strings.HasPrefix(in.args, "--from=") {
						continue
					}
					f := strings.Fields(in.args)
					for _, src := range f[:len(f)-1] {
						if _, err := os.Stat(filepath.Join(ctxDir, src)); err != nil {
							t.Errorf("COPY %s: not in faas-cli's build context: %v", src, err)
						}
					}
				}
			}
			if build == nil {
				t.Fatal("no build stage (FROM ... AS build)")
			}

			// The build stage, with its WORKDIR as a temporary folder.
			work := t.TempDir()
			workdir := "/"
			for _, in := range build.ins {
				switch in.op {
				case "WORKDIR":
					workdir = in.args
				case "COPY":
					f := strings.Fields(in.args)
					dst := filepath.Join(work, f[len(f)-1])
					os.MkdirAll(filepath.Dir(dst), 0o755)
					for _, src := range f[:len(f)-1] {
						copyTree(t, filepath.Join(ctxDir, src), dst)
					}
				case "RUN":
					cmd := exec.Command("sh", "-c", in.args)
					cmd.Dir = work
					cmd.Env = append(os.Environ(), "GOWORK=", "GOFLAGS=")
					if out, err := cmd.CombinedOutput(); err != nil {
						t.Fatalf("RUN %s: %v\n%s", in.args, err, out)
					}
				case "ARG", "ENV":
				default:
					t.Fatalf("the build stage has %s, which this test does not run", in.op)
				}
			}

			// What the image runs: the ship stage copies the binary from the
			// build stage and names it in fprocess.
			ship := stages[len(stages)-1]
			var bin, fprocess string
			for _, in := range ship.ins {
				if in.op == "COPY" && strings.HasPrefix(in.args, "--from=build ") {
					f := strings.Fields(in.args)
					rel, err := filepath.Rel(workdir, f[1])
					if err != nil || strings.HasPrefix(rel, "..") {
						t.Fatalf("COPY --from=build %s: outside WORKDIR %s", f[1], workdir)
					}
					if _, err := elf.Open(filepath.Join(work, rel)); err != nil {
						t.Fatalf("the build stage did not yield %s: %v", f[1], err)
					}
					bin = f[2]
				}
				if in.op == "ENV" {
					for _, kv := range strings.Fields(in.args) {
						if v, ok := strings.CutPrefix(kv, "fprocess="); ok {
							fprocess = strings.Trim(v, `"`)
						}
					}
				}
			}
			if bin == "" || (fprocess != bin && path.Join("/usr/bin", fprocess) != bin) {
				t.Fatalf("fprocess %q does not run the built binary %q", fprocess, bin)
			}
			lt, err := sdkstack.ParseYAMLForLanguageTemplate(filepath.Join(ctxDir, "template.yml"))
			if err != nil {
				t.Fatal(err)
			}
			if lt.FProcess != fprocess {
				t.Fatalf("template.yml fprocess %q, the Dockerfile's %q: one fprocess", lt.FProcess, fprocess)
			}
		})
	}
}
