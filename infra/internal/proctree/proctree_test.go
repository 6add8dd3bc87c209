package proctree

import (
	"os"
	"os/exec"
	"slices"
	"testing"
	"time"
)

// A child that burns CPU shows in its parent's tree: its pid, its memory,
// and its CPU time once it has run.
func TestTree(t *testing.T) {
	cmd := exec.Command("sh", "-c", "i=0; while [ $i -lt 400000 ]; do i=$((i+1)); done; sleep 30")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	self := os.Getpid()
	deadline := time.Now().Add(20 * time.Second)
	for Usages(self)[cmd.Process.Pid].Self < 0.05 {
		if time.Now().After(deadline) {
			t.Fatalf("child's CPU never showed: %+v", Usages(self)[cmd.Process.Pid])
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !slices.Contains(Pids(self), cmd.Process.Pid) || !slices.Contains(Pids(self), self) {
		t.Fatalf("tree of %d = %v, want it and child %d", self, Pids(self), cmd.Process.Pid)
	}
	if RSS(self) < RSS(cmd.Process.Pid) || RSS(cmd.Process.Pid) <= 0 {
		t.Fatalf("RSS: tree %d, child %d", RSS(self), RSS(cmd.Process.Pid))
	}
	// The child's first: it may still be burning, and the tree read
	// before it came out below it (once in CI).
	child := Usages(self)[cmd.Process.Pid].Self
	if tree := CPU(self); tree < child {
		t.Fatalf("tree CPU %.2f below the child's %.2f", tree, child)
	}
	if d := Since(map[int]Usage{}, Usages(cmd.Process.Pid)); d.Self < 0.05 {
		t.Fatalf("since nothing: %+v", d)
	}
}
