// Command backfill benchmarks the one-time backfill merge
// (ingest.MergeBackfill): merging -n backfill rows into an ingestion table
// of -ingestion rows, where a fraction -overlap of the backfill's
// deduplication keys (value.transaction_id) are already in the table.
//
// The parent builds, in a temporary directory (SQLite catalog + local
// Iceberg warehouse, as a node's data directory), the backfill table once
// and, before every run, a fresh ingestion table: Arrow batches of 1M rows
// written with table.Append (not timed). Each run merges in a child
// process (this binary re-executed with a hidden -child flag), so that the
// peak RSS (VmHWM) is the merge's own; the child checks the counts. It
// prints `BENCH <name> <value> <unit>` lines (medians over runs) and
// human-readable detail. Usage:
//
//	go run ./bench/backfill                            # 10M x 10M rows, 10% overlap, 3 runs
//	go run ./bench/backfill -n 1000000 -ingestion 1000000 -runs 1
//	go run ./bench/backfill -cpuprofile merge.pprof -runs 1
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"syscall"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/sluice-dev/sluice/internal/ident"
	"github.com/sluice-dev/sluice/internal/ingest"
	"github.com/sluice-dev/sluice/internal/schema"
	"github.com/sluice-dev/sluice/internal/stream"
	"github.com/sluice-dev/sluice/internal/table"
)

// Targets from the issue.
const targetSeconds = 30

type config struct {
	n, ingestion int64
	overlap      float64
	runs         int
	cpuprofile   string
	child        bool
	dir, dest    string
}

const payloadSchema = `{"type":"object","properties":{"transaction_id":{"type":"string"},"customer_id":{"type":"string"},"amount":{"type":"number"},"event_time":{"type":"string","format":"date-time"}},"required":["transaction_id"]}`

func spec(dest string) string {
	return fmt.Sprintf(`name: main.bench.tx
source: {kafka: {subscribe: tx}}
connection: {bootstrap_servers: "127.0.0.1:1"}
schema:
  key: {json_schema: '{"type":"string"}'}
  payload: {json_schema: '%s'}
ingestion:
  destination: %s
  backfill_source: main.bench.history
  deduplication_columns: [value.transaction_id]
`, payloadSchema, dest)
}

func main() {
	log.SetFlags(0)
	var c config
	flag.Int64Var(&c.n, "n", 10_000_000, "backfill rows")
	flag.Int64Var(&c.ingestion, "ingestion", 10_000_000, "rows already in the ingestion table")
	flag.Float64Var(&c.overlap, "overlap", 0.10, "fraction of the backfill's keys already in the ingestion table")
	flag.IntVar(&c.runs, "runs", 3, "measurements; medians are reported")
	flag.StringVar(&c.cpuprofile, "cpuprofile", "", "write a CPU profile of the first run's merge to this file")
	flag.BoolVar(&c.child, "child", false, "internal: run one merge and print its result")
	flag.StringVar(&c.dir, "dir", "", "internal: the data directory for -child")
	flag.StringVar(&c.dest, "dest", "", "internal: the ingestion table for -child")
	flag.Parse()
	if c.n < 1 || c.ingestion < 0 || c.runs < 1 || c.overlap < 0 || c.overlap > 1 || int64(c.overlap*float64(c.n)) > c.ingestion {
		log.Fatal("backfill: need -n >= 1, -runs >= 1, 0 <= -overlap <= 1 and overlap*n <= -ingestion")
	}
	ctx := context.Background()
	if c.child {
		res, err := runChild(ctx, c)
		if err != nil {
			log.Fatalf("backfill: merge: %v", err)
		}
		if err := json.NewEncoder(os.Stdout).Encode(res); err != nil {
			log.Fatal(err)
		}
		return
	}
	if err := run(ctx, c); err != nil {
		log.Fatalf("backfill: %v", err)
	}
}

type result struct {
	Seconds      float64 `json:"seconds"`
	Inserted     int64   `json:"inserted"`
	Duplicates   int64   `json:"duplicates"`
	TableRows    int64   `json:"table_rows"`
	PeakRSSKiB   int64   `json:"peak_rss_kib"`
	SpillBytes   int64   `json:"spill_bytes"`
	CPUSeconds   float64 `json:"-"`
	BuildSeconds float64 `json:"-"`
}

type store struct {
	db interface{ Close() error }
	*table.Store
}

func open(ctx context.Context, dir string) (*store, error) {
	db, err := table.OpenSQLite(filepath.Join(dir, "catalog.db"))
	if err != nil {
		return nil, err
	}
	s, err := table.Open(ctx, table.Options{DB: db, Warehouse: filepath.Join(dir, "warehouse")}, nil)
	if err != nil {
		db.Close()
		return nil, err
	}
	return &store{db: db, Store: s}, nil
}

func (s *store) close() { s.Store.Close(); s.db.Close() }

func ingestionSchema() (*arrow.Schema, error) {
	key, err := schema.Compile([]byte(`{"type":"string"}`))
	if err != nil {
		return nil, err
	}
	val, err := schema.Compile([]byte(payloadSchema))
	if err != nil {
		return nil, err
	}
	return ingest.IngestionSchema(key, val), nil
}

// fill appends rows [from, from+n) of transaction ids to t, in batches of
// 1M rows; source is the record_source (nil for none).
func fill(ctx context.Context, t *table.Table, from, n int64, source string) error {
	const batch = 1 << 20
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixMicro()
	for off := int64(0); off < n; off += batch {
		m := min(batch, n-off)
		b := array.NewRecordBuilder(memory.DefaultAllocator, t.ArrowSchema())
		keys := b.Field(0).(*array.StringBuilder)
		val := b.Field(1).(*array.StructBuilder)
		tx := val.FieldBuilder(0).(*array.StringBuilder)
		cust := val.FieldBuilder(1).(*array.StringBuilder)
		amt := val.FieldBuilder(2).(*array.Float64Builder)
		et := val.FieldBuilder(3).(*array.TimestampBuilder)
		ts := b.Field(2).(*array.TimestampBuilder)
		topic := b.Field(3).(*array.StringBuilder)
		part := b.Field(4).(*array.Int32Builder)
		offs := b.Field(5).(*array.Int64Builder)
		var src *array.StringBuilder
		if len(t.ArrowSchema().Fields()) > 6 {
			src = b.Field(6).(*array.StringBuilder)
		}
		buf := make([]byte, 0, 32)
		for i := range m {
			id := from + off + i
			buf = strconv.AppendInt(append(buf[:0], "c-"...), id%100_000, 10)
			keys.BinaryBuilder.Append(buf)
			val.Append(true)
			buf = strconv.AppendInt(append(buf[:0], "t-"...), id, 10)
			tx.BinaryBuilder.Append(buf)
			buf = strconv.AppendInt(append(buf[:0], "c-"...), id%100_000, 10)
			cust.BinaryBuilder.Append(buf)
			amt.Append(float64(id%10_000) / 100)
			at := arrow.Timestamp(base + id*1000)
			et.Append(at)
			ts.Append(at)
			topic.Append("tx")
			part.Append(int32(id % 3))
			offs.Append(id / 3)
			if src != nil {
				src.Append(source)
			}
		}
		rec := b.NewRecordBatch()
		b.Release()
		err := t.Append(ctx, []arrow.RecordBatch{rec}, map[string]string{ingest.PropOffsets: `{"tx":{"0":1}}`})
		rec.Release()
		if err != nil {
			return err
		}
	}
	return nil
}

func run(ctx context.Context, c config) error {
	root, err := os.MkdirTemp("", "sluice-bench-backfill-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(root)
	s, err := open(ctx, root)
	if err != nil {
		return err
	}
	defer s.close()
	sc, err := ingestionSchema()
	if err != nil {
		return err
	}
	fmt.Printf("backfill rows: %d, ingestion rows: %d, overlap: %.0f%% of the backfill's keys, runs: %d, GOMAXPROCS %d (NumCPU %d)\n",
		c.n, c.ingestion, 100*c.overlap, c.runs, runtime.GOMAXPROCS(0), runtime.NumCPU())
	began := time.Now()
	hist, err := s.Create(ctx, ident.Name{Catalog: "main", Schema: "bench", Object: "history"},
		arrow.NewSchema(sc.Fields()[:6], nil), table.CreateOptions{})
	if err != nil {
		return err
	}
	// Backfill ids start overlap*n below the ingestion table's last id.
	from := c.ingestion - int64(c.overlap*float64(c.n))
	if err := fill(ctx, hist, from, c.n, ""); err != nil {
		return err
	}
	fmt.Printf("built the backfill table (key, value{transaction_id, customer_id, amount, event_time}, stream_record_timestamp, kafka_*) in %.1fs (not measured)\n", time.Since(began).Seconds())
	fmt.Println("each run: a fresh ingestion table, then ingest.MergeBackfill in a child process (dedup on value.transaction_id); timed from the call to its return")

	var rs []result
	for i := range c.runs {
		dest := fmt.Sprintf("main.bench.tx_ingestion_%d", i+1)
		began := time.Now()
		t, err := s.Create(ctx, ident.Name{Catalog: "main", Schema: "bench", Object: fmt.Sprintf("tx_ingestion_%d", i+1)}, sc, table.CreateOptions{})
		if err != nil {
			return err
		}
		if err := fill(ctx, t, 0, c.ingestion, ingest.RecordSourceStream); err != nil {
			return err
		}
		build := time.Since(began).Seconds()
		runtime.GC()
		prof := ""
		if i == 0 {
			prof = c.cpuprofile
		}
		r, err := spawn(ctx, c, root, dest, prof)
		if err != nil {
			return err
		}
		r.BuildSeconds = build
		wantDup := int64(c.overlap * float64(c.n))
		if r.Duplicates != wantDup || r.Inserted != c.n-wantDup || r.TableRows != c.ingestion+c.n-wantDup {
			return fmt.Errorf("run %d: inserted %d, skipped %d, table %d rows; want %d, %d, %d",
				i+1, r.Inserted, r.Duplicates, r.TableRows, c.n-wantDup, wantDup, c.ingestion+c.n-wantDup)
		}
		rs = append(rs, r)
		fmt.Printf("run %d: merged in %.2fs (CPU %.2fs), %d inserted, %d duplicates skipped, peak RSS %.0f MiB, spill %.0f MiB (ingestion table built in %.1fs, not measured)\n",
			i+1, r.Seconds, r.CPUSeconds, r.Inserted, r.Duplicates, mib(r.PeakRSSKiB), float64(r.SpillBytes)/(1<<20), build)
		if err := s.Drop(ctx, t.Name()); err != nil {
			return err
		}
	}
	secs := make([]float64, len(rs))
	cpu := make([]float64, len(rs))
	var peak int64
	for i, r := range rs {
		secs[i], cpu[i] = r.Seconds, r.CPUSeconds
		peak = max(peak, r.PeakRSSKiB)
	}
	fmt.Printf("merge seconds: median %.2f, min %.2f, max %.2f; CPU (child user+sys; robust to other load) median %.2f\n",
		median(secs), slices.Min(secs), slices.Max(secs), median(cpu))
	fmt.Printf("load average after: %s\n", loadAvg())
	verdict := "MISS"
	if median(secs) <= targetSeconds {
		verdict = "PASS"
	}
	fmt.Printf("target <= %ds: %s (median %.2fs)\n", targetSeconds, verdict, median(secs))
	fmt.Printf("BENCH backfill_merge_seconds %.2f s\n", median(secs))
	fmt.Printf("BENCH backfill_merge_rows_per_s %.0f rows/s\n", float64(c.n)/median(secs))
	fmt.Printf("BENCH backfill_merge_cpu_seconds %.2f s\n", median(cpu))
	fmt.Printf("BENCH backfill_merge_peak_rss %.0f MiB\n", mib(peak))
	return nil
}

func spawn(ctx context.Context, c config, dir, dest, prof string) (result, error) {
	cmd := exec.CommandContext(ctx, os.Args[0], "-child", "-dir", dir, "-dest", dest, "-cpuprofile", prof,
		"-n", strconv.FormatInt(c.n, 10), "-ingestion", strconv.FormatInt(c.ingestion, 10), "-overlap", strconv.FormatFloat(c.overlap, 'f', -1, 64))
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return result{}, fmt.Errorf("merge child: %w", err)
	}
	var r result
	if err := json.Unmarshal(out, &r); err != nil {
		return result{}, fmt.Errorf("merge child: reading %q: %w", out, err)
	}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		r.CPUSeconds = time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
	}
	return r, nil
}

func runChild(ctx context.Context, c config) (result, error) {
	s, err := open(ctx, c.dir)
	if err != nil {
		return result{}, err
	}
	defer s.close()
	sp, err := stream.Parse([]byte(spec(c.dest)))
	if err != nil {
		return result{}, err
	}
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
	tmp := filepath.Join(c.dir, "tmp")
	var spill int64
	stop := make(chan struct{})
	watched := make(chan struct{})
	go func() { // the spill's high-water mark, sampled
		defer close(watched)
		for {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			spill = max(spill, dirSize(tmp))
		}
	}()
	began := time.Now()
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	res, err := ingest.MergeBackfill(ctx, s.Store, sp, ingest.MergeOptions{TempDir: tmp, Logger: logger})
	secs := time.Since(began).Seconds()
	close(stop)
	<-watched
	if err != nil {
		return result{}, err
	}
	t, err := s.Load(ctx, sp.DestinationName())
	if err != nil {
		return result{}, err
	}
	rows, err := t.Count(ctx)
	if err != nil {
		return result{}, err
	}
	hwm, err := vmHWM()
	if err != nil {
		return result{}, err
	}
	return result{Seconds: secs, Inserted: res.RowsInserted, Duplicates: res.DuplicatesSkipped, TableRows: rows, PeakRSSKiB: hwm, SpillBytes: spill}, nil
}

func dirSize(dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}

func vmHWM() (int64, error) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, fmt.Errorf("reading peak RSS: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := bytes.CutPrefix(sc.Bytes(), []byte("VmHWM:")); ok {
			return strconv.ParseInt(string(bytes.TrimSpace(bytes.TrimSuffix(v, []byte("kB")))), 10, 64)
		}
	}
	return 0, errors.New("reading peak RSS: no VmHWM in /proc/self/status")
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

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := bytes.Fields(b)
	if len(f) == 0 {
		return "?"
	}
	return string(f[0])
}
