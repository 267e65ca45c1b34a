//go:build !unix

package agg

func cpuNanos() int64 { return 0 }
