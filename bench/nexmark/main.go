// Command nexmark benchmarks sluice's SQL pipelines on Nexmark-style bids
// (auction, bidder, price, channel, url, dateTime, extra) with three
// queries over main.nexmark.bids:
//
//   - a: projection and filter (Nexmark q1's price conversion over a q2-like
//     selection);
//   - b: 10-second tumbling count(*) and max(price) per auction, with a
//     watermark;
//   - c: 10 s / 2 s sliding count(*) per auction, with a watermark.
//
// From memory, a deterministic generator (gen.go) hands 4096-row Arrow
// batches to pipeline.Query (Push, and Flush at the end of each
// micro-batch). With -broker, the same bids as JSON records go through the
// embedded broker (internal/broker, in memory, in this process), a stream
// (internal/ingest) into an Iceberg ingestion table, and a pipeline
// (pipeline.Runner) over that table, timed from the stream's start until
// the pipeline has committed its output for every record.
//
// Every measurement runs alone in a child process (this binary re-executed
// with a hidden -child flag), -runs times; the child reports the CPU
// seconds (getrusage RUSAGE_SELF, user+sys) and wall time of its measured
// section and its peak RSS. It prints events per CPU second (events/s per
// core), medians over runs, as `BENCH <name> <value> <unit>` lines, and
// PASS or MISS against the targets. Usage:
//
//	go run ./bench/nexmark                         # queries a, b, c from memory, 3 runs
//	go run ./bench/nexmark -broker                 # and end to end from the broker
//	go run ./bench/nexmark -query b -cpuprofile b.pprof
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Targets from the issue, in events per CPU second.
var targets = map[string]float64{
	"a":      1_000_000,
	"b":      500_000,
	"c":      500_000,
	"broker": 300_000,
}

type config struct {
	n           int64
	runs        int
	cpuprofile  string
	query       string // a, b, c or all
	broker      bool
	brokerQuery string
	microbatch  int64 // events per micro-batch from memory

	// Set only in a child process.
	child  string // "memory" or "broker"
	addr   string // broker address
	dir    string // the broker child's catalog and warehouse
	expect int64  // the query's output rows, checked by the child
}

func main() {
	log.SetFlags(0)
	var c config
	flag.Int64Var(&c.n, "n", 2_000_000, "events (rounded up to a multiple of 4096)")
	flag.IntVar(&c.runs, "runs", 3, "measurements of each query; medians are reported")
	flag.StringVar(&c.cpuprofile, "cpuprofile", "", "write a CPU profile of each measurement's first run here (with -query all or -broker: one file per measurement, suffixed .a, .b, .c, .broker)")
	flag.StringVar(&c.query, "query", "all", "queries to run from memory: a, b, c or all (none with -query none)")
	flag.BoolVar(&c.broker, "broker", false, "also measure end to end from the embedded broker")
	flag.StringVar(&c.brokerQuery, "broker-query", "b", "the query of the end-to-end measurement")
	flag.Int64Var(&c.microbatch, "microbatch", 25*batchRows, "events per micro-batch from memory (Flush after each)")
	flag.StringVar(&c.child, "child", "", "internal: run one measurement (memory or broker) and print its result")
	flag.StringVar(&c.addr, "addr", "", "internal: broker address")
	flag.StringVar(&c.dir, "dir", "", "internal: stream directory of the broker child")
	flag.Int64Var(&c.expect, "expect", -1, "internal: output rows the child must see")
	flag.Parse()
	c.n = (c.n + batchRows - 1) / batchRows * batchRows
	if c.n < batchRows || c.runs < 1 || c.microbatch < 1 {
		log.Fatal("nexmark: -n, -runs and -microbatch must be positive")
	}

	ctx := context.Background()
	if c.child != "" {
		res, err := runChild(ctx, c)
		if err != nil {
			log.Fatalf("nexmark: %s child: %v", c.child, err)
		}
		if err := json.NewEncoder(os.Stdout).Encode(res); err != nil {
			log.Fatal(err)
		}
		return
	}
	if err := run(ctx, c); err != nil {
		log.Fatalf("nexmark: %v", err)
	}
}

// result is what a child reports on stdout, for its measured section.
type result struct {
	Events     int64   `json:"events"`
	OutputRows int64   `json:"output_rows"`
	Seconds    float64 `json:"seconds"`     // wall clock
	CPUSeconds float64 `json:"cpu_seconds"` // user+sys of the whole process
	PeakRSSKiB int64   `json:"peak_rss_kib"`
	Batches    int     `json:"batches"` // micro-batches
	GCs        uint32  `json:"gcs"`
}

func (r result) perCPU() float64  { return float64(r.Events) / r.CPUSeconds }
func (r result) perWall() float64 { return float64(r.Events) / r.Seconds }

// summary is one measurement over its runs.
type summary struct {
	name    string // a, b, c or broker
	bench   string // the BENCH line's name
	results []result
}

func run(ctx context.Context, c config) error {
	var qs []string
	switch c.query {
	case "all":
		qs = queryNames
	case "none":
	default:
		if _, ok := queries[c.query]; !ok {
			return fmt.Errorf("-query %q: want a, b, c, all or none", c.query)
		}
		qs = []string{c.query}
	}
	if _, ok := queries[c.brokerQuery]; c.broker && !ok {
		return fmt.Errorf("-broker-query %q: want a, b or c", c.brokerQuery)
	}
	load0 := loadAvg()
	fmt.Printf("events: %d (%d batches of %d), runs: %d, GOMAXPROCS: %s\n", c.n, c.n/batchRows, batchRows, c.runs, gomaxprocs())
	fmt.Printf("bids: %d events per simulated second, out of order by up to %s; watermark delay %ds\n", eventsPerSecond, maxDisorder, wmDelaySeconds)
	fmt.Println("each measurement runs alone in a child process; events/s per core = events / (user+sys CPU seconds of the measured section, getrusage)")

	g := newGenerator(nil)
	profile := func(name string) string {
		if c.cpuprofile == "" {
			return ""
		}
		if len(qs) == 1 && !c.broker {
			return c.cpuprofile
		}
		return c.cpuprofile + "." + name
	}
	var sums []summary
	for _, q := range qs {
		text, _ := querySQL(q, bidsTable)
		fmt.Printf("\nquery %s from memory (micro-batches of %d events):\n%s\n", q, c.microbatch, indent(text))
		want := expectedRows(g, q, c.n)
		s := summary{name: q, bench: "nexmark_" + q + "_memory_events_per_cpu_s"}
		for i := range c.runs {
			prof := ""
			if i == 0 {
				prof = profile(q)
			}
			runtime.GC()
			r, err := spawn(ctx, c, []string{"-child", "memory", "-query", q, "-cpuprofile", prof, "-expect", strconv.FormatInt(want, 10)})
			if err != nil {
				return err
			}
			fmt.Printf("run %d: %s\n", i+1, describeRun(r))
			s.results = append(s.results, r)
		}
		sums = append(sums, s)
	}

	if c.broker {
		s, err := runBroker(ctx, c, g, profile("broker"))
		if err != nil {
			return err
		}
		sums = append(sums, s)
	}

	fmt.Printf("\nload average before / after: %s / %s (2 shared cores: wall-clock rates are noisy; CPU per event is steadier)\n", load0, loadAvg())
	for _, s := range sums {
		per, wall := s.metric(result.perCPU), s.metric(result.perWall)
		fmt.Printf("%-6s events/s per core: median %.0f (min %.0f, max %.0f); wall-clock events/s: median %.0f; CPU per event %.0f ns; peak RSS (max) %.0f MiB\n",
			s.name, median(per), slices.Min(per), slices.Max(per), median(wall), 1e9/median(per), s.peakMiB())
	}
	for _, s := range sums {
		what := "query " + s.name + " from memory"
		if s.name == "broker" {
			what = "query " + c.brokerQuery + " end to end from the broker"
		}
		m := median(s.metric(result.perCPU))
		fmt.Printf("target %s >= %.0f events/s/core: %s (median %.0f)\n", what, targets[s.name], verdict(m >= targets[s.name]), m)
	}
	for _, s := range sums {
		fmt.Printf("BENCH %s %.0f events/s\n", s.bench, median(s.metric(result.perCPU)))
		prefix := strings.TrimSuffix(s.bench, "_events_per_cpu_s")
		fmt.Printf("BENCH %s_events_per_s %.0f events/s\n", prefix, median(s.metric(result.perWall)))
		fmt.Printf("BENCH %s_peak_rss %.0f MiB\n", prefix, s.peakMiB())
	}
	if c.cpuprofile != "" {
		fmt.Printf("CPU profiles of the first runs: %s* (go tool pprof -top -nodecount=40 FILE)\n", c.cpuprofile)
	}
	return nil
}

func (s summary) metric(f func(result) float64) []float64 {
	out := make([]float64, len(s.results))
	for i, r := range s.results {
		out[i] = f(r)
	}
	return out
}

func (s summary) peakMiB() float64 {
	var m int64
	for _, r := range s.results {
		m = max(m, r.PeakRSSKiB)
	}
	return float64(m) / 1024
}

func describeRun(r result) string {
	return fmt.Sprintf("%.0f events/s per core (CPU %.2fs), %.0f events/s wall (%.2fs), %d output rows, %d micro-batches, %d GCs, peak RSS %.0f MiB",
		r.perCPU(), r.CPUSeconds, r.perWall(), r.Seconds, r.OutputRows, r.Batches, r.GCs, float64(r.PeakRSSKiB)/1024)
}

func indent(s string) string { return "  " + strings.ReplaceAll(s, "\n", "\n  ") }

// spawn runs one measurement in a child process and returns its result.
func spawn(ctx context.Context, c config, args []string) (result, error) {
	args = append(args, "-n", strconv.FormatInt(c.n, 10), "-microbatch", strconv.FormatInt(c.microbatch, 10))
	cmd := exec.CommandContext(ctx, os.Args[0], args...)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return result{}, fmt.Errorf("child %v: %w", args, err)
	}
	var r result
	if err := json.Unmarshal(out, &r); err != nil {
		return result{}, fmt.Errorf("child %v: reading its result %q: %w", args, out, err)
	}
	return r, nil
}

// cpuTime returns this process's user+sys CPU time so far.
func cpuTime() (time.Duration, error) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, fmt.Errorf("getrusage: %w", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), nil
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func verdict(ok bool) string {
	if ok {
		return "PASS"
	}
	return "MISS"
}

func gomaxprocs() string {
	return strconv.Itoa(runtime.GOMAXPROCS(0)) + " (inherited; NumCPU " + strconv.Itoa(runtime.NumCPU()) + ")"
}

// loadAvg returns the 1-minute load average (Linux), or "?".
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return "?"
	}
	return f[0]
}
