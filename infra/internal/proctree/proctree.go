// Package proctree measures a process and its descendants from /proc, for
// benchmarks that compare whole services (RSS, CPU seconds).
package proctree

import (
	"os"
	"strconv"
	"strings"
)

// Pids returns pid and every descendant of it.
func Pids(pid int) []int {
	children := map[int][]int{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if f := statFields(p); len(f) > 1 {
			pp, _ := strconv.Atoi(f[1])
			children[pp] = append(children[pp], p)
		}
	}
	var out []int
	var walk func(int)
	walk = func(p int) {
		out = append(out, p)
		for _, c := range children[p] {
			walk(c)
		}
	}
	walk(pid)
	return out
}

// statFields are /proc/<pid>/stat's fields after "(comm)", which may hold
// spaces: state, ppid, ...
func statFields(pid int) []string {
	st, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return nil
	}
	return strings.Fields(string(st[strings.LastIndexByte(string(st), ')')+1:]))
}

// RSS sums the resident memory of pid and its descendants, in bytes.
func RSS(pid int) int64 {
	var total int64
	for _, p := range Pids(pid) {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(p) + "/status")
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(line, "VmRSS:") {
				kb, _ := strconv.ParseInt(strings.Fields(line)[1], 10, 64)
				total += kb * 1024
			}
		}
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
type Usage struct{ Self, Children float64 }

// Usages reads the usage of pid and each of its descendants, by pid. Two
// readings apart tell the CPU that the processes of a long-lived service
// spent on their own work in between from the CPU of the tools they ran
// and waited for (whose exits fall between the readings).
func Usages(pid int) map[int]Usage {
	out := map[int]Usage{}
	for _, p := range Pids(pid) {
		f := statFields(p)
		if len(f) < 15 {
			continue
		}
		var t [4]int64
		for i := range t {
			t[i], _ = strconv.ParseInt(f[11+i], 10, 64)
		}
		out[p] = Usage{Self: float64(t[0]+t[1]) / 100, Children: float64(t[2]+t[3]) / 100} // USER_HZ
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
