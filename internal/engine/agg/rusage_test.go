//go:build unix

package agg

import "syscall"

// cpuNanos is the process's user+system CPU time, for per-core figures
// that do not depend on what else the machine runs.
func cpuNanos() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
