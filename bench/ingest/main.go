// Command ingest benchmarks stream ingestion: how fast sluice turns records
// that are already in Kafka into rows of an ingestion table, compared with a
// plain franz-go consumer that only reads the same records (the ceiling).
//
// It produces -n JSON order events (internal/demo's Generator, ~200 bytes,
// 6 schema fields and 2 extra) into an in-memory embedded broker
// (internal/broker) in this process, then, -runs times, measures in child
// processes (this binary re-executed with a hidden -child flag):
//
//   - plain: a kgo consumer with the ingestion runner's fetch settings
//     reading all records from offset 0 and touching each one, timed from
//     client creation to the last record;
//   - sluice: an ingest.Manager over a SQLite catalog and a local Iceberg
//     warehouse, resuming a stream (demo schema) that was created on the
//     empty topic, timed from Manager.Start until its status reports all
//     records committed: consume + decode + validate + Parquet write +
//     Iceberg commits.
//
// Each phase runs alone in its own process so that its peak RSS (VmHWM) is
// its own. It prints `BENCH <name> <value> <unit>` lines (medians over
// runs) and human-readable detail. Usage:
//
//	go run ./bench/ingest                        # 1M records, 3 runs
//	go run ./bench/ingest -n 10000000 -runs 1    # memory boundedness
//	go run ./bench/ingest -cpuprofile ingest.pprof
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/sluice-dev/sluice/internal/stream"
)

// Targets from the issue.
const (
	targetRatio = 0.60
	targetRate  = 300_000
)

type config struct {
	n                int64
	partitions       int
	runs             int
	commitMaxRecords int
	cpuprofile       string

	// Set only in a child process.
	child string // "plain" or "ingest"
	addr  string // broker address
	dir   string // the ingest child's catalog and warehouse
}

func main() {
	log.SetFlags(0)
	var c config
	flag.Int64Var(&c.n, "n", 1_000_000, "records to produce and ingest")
	flag.IntVar(&c.partitions, "partitions", 3, "partitions of the topic (the demo topic has 3)")
	flag.IntVar(&c.runs, "runs", 3, "measurements of each phase; medians are reported")
	flag.IntVar(&c.commitMaxRecords, "commit-max-records", stream.DefaultCommitMaxRecords, "the stream's ingestion.commit_max_records")
	flag.StringVar(&c.cpuprofile, "cpuprofile", "", "write a CPU profile of the first run's ingestion phase to this file, and its allocation profile to FILE.allocs")
	flag.StringVar(&c.child, "child", "", "internal: run one phase (plain or ingest) and print its result")
	flag.StringVar(&c.addr, "addr", "", "internal: broker address for -child")
	flag.StringVar(&c.dir, "dir", "", "internal: stream directory for -child ingest")
	flag.Parse()
	if c.n < 1 || c.partitions < 1 || c.runs < 1 || c.commitMaxRecords < 1 {
		log.Fatal("ingest: -n, -partitions, -runs and -commit-max-records must be positive")
	}

	ctx := context.Background()
	if c.child != "" {
		res, err := runChild(ctx, c)
		if err != nil {
			log.Fatalf("ingest: %s phase: %v", c.child, err)
		}
		if err := json.NewEncoder(os.Stdout).Encode(res); err != nil {
			log.Fatal(err)
		}
		return
	}
	if err := run(ctx, c); err != nil {
		log.Fatalf("ingest: %v", err)
	}
}

// result is what a child reports on stdout.
type result struct {
	Records     int64   `json:"records"`
	Seconds     float64 `json:"seconds"`
	Bytes       int64   `json:"bytes"`        // sum of value lengths read (plain)
	Quarantined int64   `json:"quarantined"`  // ingest
	TableRows   int64   `json:"table_rows"`   // ingest: Count of the table afterwards
	Commits     int     `json:"commits"`      // ingest: snapshots of the table
	PeakRSSKiB  int64   `json:"peak_rss_kib"` // VmHWM of the child
	// Filled in by the parent from the child's rusage.
	CPUSeconds float64 `json:"-"`
	// The parent's CPU time while the child ran: the broker serving it
	// (plus the child's start and exit).
	BrokerCPUSeconds float64 `json:"-"`
	// Page faults of the child: on a virtual machine each costs
	// microseconds of system time, so fresh memory is not free.
	PageFaults int64 `json:"-"`
}

func (r result) rate() float64 { return float64(r.Records) / r.Seconds }

func run(ctx context.Context, c config) error {
	loadAvg0 := loadAvg()
	root, err := os.MkdirTemp("", "sluice-bench-ingest-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(root)

	env, err := setup(ctx, c, root)
	if err != nil {
		return err
	}
	defer env.close()
	c.addr = env.broker.Addr()

	fmt.Printf("records: %d, partitions: %d, runs: %d, commit_max_records: %d, GOMAXPROCS: %s\n",
		c.n, c.partitions, c.runs, c.commitMaxRecords, gomaxprocs())
	fmt.Printf("record size: key %.1f B + value %.1f B = %.1f B on average (value: 6 schema fields + 2 extra, uncompressed)\n",
		env.avgKey, env.avgValue, env.avgKey+env.avgValue)
	fmt.Printf("broker: embedded kfake, in memory, in the parent process; produced in %.1fs (not measured)\n", env.produceSeconds)
	if c.n%int64(c.commitMaxRecords) != 0 {
		fmt.Printf("note: -n is not a multiple of -commit-max-records, so the last batch waits for the stream's commit_interval (%s) and is timed\n", env.commitInterval)
	}
	fmt.Println("each phase runs alone in a child process; plain and sluice alternate, after one unmeasured warm-up read")
	fmt.Println("plain:  kgo consumer, runner's fetch options, from offset 0; client creation → last record")
	fmt.Println("sluice: ingest.Manager.Start → status shows all rows committed (consume + decode + validate + Parquet + Iceberg commits, SQLite catalog)")

	// One unmeasured read warms the broker's side (the parent's heap is
	// fresh from producing); before every phase the parent collects its
	// garbage so that each starts from the same state.
	runtime.GC()
	if _, err := spawn(ctx, c, "plain", "", ""); err != nil {
		return err
	}

	var plains, ingests []result
	var ratios []float64
	for i := range c.runs {
		runtime.GC()
		p, err := spawn(ctx, c, "plain", "", "")
		if err != nil {
			return err
		}
		if p.Records != c.n {
			return fmt.Errorf("plain consumer read %d records, want %d", p.Records, c.n)
		}
		prof := ""
		if i == 0 {
			prof = c.cpuprofile
		}
		runtime.GC()
		s, err := spawn(ctx, c, "ingest", env.dirs[i], prof)
		if err != nil {
			return err
		}
		if s.TableRows != c.n || s.Quarantined != 0 {
			return fmt.Errorf("ingestion table holds %d rows and quarantine %d, want %d and 0", s.TableRows, s.Quarantined, c.n)
		}
		plains, ingests = append(plains, p), append(ingests, s)
		ratios = append(ratios, s.rate()/p.rate())
		fmt.Printf("run %d: plain %.0f records/s (%.2fs, CPU %.2fs, broker CPU %.2fs, %dk faults, peak RSS %.0f MiB); sluice %.0f records/s (%.2fs, CPU %.2fs, broker CPU %.2fs, %dk faults, %d commits, peak RSS %.0f MiB); ratio %.3f\n",
			i+1, p.rate(), p.Seconds, p.CPUSeconds, p.BrokerCPUSeconds, p.PageFaults/1000, mib(p.PeakRSSKiB),
			s.rate(), s.Seconds, s.CPUSeconds, s.BrokerCPUSeconds, s.PageFaults/1000, s.Commits, mib(s.PeakRSSKiB), ratios[i])
	}

	rate := func(rs []result) []float64 {
		out := make([]float64, len(rs))
		for i, r := range rs {
			out[i] = r.rate()
		}
		return out
	}
	peak := func(rs []result) float64 {
		var m int64
		for _, r := range rs {
			m = max(m, r.PeakRSSKiB)
		}
		return mib(m)
	}
	cpu := func(rs []result) []float64 {
		out := make([]float64, len(rs))
		for i, r := range rs {
			out[i] = r.CPUSeconds / float64(r.Records) * 1e6
		}
		return out
	}
	pr, sr := rate(plains), rate(ingests)
	pc, sc := cpu(plains), cpu(ingests)
	fmt.Printf("plain  records/s: median %.0f, min %.0f, max %.0f\n", median(pr), slices.Min(pr), slices.Max(pr))
	fmt.Printf("sluice records/s: median %.0f, min %.0f, max %.0f\n", median(sr), slices.Min(sr), slices.Max(sr))
	fmt.Printf("ratio:            median %.3f, min %.3f, max %.3f\n", median(ratios), slices.Min(ratios), slices.Max(ratios))
	fmt.Printf("CPU per record (child user+sys, median; robust to other load, excludes the broker): plain %.2f µs, sluice %.2f µs, ratio %.3f\n",
		median(pc), median(sc), median(pc)/median(sc))
	fmt.Printf("load average before / after: %s / %s (other processes on the machine skew wall-clock rates)\n", loadAvg0, loadAvg())
	fmt.Printf("peak RSS (max over runs): plain consumer %.0f MiB, sluice ingestion %.0f MiB\n", peak(plains), peak(ingests))
	fmt.Printf("target ratio >= %.2f: %s (median %.3f)\n", targetRatio, verdict(median(ratios) >= targetRatio), median(ratios))
	fmt.Printf("target rate >= %d records/s: %s (median %.0f)\n", targetRate, verdict(median(sr) >= targetRate), median(sr))
	if c.cpuprofile != "" {
		fmt.Printf("CPU profile of run 1's ingestion phase: %s (go tool pprof -top -nodecount=30 %s)\n", c.cpuprofile, c.cpuprofile)
		fmt.Printf("its allocations: %s.allocs (go tool pprof -sample_index=alloc_space -top %s.allocs)\n", c.cpuprofile, c.cpuprofile)
	}

	fmt.Printf("BENCH ingest_plain_consumer_records_per_s %.0f records/s\n", median(pr))
	fmt.Printf("BENCH ingest_sluice_records_per_s %.0f records/s\n", median(sr))
	fmt.Printf("BENCH ingest_ratio_vs_plain %.3f ratio\n", median(ratios))
	fmt.Printf("BENCH ingest_peak_rss %.0f MiB\n", peak(ingests))
	return nil
}

// spawn runs one phase in a child process and returns its result.
func spawn(ctx context.Context, c config, phase, dir, cpuprofile string) (result, error) {
	args := []string{
		"-child", phase, "-addr", c.addr, "-dir", dir, "-cpuprofile", cpuprofile,
		"-n", strconv.FormatInt(c.n, 10), "-partitions", strconv.Itoa(c.partitions),
	}
	cmd := exec.CommandContext(ctx, os.Args[0], args...)
	cmd.Stderr = os.Stderr
	parent0 := selfCPU()
	out, err := cmd.Output()
	brokerCPU := selfCPU() - parent0
	if err != nil {
		return result{}, fmt.Errorf("%s phase: %w", phase, err)
	}
	var r result
	if err := json.Unmarshal(out, &r); err != nil {
		return result{}, fmt.Errorf("%s phase: reading its result %q: %w", phase, out, err)
	}
	// The child's own VmHWM is its peak RSS. rusage Maxrss is not used:
	// Go starts children with vfork (CLONE_VM), and Linux folds the
	// parent's high-water mark (here the broker's records) into the
	// child's Maxrss at exec.
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		r.CPUSeconds = time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
		r.PageFaults = ru.Minflt + ru.Majflt
	}
	r.BrokerCPUSeconds = brokerCPU.Seconds()
	return r, nil
}

// selfCPU is this process's CPU time so far (user+sys): while a child
// runs, that is the embedded broker serving it.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func mib(kib int64) float64 { return float64(kib) / 1024 }

func verdict(ok bool) string {
	if ok {
		return "PASS"
	}
	return "MISS"
}

func gomaxprocs() string {
	return strconv.Itoa(runtime.GOMAXPROCS(0)) + " (inherited; NumCPU " + strconv.Itoa(runtime.NumCPU()) + ")"
}

// streamDir is the directory of run i's stream.
func streamDir(root string, i int) string { return filepath.Join(root, fmt.Sprintf("run%d", i+1)) }

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
