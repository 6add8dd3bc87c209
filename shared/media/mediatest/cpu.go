package mediatest

import (
	"syscall"
	"time"
)

// ChildCPU is the CPU time of every finished child process so far (the
// ffmpeg, tesseract and pocketsphinx runs a benchmark makes): benchmarks
// report the difference across what they measure.
func ChildCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_CHILDREN, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
