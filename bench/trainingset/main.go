// Command trainingset benchmarks point-in-time training sets: 1M label rows
// joined as of their timestamps with 3 feature tables of 10M rows each
// (1M users × 10 feature rows each, over 30 days), written to Parquet.
//
// The tables and labels are generated once (not timed; -data keeps them
// for later invocations). Each run creates and writes the training set in
// a child process (this binary re-executed with a hidden -child flag), so
// that the peak RSS (VmHWM) is the join's own; the child checks the row
// count. It prints `BENCH <name> <value> <unit>` lines (medians over runs;
// peak RSS is the highest) and human-readable detail.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/metrics"
	"runtime/pprof"
	"slices"
	"strconv"
	"syscall"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/sluice-dev/sluice/internal/catalog"
	"github.com/sluice-dev/sluice/internal/feature"
	"github.com/sluice-dev/sluice/internal/ident"
	"github.com/sluice-dev/sluice/internal/table"
)

type config struct {
	labels, rows, users int64
	runs                int
	data                string
	cpuprofile          string
	child               bool
	chunkRows           int
}

type result struct {
	Seconds    float64 `json:"seconds"`
	Rows       int64   `json:"rows"`
	Bytes      int64   `json:"bytes"`
	PeakRSSKiB int64   `json:"peak_rss_kib"`
	CPUSeconds float64 `json:"cpu_seconds"`
	Matched    int64   `json:"matched"`
}

func main() {
	var c config
	flag.Int64Var(&c.labels, "labels", 1_000_000, "label rows")
	flag.Int64Var(&c.rows, "rows", 10_000_000, "rows of each of the 3 feature tables")
	flag.Int64Var(&c.users, "users", 1_000_000, "distinct users (entities)")
	flag.IntVar(&c.runs, "runs", 3, "measurements; medians are reported")
	flag.StringVar(&c.data, "data", "", "directory for the generated tables and labels, kept for later invocations (default: a temporary directory, removed)")
	flag.StringVar(&c.cpuprofile, "cpuprofile", "", "write a CPU profile of the first run to this file, and the heap profile at its peak live heap to FILE.heap")
	flag.IntVar(&c.chunkRows, "chunk-rows", 0, "feature.Options.ChunkRows (0: the default)")
	flag.BoolVar(&c.child, "child", false, "internal: run one training set and print its result")
	flag.Parse()
	ctx := context.Background()
	if c.child {
		r, err := runChild(ctx, c)
		if err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			os.Exit(1)
		}
		_ = json.NewEncoder(os.Stdout).Encode(r)
		return
	}
	if err := run(ctx, c); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

const (
	day     = int64(86_400_000_000)
	startUs = int64(1_704_067_200_000_000) // 2024-01-01
)

var tsType = &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}

type tableDef struct {
	name   string
	schema *arrow.Schema
	fill   func(b *array.RecordBuilder, r *rand.Rand, user int64, ts int64)
}

func defs() []tableDef {
	f := func(name string, t arrow.DataType) arrow.Field {
		return arrow.Field{Name: name, Type: t, Nullable: true}
	}
	key := []arrow.Field{f("user_id", arrow.BinaryTypes.String), f("feature_ts", tsType)}
	platforms := []string{"ios", "android", "web", "tv"}
	tiers := []string{"free", "plus", "pro"}
	return []tableDef{
		{name: "main.features.user_activity", schema: arrow.NewSchema(append(slices.Clone(key),
			f("event_count_1h", arrow.PrimitiveTypes.Int64), f("revenue_1h", arrow.PrimitiveTypes.Float64),
			f("sessions_1h", arrow.PrimitiveTypes.Int64), f("last_platform", arrow.BinaryTypes.String)), nil),
			fill: func(b *array.RecordBuilder, r *rand.Rand, u, ts int64) {
				b.Field(2).(*array.Int64Builder).Append(r.Int64N(100))
				b.Field(3).(*array.Float64Builder).Append(float64(r.IntN(100000)) / 100)
				b.Field(4).(*array.Int64Builder).Append(r.Int64N(5))
				b.Field(5).(*array.StringBuilder).Append(platforms[r.IntN(4)])
			}},
		{name: "main.features.user_profile", schema: arrow.NewSchema(append(slices.Clone(key),
			f("account_age_days", arrow.PrimitiveTypes.Int32), f("subscription_tier", arrow.BinaryTypes.String)), nil),
			fill: func(b *array.RecordBuilder, r *rand.Rand, u, ts int64) {
				b.Field(2).(*array.Int32Builder).Append(int32(r.IntN(2000)))
				b.Field(3).(*array.StringBuilder).Append(tiers[r.IntN(3)])
			}},
		{name: "main.features.transactions", schema: arrow.NewSchema(append(slices.Clone(key),
			f("purchase_count_30d", arrow.PrimitiveTypes.Int64), f("avg_order_value_30d", arrow.PrimitiveTypes.Float64),
			f("days_since_last_purchase", arrow.PrimitiveTypes.Int32)), nil),
			fill: func(b *array.RecordBuilder, r *rand.Rand, u, ts int64) {
				b.Field(2).(*array.Int64Builder).Append(r.Int64N(50))
				b.Field(3).(*array.Float64Builder).Append(float64(r.IntN(50000)) / 100)
				b.Field(4).(*array.Int32Builder).Append(int32(r.IntN(90)))
			}},
	}
}

func userID(u int64) string { return "u" + strconv.FormatInt(10_000_000+u, 10)[1:] }

type env struct {
	db     interface{ Close() error }
	tables *table.Store
	cat    *catalog.Catalog
}

func open(ctx context.Context, dir string) (*env, error) {
	db, err := table.OpenSQLite(filepath.Join(dir, "catalog.db"))
	if err != nil {
		return nil, err
	}
	st, err := table.Open(ctx, table.Options{DB: db, Warehouse: filepath.Join(dir, "warehouse")}, nil)
	if err != nil {
		return nil, err
	}
	cat, err := catalog.Open(ctx, catalog.Options{DB: db})
	if err != nil {
		return nil, err
	}
	return &env{db: db, tables: st, cat: cat}, nil
}

func (e *env) close() { e.tables.Close(); e.db.Close() }

// generate writes the tables and labels unless dir holds them already.
func generate(ctx context.Context, c config, dir string) error {
	marker := filepath.Join(dir, "generated")
	want := fmt.Sprintf("labels=%d rows=%d users=%d\n", c.labels, c.rows, c.users)
	if b, err := os.ReadFile(marker); err == nil && string(b) == want {
		fmt.Println("using the tables and labels generated earlier in", dir)
		return nil
	}
	if entries, _ := os.ReadDir(dir); len(entries) > 0 {
		return fmt.Errorf("%s is not empty and was generated with other sizes: remove it", dir)
	}
	e, err := open(ctx, dir)
	if err != nil {
		return err
	}
	defer e.close()
	began := time.Now()
	perUser := c.rows / c.users
	for ti, d := range defs() {
		n, _ := ident.Parse(d.name)
		t, err := e.tables.Create(ctx, n, d.schema, table.CreateOptions{Properties: map[string]string{
			feature.PropPrimaryKey: "user_id,feature_ts", feature.PropTimeKey: "feature_ts"}})
		if err != nil {
			return err
		}
		r := rand.New(rand.NewPCG(uint64(ti), 7))
		b := array.NewRecordBuilder(memory.DefaultAllocator, d.schema)
		const commitRows = 2_000_000
		var recs []arrow.RecordBatch
		var inCommit int64
		for u := range c.users {
			id := userID(u)
			for range perUser {
				b.Field(0).(*array.StringBuilder).Append(id)
				ts := startUs + r.Int64N(30*day)
				b.Field(1).(*array.TimestampBuilder).Append(arrow.Timestamp(ts))
				d.fill(b, r, u, ts)
			}
			inCommit += perUser
			if b.Field(0).Len() >= 256<<10 {
				recs = append(recs, b.NewRecordBatch())
			}
			if inCommit >= commitRows || u == c.users-1 {
				if b.Field(0).Len() > 0 {
					recs = append(recs, b.NewRecordBatch())
				}
				if err := t.Append(ctx, recs, nil); err != nil {
					return err
				}
				for _, rec := range recs {
					rec.Release()
				}
				recs, inCommit = nil, 0
			}
		}
		b.Release()
		fmt.Printf("generated %s: %d rows (%.0fs so far)\n", d.name, c.rows, time.Since(began).Seconds())
	}

	// Labels: random users (5% unknown), random times over the 30 days
	// plus 3 days later.
	lsc := arrow.NewSchema([]arrow.Field{
		{Name: "user_id", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "event_timestamp", Type: tsType, Nullable: true},
		{Name: "churn_label", Type: arrow.PrimitiveTypes.Int32, Nullable: true},
		{Name: "experiment_split", Type: arrow.BinaryTypes.String, Nullable: true},
	}, nil)
	f, err := os.Create(filepath.Join(dir, "labels.parquet"))
	if err != nil {
		return err
	}
	w, err := pqarrow.NewFileWriter(lsc, f, parquet.NewWriterProperties(parquet.WithCompression(compress.Codecs.Snappy)),
		pqarrow.NewArrowWriterProperties(pqarrow.WithStoreSchema()))
	if err != nil {
		return err
	}
	r := rand.New(rand.NewPCG(99, 7))
	b := array.NewRecordBuilder(memory.DefaultAllocator, lsc)
	for i := range c.labels {
		b.Field(0).(*array.StringBuilder).Append(userID(r.Int64N(c.users + c.users/20)))
		b.Field(1).(*array.TimestampBuilder).Append(arrow.Timestamp(startUs + r.Int64N(33*day)))
		b.Field(2).(*array.Int32Builder).Append(int32(r.IntN(2)))
		b.Field(3).(*array.StringBuilder).Append([]string{"train", "test"}[r.IntN(2)])
		if b.Field(0).Len() == 128<<10 || i == c.labels-1 {
			rec := b.NewRecordBatch()
			if err := w.Write(rec); err != nil {
				return err
			}
			rec.Release()
		}
	}
	b.Release()
	if err := w.Close(); err != nil {
		return err
	}
	fmt.Printf("generated labels: %d rows (%.0fs)\n", c.labels, time.Since(began).Seconds())
	return os.WriteFile(marker, []byte(want), 0o644)
}

func spec(dir string) feature.Spec {
	return feature.Spec{
		Labels: filepath.Join(dir, "labels.parquet"), TimestampColumn: "event_timestamp", Label: "churn_label",
		ExcludeColumns: []string{"experiment_split"},
		Lookups: []feature.Lookup{
			{Table: "main.features.user_activity", LookupKey: feature.Strings{"user_id"}, Features: []string{"event_count_1h", "revenue_1h", "sessions_1h", "last_platform"}},
			{Table: "main.features.user_profile", LookupKey: feature.Strings{"user_id"}, Features: []string{"account_age_days", "subscription_tier"}},
			{Table: "main.features.transactions", LookupKey: feature.Strings{"user_id"}},
		},
	}
}

func run(ctx context.Context, c config) error {
	dir := c.data
	if dir == "" {
		tmp, err := os.MkdirTemp("", "sluice-bench-trainingset-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := generate(ctx, c, dir); err != nil {
		return err
	}
	input := dirSize(filepath.Join(dir, "warehouse")) + dirSize(filepath.Join(dir, "labels.parquet"))
	fmt.Printf("input: %d label rows, 3 feature tables × %d rows; %.0f MiB of Parquet\n", c.labels, c.rows, mib(input/1024))
	fmt.Println("each run: a child process creates the training set (plan, record, as-of join) and writes it to Parquet; timed from Create to the closed file")
	var secs, cpu []float64
	var peak int64
	for i := range c.runs {
		prof := ""
		if i == 0 {
			prof = c.cpuprofile
		}
		r, err := spawn(ctx, c, dir, prof, i)
		if err != nil {
			return err
		}
		fmt.Printf("run %d: %.2fs (cpu %.2fs), %d rows (%d with user_activity features), %.0f MiB written, peak RSS %.0f MiB\n",
			i+1, r.Seconds, r.CPUSeconds, r.Rows, r.Matched, mib(r.Bytes/1024), mib(r.PeakRSSKiB))
		secs, cpu = append(secs, r.Seconds), append(cpu, r.CPUSeconds)
		peak = max(peak, r.PeakRSSKiB)
	}
	fmt.Printf("BENCH trainingset_seconds %.2f s\n", median(secs))
	fmt.Printf("BENCH trainingset_label_rows_per_s %.0f rows/s\n", float64(c.labels)/median(secs))
	fmt.Printf("BENCH trainingset_cpu_seconds %.2f s\n", median(cpu))
	fmt.Printf("BENCH trainingset_peak_rss %.0f MiB\n", mib(peak))
	fmt.Printf("BENCH trainingset_input_size %.0f MiB\n", mib(input/1024))
	return nil
}

func spawn(ctx context.Context, c config, dir, prof string, i int) (result, error) {
	cmd := exec.CommandContext(ctx, os.Args[0], "-child", "-data", dir, "-cpuprofile", prof,
		"-labels", strconv.FormatInt(c.labels, 10), "-chunk-rows", strconv.Itoa(c.chunkRows), "-runs", strconv.Itoa(i))
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return result{}, fmt.Errorf("child: %w", err)
	}
	var r result
	if err := json.Unmarshal(out, &r); err != nil {
		return result{}, fmt.Errorf("child: reading %q: %w", out, err)
	}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		r.CPUSeconds = time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
	}
	return r, nil
}

func runChild(ctx context.Context, c config) (result, error) {
	e, err := open(ctx, c.data)
	if err != nil {
		return result{}, err
	}
	defer e.close()
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
		stop := heapAtPeak(c.cpuprofile + ".heap")
		defer stop()
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	svc := feature.New(e.tables, e.cat, logger, feature.Options{ChunkRows: c.chunkRows})
	out := filepath.Join(c.data, "train.parquet")
	began := time.Now()
	ts, err := svc.Create(ctx, fmt.Sprintf("bench_%d_%d", time.Now().UnixNano(), c.runs), spec(c.data), "bench", nil)
	if err != nil {
		return result{}, err
	}
	res, _, err := svc.Open(ctx, ts.Name)
	if err != nil {
		return result{}, err
	}
	var matched int64
	counting := &countingReader{RecordReader: res, col: len(ts.Plan.LabelColumns), matched: &matched}
	rows, err := feature.WriteParquetFile(out, counting, nil)
	res.Release()
	if err != nil {
		return result{}, err
	}
	secs := time.Since(began).Seconds()
	if rows != c.labels {
		return result{}, fmt.Errorf("wrote %d rows, want %d", rows, c.labels)
	}
	st, err := os.Stat(out)
	if err != nil {
		return result{}, err
	}
	hwm, err := vmHWM()
	if err != nil {
		return result{}, err
	}
	return result{Seconds: secs, Rows: rows, Bytes: st.Size(), PeakRSSKiB: hwm, Matched: matched}, nil
}

// heapAtPeak writes the heap profile to path whenever the live heap (as of
// the last GC) reaches a new high, until stop is called: the profile then
// shows what was live at the peak.
func heapAtPeak(path string) (stop func()) {
	done, finished := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(finished)
		sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
		var peak uint64
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
			}
			metrics.Read(sample)
			if live := sample[0].Value.Uint64(); live > peak+peak/20 {
				peak = live
				if f, err := os.Create(path); err == nil {
					_ = pprof.Lookup("heap").WriteTo(f, 0)
					f.Close()
				}
			}
		}
	}()
	return func() { close(done); <-finished }
}

// countingReader counts the non-null values of column col.
type countingReader struct {
	array.RecordReader
	col     int
	matched *int64
}

func (r *countingReader) Next() bool {
	if !r.RecordReader.Next() {
		return false
	}
	c := r.RecordBatch().Column(r.col)
	*r.matched += int64(c.Len() - c.NullN())
	return true
}

func dirSize(p string) int64 {
	var n int64
	_ = filepath.WalkDir(p, func(_ string, d os.DirEntry, err error) error {
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
	if len(s) == 0 {
		return 0
	}
	return s[len(s)/2]
}

func mib(kib int64) float64 { return float64(kib) / 1024 }
