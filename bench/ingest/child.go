package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime/pprof"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-dev/sluice/internal/demo"
	"github.com/sluice-dev/sluice/internal/ingest"
	"github.com/sluice-dev/sluice/internal/stream"
)

// runChild runs one measured phase in this (child) process.
func runChild(ctx context.Context, c config) (result, error) {
	// Generous: a 10th of the target rate, plus a minute.
	ctx, cancel := context.WithTimeout(ctx, time.Minute+time.Duration(c.n/30_000)*time.Second)
	defer cancel()
	var (
		res result
		err error
	)
	switch c.child {
	case "plain":
		res, err = plainConsume(ctx, c)
	case "ingest":
		res, err = ingestPhase(ctx, c)
	default:
		return result{}, fmt.Errorf("unknown phase %q", c.child)
	}
	if err != nil {
		return result{}, err
	}
	if res.PeakRSSKiB, err = vmHWM(); err != nil {
		return result{}, err
	}
	return res, nil
}

// plainConsume reads every record from offset 0 with the kgo options that
// the ingestion runner uses (internal/source/kafka.ClientOpts plus the
// runner's fetch options) and touches each record.
func plainConsume(ctx context.Context, c config) (result, error) {
	assign := map[string]map[int32]kgo.Offset{demo.Topic: {}}
	for p := range int32(c.partitions) {
		assign[demo.Topic][p] = kgo.NewOffset().At(0)
	}
	began := time.Now()
	opts := append([]kgo.Opt{
		kgo.SeedBrokers(c.addr),
		kgo.ClientID("sluice"),
		kgo.DialTimeout(5 * time.Second),
		kgo.RetryTimeout(30 * time.Second),
		kgo.ConsumePartitions(assign),
	}, ingest.FetchOpts(500*time.Millisecond)...) // the runner's, with ingest.Options' default wait
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return result{}, err
	}
	defer cl.Close()
	var res result
	for res.Records < c.n {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return result{}, fmt.Errorf("after %d records: %w", res.Records, err)
		}
		if err := fs.Err0(); err != nil {
			return result{}, err
		}
		fs.EachRecord(func(r *kgo.Record) {
			res.Records++
			res.Bytes += int64(len(r.Value))
		})
	}
	res.Seconds = time.Since(began).Seconds()
	return res, nil
}

// ingestPhase resumes the stream prepared in c.dir with a fresh Manager and
// waits until the ingestion table holds c.n rows.
func ingestPhase(ctx context.Context, c config) (result, error) {
	cat, store, closeStore, err := openStore(ctx, c.dir)
	if err != nil {
		return result{}, err
	}
	defer closeStore()
	// SLUICE_BENCH_LOG=debug shows every commit and how long it took.
	level := slog.LevelWarn
	if os.Getenv("SLUICE_BENCH_LOG") == "debug" {
		level = slog.LevelDebug
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	m := ingest.New(cat, store, logger, nil, ingest.Options{})

	if c.cpuprofile != "" {
		f, err := os.Create(c.cpuprofile)
		if err != nil {
			return result{}, err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return result{}, err
		}
		defer pprof.StopCPUProfile()
	}

	// Polling the in-memory status every 5 ms costs two mutexes and a
	// small map copy: nothing next to the work measured.
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	began := time.Now()
	if err := m.Start(runCtx); err != nil {
		return result{}, err
	}
	var st ingest.Status
	for {
		if st, err = m.Status(ctx, demo.StreamName); err != nil {
			return result{}, err
		}
		if st.RowsIngested+st.RowsQuarantined >= c.n {
			break
		}
		select {
		case <-ctx.Done():
			return result{}, fmt.Errorf("%d of %d rows after %s (state %s, last error %q): %w",
				st.RowsIngested, c.n, time.Since(began).Round(time.Millisecond), st.State, st.LastError, ctx.Err())
		case <-time.After(5 * time.Millisecond):
		}
	}
	elapsed := time.Since(began)
	if c.cpuprofile != "" {
		pprof.StopCPUProfile()
		// Beside it, where the memory came from: on a virtual machine
		// every fresh page costs a fault of several microseconds.
		if err := writeAllocs(c.cpuprofile + ".allocs"); err != nil {
			return result{}, err
		}
	}
	stop()
	m.Close()

	// Check the table itself, not only the runner's account of it.
	s, err := cat.GetStream(ctx, demo.StreamName)
	if err != nil {
		return result{}, err
	}
	spec, err := stream.Parse(s.Spec)
	if err != nil {
		return result{}, err
	}
	tbl, err := store.Load(ctx, spec.DestinationName())
	if err != nil {
		return result{}, err
	}
	rows, err := tbl.Count(ctx)
	if err != nil {
		return result{}, err
	}
	return result{
		Records: st.RowsIngested, Seconds: elapsed.Seconds(), Quarantined: st.RowsQuarantined,
		TableRows: rows, Commits: tbl.SnapshotCount(),
	}, nil
}

// vmHWM returns this process's peak resident set size in KiB, from
// /proc/self/status (Linux).
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

// writeAllocs writes the allocation profile (bytes and objects allocated
// since the start) to path.
func writeAllocs(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
