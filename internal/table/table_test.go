package table

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/apache/iceberg-go"
	ictable "github.com/apache/iceberg-go/table"

	"github.com/sluice-dev/sluice/internal/ident"
)

const (
	batch1 = `[
 {"id":1,"name":"ann","ts":"2024-01-02T03:04:05.123456Z","day":"2024-01-02","score":1.5,"ok":true,"n":3,"tags":["x","y"],"value":{"a":"q","b":7,"at":"2024-01-02T03:04:05Z"}},
 {"id":2,"name":null,"ts":null,"day":null,"score":null,"ok":null,"n":null,"tags":null,"value":null},
 {"id":3,"name":"","ts":"1969-12-31T23:59:59.999999Z","day":"1900-03-01","score":-0.0,"ok":false,"n":-2147483648,"tags":[],"value":{"a":null,"b":null,"at":null}}
]`
	batch2 = `[
 {"id":4,"name":"dee","ts":"2262-04-11T23:47:16.854775Z","day":"2262-04-11","score":1e300,"ok":true,"n":2147483647,"tags":["z",null],"value":{"a":"r","b":-9223372036854775808,"at":"2030-06-07T08:09:10.5Z"}}
]`
)

func TestAppendScanRoundTrip(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	name := mustName(t, "main.demo.events")
	tbl, err := e.store.Create(ctx, name, eventSchema, CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// Records built from the caller's schema (list element "item") and from
	// ArrowSchema (list element "element") are both accepted.
	r1 := recordFromJSON(t, eventSchema, batch1)
	r2 := recordFromJSON(t, tbl.ArrowSchema(), batch2)
	if err := tbl.Append(ctx, []arrow.RecordBatch{r1}, map[string]string{"sluice.offsets": `{"0":3}`}); err != nil {
		t.Fatal(err)
	}
	if err := tbl.Append(ctx, []arrow.RecordBatch{r2}, map[string]string{"sluice.offsets": `{"0":4}`, "sluice.epoch": "7"}); err != nil {
		t.Fatal(err)
	}
	want := slices.Concat(jsonRows(t, r1), jsonRows(t, r2))
	slices.Sort(want)

	// A restarted process sees the data and the offsets of the last commit.
	reopened, err := e.open(t).Load(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	for label, h := range map[string]*Table{"writer": tbl, "reopened": reopened} {
		t.Run(label, func(t *testing.T) {
			props := h.SnapshotProperties()
			if props["sluice.offsets"] != `{"0":4}` || props["sluice.epoch"] != "7" {
				t.Fatalf("snapshot properties %v", props)
			}
			if h.SnapshotID() == 0 {
				t.Fatal("no snapshot id")
			}
			if n, err := h.Count(ctx); err != nil || n != 4 {
				t.Fatalf("Count = %d, %v; want 4", n, err)
			}
		})
	}

	scans := map[string]struct {
		opts     ScanOptions
		wantCols []string
		wantRows int
	}{
		"all":     {ScanOptions{}, fieldNames(eventSchema), 4},
		"project": {ScanOptions{Columns: []string{"value", "id"}}, []string{"id", "value"}, 4},
		"limit":   {ScanOptions{Limit: 2}, fieldNames(eventSchema), 2},
	}
	for name, tc := range scans {
		t.Run("scan/"+name, func(t *testing.T) {
			rdr, err := reopened.Scan(ctx, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			if got := fieldNames(rdr.Schema()); !slices.Equal(got, tc.wantCols) {
				t.Fatalf("scan columns %v, want %v", got, tc.wantCols)
			}
			for _, f := range rdr.Schema().Fields() {
				i := reopened.ArrowSchema().FieldIndices(f.Name)[0]
				if wf := reopened.ArrowSchema().Field(i); !arrow.TypeEqual(f.Type, wf.Type) || f.Nullable != wf.Nullable {
					t.Fatalf("scanned field %v, ArrowSchema has %v", f, wf)
				}
			}
			rows := rowsOf(t, rdr)
			if len(rows) != tc.wantRows {
				t.Fatalf("scanned %d rows, want %d", len(rows), tc.wantRows)
			}
			if name == "all" && !slices.Equal(rows, want) {
				t.Fatalf("round trip differs:\n got %s\nwant %s", strings.Join(rows, "\n     "), strings.Join(want, "\n     "))
			}
		})
	}

	t.Run("empty append records props", func(t *testing.T) {
		before := reopened.SnapshotID()
		if err := reopened.Append(ctx, nil, map[string]string{"sluice.offsets": `{"0":9}`}); err != nil {
			t.Fatal(err)
		}
		if reopened.SnapshotID() == before || reopened.SnapshotProperties()["sluice.offsets"] != `{"0":9}` {
			t.Fatalf("empty append: snapshot %d props %v", reopened.SnapshotID(), reopened.SnapshotProperties())
		}
		if n, _ := reopened.Count(ctx); n != 4 {
			t.Fatalf("Count after empty append = %d", n)
		}
	})
}

func fieldNames(sc *arrow.Schema) []string {
	var out []string
	for _, f := range sc.Fields() {
		out = append(out, f.Name)
	}
	return out
}

func TestFencing(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	name := mustName(t, "main.demo.fenced")
	if _, err := e.store.Create(ctx, name, eventSchema, CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// Both handles load the same (empty) state, then both append.
	a, err := e.store.Load(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	b, err := e.open(t).Load(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	ra := recordFromJSON(t, eventSchema, `[{"id":1},{"id":2}]`)
	rb := recordFromJSON(t, eventSchema, `[{"id":10},{"id":11},{"id":12}]`)
	if err := a.Append(ctx, []arrow.RecordBatch{ra}, map[string]string{"sluice.writer": "a"}); err != nil {
		t.Fatal(err)
	}
	err = b.Append(ctx, []arrow.RecordBatch{rb}, map[string]string{"sluice.writer": "b"})
	if !errors.Is(err, ErrConflict) {
		t.Fatalf("stale append: %v, want ErrConflict", err)
	}
	// b was refreshed: it sees a's commit and can decide to retry.
	if b.SnapshotID() != a.SnapshotID() || b.SnapshotProperties()["sluice.writer"] != "a" {
		t.Fatalf("after conflict b is at %d %v, want a's snapshot %d", b.SnapshotID(), b.SnapshotProperties(), a.SnapshotID())
	}
	if err := b.Append(ctx, []arrow.RecordBatch{rb}, map[string]string{"sluice.writer": "b"}); err != nil {
		t.Fatalf("retry: %v", err)
	}
	// Now a is the stale one.
	if err := a.Append(ctx, []arrow.RecordBatch{ra}, nil); !errors.Is(err, ErrConflict) {
		t.Fatalf("a after b's commit: %v, want ErrConflict", err)
	}
	rdr, err := a.Scan(ctx, ScanOptions{Columns: []string{"id"}})
	if err != nil {
		t.Fatal(err)
	}
	got := rowsOf(t, rdr)
	want := []string{`{"id":10}`, `{"id":11}`, `{"id":12}`, `{"id":1}`, `{"id":2}`} // sorted JSON text
	if !slices.Equal(got, want) {
		t.Fatalf("rows %v, want %v (each batch exactly once)", got, want)
	}
}

func TestOptimize(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	name := mustName(t, "main.demo.small")
	tbl, err := e.store.Create(ctx, name, eventSchema, CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	const appends = 20
	for i := range appends {
		js := fmt.Sprintf(`[{"id":%d,"name":"n%d","ts":"2024-01-02T03:04:%02d.5Z","tags":["t%d"],"value":{"a":"v","b":%d}},{"id":%d}]`,
			2*i, i, i, i, i, 2*i+1)
		rec := recordFromJSON(t, eventSchema, js)
		if err := tbl.Append(ctx, []arrow.RecordBatch{rec}, map[string]string{"sluice.offsets": fmt.Sprint(i), "other": "x"}); err != nil {
			t.Fatal(err)
		}
	}
	// An orphan: a stale handle's failed commit leaves its files behind.
	stale, err := e.store.Load(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	if err := tbl.Append(ctx, nil, map[string]string{"sluice.offsets": "20"}); err != nil {
		t.Fatal(err)
	}
	if err := stale.Append(ctx, []arrow.RecordBatch{recordFromJSON(t, eventSchema, `[{"id":-1}]`)}, nil); !errors.Is(err, ErrConflict) {
		t.Fatalf("stale append: %v", err)
	}
	// A reader loaded before Optimize, and whose writes must be fenced after.
	before, err := e.store.Load(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	oldFiles, err := tbl.DataFiles(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rdr, err := tbl.Scan(ctx, ScanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	wantRows := rowsOf(t, rdr)
	snapsBefore := tbl.SnapshotCount()
	time.Sleep(3 * time.Millisecond) // snapshot ages are compared in whole milliseconds

	st, err := tbl.Optimize(ctx, OptimizeOptions{ExpireOlderThan: time.Nanosecond, RetainLast: 1, OrphanOlderThan: time.Nanosecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("stats %+v, snapshots %d -> %d", st, snapsBefore, tbl.SnapshotCount())

	newFiles, err := tbl.DataFiles(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(oldFiles) != appends || len(newFiles) != 1 || st.FilesBefore != appends || st.FilesAfter != 1 || st.FilesRewritten != appends {
		t.Fatalf("files %d -> %d, stats %+v", len(oldFiles), len(newFiles), st)
	}
	for _, f := range oldFiles {
		if _, err := os.Stat(f); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("compacted-away file %s still exists after expiry: %v", f, err)
		}
	}
	if tbl.SnapshotCount() != 1 || st.SnapshotsExpired != snapsBefore {
		t.Fatalf("snapshots %d -> %d, stats say %d expired", snapsBefore, tbl.SnapshotCount(), st.SnapshotsExpired)
	}
	if st.OrphansRemoved == 0 {
		t.Fatal("the failed append's files were not removed")
	}
	rdr, err = tbl.Scan(ctx, ScanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := rowsOf(t, rdr); !slices.Equal(got, wantRows) {
		t.Fatalf("rows changed by optimize:\n got %v\nwant %v", got, wantRows)
	}
	props := tbl.SnapshotProperties()
	if props["sluice.offsets"] != "20" || props["other"] != "" {
		t.Fatalf("props after optimize %v: want sluice.* carried forward and nothing else of ours", props)
	}
	if n, _ := tbl.Count(ctx); n != 2*appends {
		t.Fatalf("Count after optimize = %d", n)
	}
	// Every file in the table directory is referenced: nothing leaked.
	reopened, err := e.open(t).Load(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	if got := reopened.SnapshotProperties()["sluice.offsets"]; got != "20" {
		t.Fatalf("reopened offsets %q", got)
	}
	if n, err := reopened.RemoveOrphans(ctx, 0); err != nil || n != 0 {
		t.Fatalf("second RemoveOrphans removed %d, %v", n, err)
	}

	if err := before.Append(ctx, []arrow.RecordBatch{recordFromJSON(t, eventSchema, `[{"id":-2}]`)}, nil); !errors.Is(err, ErrConflict) {
		t.Fatalf("append from a handle loaded before optimize: %v, want ErrConflict", err)
	}
	// And Optimize itself is fenced like Append.
	stale2, _ := e.store.Load(ctx, name)
	if err := tbl.Append(ctx, nil, map[string]string{"sluice.offsets": "21"}); err != nil {
		t.Fatal(err)
	}
	if _, err := stale2.Optimize(ctx, OptimizeOptions{MinInputFiles: 1, TargetFileSize: 1 << 30}); !errors.Is(err, ErrConflict) {
		t.Fatalf("stale Optimize: %v, want ErrConflict", err)
	}
}

// TestDataFilesIndependentReader reads the data files with arrow-go's own
// Parquet reader and checks the write properties took effect.
func TestDataFilesIndependentReader(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	tbl, err := e.store.Create(ctx, mustName(t, "main.demo.pq"), eventSchema, CreateOptions{DictionaryColumns: []string{"name", "value.a", "value.b", "tags.element"}})
	if err != nil {
		t.Fatal(err)
	}
	// Low-cardinality values in the dictionary columns, so that the writer's
	// cost-based fallback (iceberg-go enables it on every column) keeps the
	// dictionaries.
	var sb strings.Builder
	sb.WriteString("[")
	for i := range 2000 {
		if i > 0 {
			sb.WriteString(",")
		}
		fmt.Fprintf(&sb, `{"id":%d,"name":"n%d","ts":"2024-01-02T03:04:05Z","value":{"a":"a%d","b":%d,"at":"2024-01-02T03:04:05Z"},"tags":["t%d"]}`, i, i%3, i%2, i%4, i%5)
	}
	sb.WriteString("]")
	r1 := recordFromJSON(t, eventSchema, sb.String())
	r2 := recordFromJSON(t, eventSchema, batch2)
	for _, r := range []arrow.RecordBatch{r1, r2} {
		if err := tbl.Append(ctx, []arrow.RecordBatch{r}, nil); err != nil {
			t.Fatal(err)
		}
	}
	files, err := tbl.DataFiles(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 2 {
		t.Fatalf("%d data files, want 2", len(files))
	}
	want := slices.Concat(jsonRows(t, r1), jsonRows(t, r2))
	slices.Sort(want)
	var got []string
	dict := map[string]bool{}
	for _, path := range files {
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		pr, err := file.NewParquetReader(f)
		if err != nil {
			t.Fatal(err)
		}
		rg := pr.MetaData().RowGroup(0)
		for i := range rg.NumColumns() {
			cc, err := rg.ColumnChunk(i)
			if err != nil {
				t.Fatal(err)
			}
			if cc.Compression() != compress.Codecs.Snappy {
				t.Errorf("%s: compression %v, want snappy", cc.PathInSchema(), cc.Compression())
			}
			if pr.NumRows() > 1 {
				dict[cc.PathInSchema().String()] = cc.HasDictionaryPage()
			}
		}
		fr, err := pqarrow.NewFileReader(pr, pqarrow.ArrowReadProperties{}, memory.DefaultAllocator)
		if err != nil {
			t.Fatal(err)
		}
		tab, err := fr.ReadTable(ctx)
		if err != nil {
			t.Fatal(err)
		}
		tr := array.NewTableReader(tab, -1)
		for tr.Next() {
			got = append(got, jsonRows(t, tr.RecordBatch())...)
		}
		tr.Release()
		tab.Release()
		pr.Close()
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Fatalf("independent reader rows:\n got %v\nwant %v", got, want)
	}
	wantDict := map[string]bool{
		"id": false, "name": true, "ts": false, "day": false, "score": false, "ok": false, "n": false,
		"tags.list.element": true, "value.a": true, "value.b": true, "value.at": false,
	}
	if !maps.Equal(dict, wantDict) {
		t.Fatalf("dictionary pages per column %v, want %v", dict, wantDict)
	}
}

func TestOptimizeNoop(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	cases := map[string]struct {
		appends   int
		wantFiles int
	}{
		"no snapshot":                   {0, 0},
		"one file, below MinInputFiles": {1, 1},
		"empty appends only":            {-3, 0},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			tbl, err := e.store.Create(ctx, ident.Name{Catalog: "main", Schema: "noop", Object: strings.NewReplacer(" ", "_", ",", "").Replace(name)}, eventSchema, CreateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			for range tc.appends {
				if err := tbl.Append(ctx, []arrow.RecordBatch{recordFromJSON(t, eventSchema, `[{"id":1}]`)}, map[string]string{"sluice.offsets": "1"}); err != nil {
					t.Fatal(err)
				}
			}
			for range -tc.appends {
				if err := tbl.Append(ctx, nil, map[string]string{"sluice.offsets": "1"}); err != nil {
					t.Fatal(err)
				}
			}
			id := tbl.SnapshotID()
			st, err := tbl.Optimize(ctx, OptimizeOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if st.FilesAfter != tc.wantFiles || st.FilesRewritten != 0 || st.SnapshotsExpired != 0 || tbl.SnapshotID() != id {
				t.Fatalf("stats %+v, snapshot %d -> %d", st, id, tbl.SnapshotID())
			}
			// The handle still writes: Optimize did not move it past anything.
			if err := tbl.Append(ctx, nil, nil); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestOptimizeMaxSnapshots: a table committed to often keeps at most
// MaxSnapshots snapshots however young, except those a registered reader
// still needs, and its rows are intact.
func TestOptimizeMaxSnapshots(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	name := mustName(t, "main.demo.busy")
	tbl, err := e.store.Create(ctx, name, eventSchema, CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var readerAt int64
	var readerTime time.Time
	for i := range 30 {
		rec := recordFromJSON(t, eventSchema, fmt.Sprintf(`[{"id":%d}]`, i))
		if err := tbl.Append(ctx, []arrow.RecordBatch{rec}, nil); err != nil {
			t.Fatal(err)
		}
		if i == 14 {
			readerAt = tbl.SnapshotID()
			readerTime, _ = tbl.SnapshotTime(readerAt)
		}
	}
	st, err := tbl.Optimize(ctx, OptimizeOptions{MaxSnapshots: 10, OrphanOlderThan: -1, MinInputFiles: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(tbl.tbl.Metadata().Snapshots()); n > 11 || st.SnapshotsExpired < 19 {
		t.Fatalf("%d snapshots kept, %d expired; want at most 10 (+ the expiry's own)", n, st.SnapshotsExpired)
	}
	// A reader at an older snapshot keeps its history.
	for i := range 30 {
		if err := tbl.Append(ctx, []arrow.RecordBatch{recordFromJSON(t, eventSchema, fmt.Sprintf(`[{"id":%d}]`, 100+i))}, nil); err != nil {
			t.Fatal(err)
		}
		if i == 5 {
			readerAt = tbl.SnapshotID()
			readerTime, _ = tbl.SnapshotTime(readerAt)
		}
	}
	if err := e.store.SetReader(ctx, name, "r", readerAt, readerTime); err != nil {
		t.Fatal(err)
	}
	if _, err := tbl.Optimize(ctx, OptimizeOptions{MaxSnapshots: 10, OrphanOlderThan: -1, MinInputFiles: 1000}); err != nil {
		t.Fatal(err)
	}
	if _, ok := tbl.SnapshotTime(readerAt); !ok {
		t.Fatalf("the reader's snapshot %d was expired", readerAt)
	}
	if _, err := tbl.Changes(ctx, readerAt, ChangesOptions{}); err != nil {
		t.Fatalf("changes since the reader's snapshot: %v", err)
	}
	if n := countRows(t, tbl); n != 60 {
		t.Fatalf("%d rows after expiry, want 60", n)
	}
}

func countRows(t *testing.T, tbl *Table) int64 {
	t.Helper()
	rdr, err := tbl.Scan(context.Background(), ScanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer rdr.Release()
	var n int64
	for rdr.Next() {
		n += rdr.RecordBatch().NumRows()
	}
	if err := rdr.Err(); err != nil {
		t.Fatal(err)
	}
	return n
}

// sizedFile is a data file of which tiered only asks the size.
type sizedFile struct {
	iceberg.DataFile
	size int64
}

func (f sizedFile) FileSizeBytes() int64 { return f.size }

func TestTieredCompaction(t *testing.T) {
	o := OptimizeOptions{}
	o.EnsureDefaults() // tier base 4 MiB, target 128 MiB (done at 96)
	const k, m = 1 << 10, 1 << 20
	for _, tc := range []struct {
		name  string
		sizes []int64
		want  []int64
	}{
		{"small files", []int64{100 * k, 200 * k, 300 * k}, []int64{100 * k, 200 * k, 300 * k}},
		{"one small file is not worth it", []int64{100 * k, 5 * m, 5 * m, 5 * m}, nil},
		{"small files without a full tier 1", []int64{100 * k, 100 * k, 5 * m, 5 * m, 5 * m}, []int64{100 * k, 100 * k}},
		{"a full tier 1 takes tier 0 along", []int64{100 * k, 5 * m, 6 * m, 7 * m, 8 * m}, []int64{100 * k, 5 * m, 6 * m, 7 * m, 8 * m}},
		{"done files stay", []int64{5 * m, 6 * m, 7 * m, 8 * m, 100 * m}, []int64{5 * m, 6 * m, 7 * m, 8 * m}},
		{"a full tier 2", []int64{100 * k, 100 * k, 5 * m, 20 * m, 30 * m, 40 * m, 50 * m}, []int64{100 * k, 100 * k, 5 * m, 20 * m, 30 * m, 40 * m, 50 * m}},
		{"nothing", []int64{90 * m, 100 * m}, nil},
	} {
		var tasks []ictable.FileScanTask
		for _, s := range tc.sizes {
			tasks = append(tasks, ictable.FileScanTask{File: sizedFile{size: s}})
		}
		var got []int64
		for _, t := range tiered(tasks, o) {
			got = append(got, t.File.FileSizeBytes())
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s: tiered rewrites %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestOrphanEvery checks that OptimizeOptions.OrphanEvery spaces out
// orphan removal per table, and that 0 removes every time.
func TestOrphanEvery(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	name := mustName(t, "main.demo.orphans")
	tbl, err := e.store.Create(ctx, name, eventSchema, CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := tbl.Append(ctx, []arrow.RecordBatch{recordFromJSON(t, eventSchema, `[{"id":1}]`)}, nil); err != nil {
		t.Fatal(err)
	}
	junk := func(n string) string {
		p := filepath.Join(tbl.Location(), "data", n)
		if err := os.WriteFile(p, []byte("not referenced"), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	exists := func(p string) bool { _, err := os.Stat(p); return err == nil }
	hourly := OptimizeOptions{OrphanOlderThan: time.Nanosecond, OrphanEvery: time.Hour}
	a := junk("a.parquet")
	time.Sleep(2 * time.Millisecond) // older than OrphanOlderThan by the file clock
	if st, err := e.store.Optimize(ctx, name, hourly); err != nil || st.OrphansRemoved != 1 || exists(a) {
		t.Fatalf("first pass: %+v %v, %s exists %v", st, err, a, exists(a))
	}
	b := junk("b.parquet")
	time.Sleep(2 * time.Millisecond)
	if st, err := e.store.Optimize(ctx, name, hourly); err != nil || st.OrphansRemoved != 0 || !exists(b) {
		t.Fatalf("second pass within the hour: %+v %v, %s exists %v", st, err, b, exists(b))
	}
	if st, err := e.store.Optimize(ctx, name, OptimizeOptions{OrphanOlderThan: time.Nanosecond}); err != nil || st.OrphansRemoved != 1 || exists(b) {
		t.Fatalf("pass with OrphanEvery 0: %+v %v, %s exists %v", st, err, b, exists(b))
	}
}

// TestOptimizeOneAtATime checks that a Store runs one optimization at a
// time: a second one waits (here until its context ends).
func TestOptimizeOneAtATime(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	busy, idle := mustName(t, "main.demo.busy"), mustName(t, "main.demo.idle")
	tbl, err := e.store.Create(ctx, busy, eventSchema, CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.Create(ctx, idle, eventSchema, CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if err := tbl.Append(ctx, []arrow.RecordBatch{recordFromJSON(t, eventSchema, fmt.Sprintf(`[{"id":%d}]`, i))}, nil); err != nil {
			t.Fatal(err)
		}
	}
	var during error
	compactHook = func() {
		wctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		defer cancel()
		_, during = e.store.Optimize(wctx, idle, OptimizeOptions{OrphanOlderThan: -1})
	}
	defer func() { compactHook = nil }()
	if _, err := e.store.Optimize(ctx, busy, OptimizeOptions{OrphanOlderThan: -1}); err != nil {
		t.Fatal(err)
	}
	if !errors.Is(during, context.DeadlineExceeded) {
		t.Fatalf("an optimization during another: %v, want it to wait (context deadline exceeded)", during)
	}
	if _, err := e.store.Optimize(ctx, idle, OptimizeOptions{OrphanOlderThan: -1}); err != nil {
		t.Fatalf("after the first: %v", err)
	}
}
