// Package proctree measures a process and its descendants, for benchmarks
// that compare whole services (RSS, CPU seconds). /proc is read through
// prometheus/procfs, which the metrics already depend on.
package proctree

import (
	"github.com/prometheus/procfs"
)

// userHZ is the kernel's clock tick for /proc times (procfs's own).
const userHZ = 100

// tree is pid and its descendants with their /proc/<pid>/stat.
func tree(pid int) map[int]procfs.ProcStat {
	all, err := procfs.AllProcs()
	if err != nil {
		return nil
	}
	stats := map[int]procfs.ProcStat{}
	children := map[int][]int{}
	for _, p := range all {
		st, err := p.Stat()
		if err != nil {
			continue // ended while listed
		}
		stats[p.PID] = st
		children[st.PPID] = append(children[st.PPID], p.PID)
	}
	out := map[int]procfs.ProcStat{}
	var walk func(int)
	walk = func(p int) {
		if st, ok := stats[p]; ok {
			out[p] = st
		}
		for _, c := range children[p] {
			walk(c)
		}
	}
	walk(pid)
	return out
}

// Pids returns pid and every descendant of it.
func Pids(pid int) []int {
	var out []int
	for p := range tree(pid) {
		out = append(out, p)
	}
	return out
}

// RSS sums the resident memory of pid and its descendants, in bytes.
func RSS(pid int) int64 {
	var total int64
	for _, st := range tree(pid) {
		total += int64(st.ResidentMemory())
	}
	return total
}

// CPU sums user and system time of pid and its descendants, in seconds.
func CPU(pid int) float64 {
	var total float64
	for _, u := range Usages(pid) {
		total += u.Self
	}
	return total
}

// Usage is what one process has used, in CPU seconds: Self is its own
// (user and system), Children what the children it has waited for used.
type Usage struct {
	Self, Children float64
	// Name is the process's command name (comm), as ps shows it.
	Name string
}

// Usages reads the usage of pid and each of its descendants, by pid. Two
// readings apart tell the CPU that the processes of a long-lived service
// spent on their own work in between from the CPU of the tools they ran
// and waited for (whose exits fall between the readings).
func Usages(pid int) map[int]Usage {
	out := map[int]Usage{}
	for p, st := range tree(pid) {
		out[p] = Usage{Self: st.CPUTime(), Children: float64(st.CUTime+st.CSTime) / userHZ, Name: st.Comm}
	}
	return out
}

// Since sums the usage in now beyond that in before, process by process: a
// process not in before counts from its start, one that ended in between
// is left out (a reading cannot see it), so read while the service runs.
func Since(before, now map[int]Usage) Usage {
	var d Usage
	for p, u := range now {
		d.Self += u.Self - before[p].Self
		d.Children += u.Children - before[p].Children
	}
	return d
}

// ByName is Since per command name: which of a service's processes
// (minio, segflow, a function's handler) spent the CPU.
func ByName(before, now map[int]Usage) map[string]Usage {
	out := map[string]Usage{}
	for p, u := range now {
		d := out[u.Name]
		d.Self += u.Self - before[p].Self
		d.Children += u.Children - before[p].Children
		d.Name = u.Name
		out[u.Name] = d
	}
	return out
}
