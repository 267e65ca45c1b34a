package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"time"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/sluice-dev/sluice/internal/pipeline"
)

// runChild runs one measurement in this (child) process.
func runChild(ctx context.Context, c config) (result, error) {
	// Generous: a 20th of the slowest target, plus a minute.
	ctx, cancel := context.WithTimeout(ctx, time.Minute+time.Duration(c.n/15_000)*time.Second)
	defer cancel()
	var (
		res result
		err error
	)
	switch c.child {
	case "memory":
		res, err = memoryChild(ctx, c)
	case "broker":
		res, err = brokerChild(ctx, c)
	default:
		return result{}, fmt.Errorf("unknown child %q", c.child)
	}
	if err != nil {
		return result{}, err
	}
	if c.expect >= 0 && res.OutputRows != c.expect {
		return result{}, fmt.Errorf("query %s output %d rows, want %d", c.query, res.OutputRows, c.expect)
	}
	if res.PeakRSSKiB, err = vmHWM(); err != nil {
		return result{}, err
	}
	return res, nil
}

// measure brackets a measured section: CPU time, wall time, GC count and
// an optional CPU profile.
type measure struct {
	cpu0  time.Duration
	wall0 time.Time
	gc0   uint32
	prof  *os.File
}

func startMeasure(cpuprofile string) (*measure, error) {
	m := &measure{}
	if cpuprofile != "" {
		f, err := os.Create(cpuprofile)
		if err != nil {
			return nil, err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			f.Close()
			return nil, err
		}
		m.prof = f
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	m.gc0 = ms.NumGC
	cpu, err := cpuTime()
	if err != nil {
		return nil, err
	}
	m.cpu0, m.wall0 = cpu, time.Now()
	return m, nil
}

func (m *measure) stop(r *result) error {
	wall := time.Since(m.wall0)
	cpu, err := cpuTime()
	if err != nil {
		return err
	}
	if m.prof != nil {
		pprof.StopCPUProfile()
		if err := m.prof.Close(); err != nil {
			return err
		}
		m.prof = nil
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	r.Seconds, r.CPUSeconds, r.GCs = wall.Seconds(), (cpu - m.cpu0).Seconds(), ms.NumGC-m.gc0
	return nil
}

// memoryChild runs query c.query over c.n generated events, flushing every
// c.microbatch events.
func memoryChild(ctx context.Context, c config) (result, error) {
	return runMemory(ctx, c.query, c.n, c.microbatch, c.cpuprofile)
}

// runMemory is the in-memory measurement (the tests call it too).
func runMemory(ctx context.Context, q string, n, microbatch int64, cpuprofile string) (result, error) {
	text, err := querySQL(q, bidsTable)
	if err != nil {
		return result{}, err
	}
	g := newGenerator(nil)
	qry, err := pipeline.NewQuery(ctx, text, pipeline.QueryOptions{Tables: map[string]*arrow.Schema{bidsTable: bidSchema}})
	if err != nil {
		return result{}, fmt.Errorf("compiling query %s: %w", q, err)
	}
	if qry.Source() != bidsTable {
		return result{}, fmt.Errorf("query %s reads %s, want %s", q, qry.Source(), bidsTable)
	}
	var res result
	var out []arrow.RecordBatch
	drain := func() {
		for _, b := range out {
			res.OutputRows += b.NumRows()
			b.Release()
		}
		out = out[:0]
	}
	m, err := startMeasure(cpuprofile)
	if err != nil {
		return result{}, err
	}
	var inBatch int64
	for res.Events < n {
		b := g.batch()
		err := qry.Push(b, &out)
		res.Events += b.NumRows()
		inBatch += b.NumRows()
		b.Release()
		if err != nil {
			return result{}, err
		}
		if inBatch >= microbatch || res.Events >= n {
			if err := qry.Flush(&out); err != nil {
				return result{}, err
			}
			res.Batches++
			inBatch = 0
		}
		drain()
	}
	if err := m.stop(&res); err != nil {
		return result{}, err
	}
	return res, nil
}

// vmHWM returns this process's peak resident set size in KiB, from
// /proc/self/status (Linux). rusage Maxrss is not used: Go starts children
// with vfork, and Linux folds the parent's high-water mark (in the broker
// measurement, the broker's records) into the child's Maxrss at exec.
func vmHWM() (int64, error) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, fmt.Errorf("reading peak RSS: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := bytes.CutPrefix(sc.Bytes(), []byte("VmHWM:")); ok {
			v = bytes.TrimSpace(bytes.TrimSuffix(v, []byte("kB")))
			return strconv.ParseInt(string(v), 10, 64)
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, errors.New("reading peak RSS: no VmHWM in /proc/self/status")
}
