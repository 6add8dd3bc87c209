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
	var ticks int64
	for _, p := range Pids(pid) {
		f := statFields(p)
		if len(f) < 13 {
			continue
		}
		u, _ := strconv.ParseInt(f[11], 10, 64)
		s, _ := strconv.ParseInt(f[12], 10, 64)
		ticks += u + s
	}
	return float64(ticks) / 100 // USER_HZ
}
