package table

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/parquet/file"
)

// TestWriteBatches writes batches as pending files, commits them, and
// reads the rows back; the no-stats columns' Parquet chunks carry no
// statistics, the others do. A table with a list column is written by
// pqarrow, one without by pqwrite.
func TestWriteBatches(t *testing.T) {
	t.Run("pqarrow", func(t *testing.T) {
		testWriteBatches(t, eventSchema, `{"id":1,"name":"a","ts":"2024-01-02T03:04:05Z","tags":["x","y"],"value":{"a":"va","b":7}}`, false)
	})
	t.Run("pqwrite", func(t *testing.T) {
		var fields []arrow.Field
		for _, f := range eventSchema.Fields() {
			if f.Name != "tags" {
				fields = append(fields, f)
			}
		}
		testWriteBatches(t, arrow.NewSchema(fields, nil), `{"id":1,"name":"a","ts":"2024-01-02T03:04:05Z","value":{"a":"va","b":7}}`, true)
	})
}

func testWriteBatches(t *testing.T, sc *arrow.Schema, row1 string, fast bool) {
	ctx := context.Background()
	e := newEnv(t)
	name := mustName(t, "main.demo.written")
	tbl, err := e.store.Create(ctx, name, sc, CreateOptions{NoStatsColumns: []string{"name", "value.a"}})
	if err != nil {
		t.Fatal(err)
	}
	if p := tbl.Properties()["write.metadata.metrics.column.value.a"]; p != "none" {
		t.Fatalf("metrics mode of value.a = %q, want none", p)
	}
	a := recordFromJSON(t, sc, `[`+row1+`,{"id":2},{"id":5,"value":{"b":8}}]`)
	b := recordFromJSON(t, sc, `[{"id":3,"name":"c","score":1.5,"ok":true,"n":4,"day":"2024-01-02"}]`)
	pending, err := tbl.WriteBatches(ctx, []arrow.RecordBatch{a})
	if err != nil {
		t.Fatal(err)
	}
	if got := tbl.writer.fast != nil; got != fast {
		t.Fatalf("written by pqwrite: %v, want %v", got, fast)
	}
	more, err := tbl.WriteBatches(ctx, []arrow.RecordBatch{b})
	if err != nil {
		t.Fatal(err)
	}
	pending.Merge(more)
	if pending.Rows() != 4 || more.Rows() != 0 {
		t.Fatalf("rows: merged %d, merged-away %d", pending.Rows(), more.Rows())
	}
	paths := pending.Paths()

	// A concurrent commit makes the first attempt conflict; the same files
	// then commit on the new state.
	other, err := e.store.Load(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	if err := other.Append(ctx, nil, map[string]string{"sluice.offsets": "1"}); err != nil {
		t.Fatal(err)
	}
	if err := tbl.CommitFiles(ctx, pending, map[string]string{"sluice.offsets": "2"}); !errors.Is(err, ErrConflict) {
		t.Fatalf("stale commit: %v, want ErrConflict", err)
	}
	if err := tbl.CommitFiles(ctx, pending, map[string]string{"sluice.offsets": "2"}); err != nil {
		t.Fatal(err)
	}
	if got := tbl.SnapshotProperties()["sluice.offsets"]; got != "2" {
		t.Fatalf("offsets %q", got)
	}
	rdr, err := tbl.Scan(ctx, ScanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got := rowsOf(t, rdr)
	want := append(jsonRows(t, a), jsonRows(t, b)...)
	slices.Sort(want)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("rows\n got %v\nwant %v", got, want)
	}

	for _, p := range paths {
		stats := chunkStats(t, p)
		for col, has := range map[string]bool{"id": true, "ts": true, "value.b": true, "name": false, "value.a": false} {
			if stats[col] != has {
				t.Errorf("%s: column %s has statistics: %v, want %v", p, col, stats[col], has)
			}
		}
	}

	// Discarding uncommitted files deletes them.
	c := recordFromJSON(t, sc, `[{"id":9}]`)
	dropped, err := tbl.WriteBatches(ctx, []arrow.RecordBatch{c})
	if err != nil {
		t.Fatal(err)
	}
	dp := dropped.Paths()
	if err := tbl.DiscardFiles(dropped); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dp[0]); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("discarded file: %v", err)
	}
}

// chunkStats reports, per column path, whether the first row group's
// chunk of the Parquet file at path has statistics.
func chunkStats(t *testing.T, path string) map[string]bool {
	t.Helper()
	r, err := file.OpenParquetFile(path, false)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	rg := r.MetaData().RowGroup(0)
	out := map[string]bool{}
	for i := range rg.NumColumns() {
		cc, err := rg.ColumnChunk(i)
		if err != nil {
			t.Fatal(err)
		}
		set, err := cc.StatsSet()
		if err != nil {
			t.Fatal(err)
		}
		out[cc.PathInSchema().String()] = set
	}
	return out
}

// TestStoreOptimizeRebases: a compaction that loses the race against
// appends commits again on top of them, without failing.
func TestStoreOptimizeRebases(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	name := mustName(t, "main.demo.rebased")
	tbl, err := e.store.Create(ctx, name, eventSchema, CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 4 {
		if err := tbl.Append(ctx, []arrow.RecordBatch{recordFromJSON(t, eventSchema, fmt.Sprintf(`[{"id":%d}]`, i))}, map[string]string{"sluice.offsets": fmt.Sprint(i)}); err != nil {
			t.Fatal(err)
		}
	}
	opt, err := e.store.Load(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	// The writer appends while the compaction's files are being written:
	// the first commit of the compaction conflicts.
	appended := false
	compactHook = func() {
		if appended {
			return
		}
		appended = true
		if err := tbl.Append(ctx, []arrow.RecordBatch{recordFromJSON(t, eventSchema, `[{"id":4}]`)}, map[string]string{"sluice.offsets": "4"}); err != nil {
			t.Error(err)
		}
	}
	t.Cleanup(func() { compactHook = nil })
	st, err := opt.optimize(ctx, OptimizeOptions{}, true)
	if err != nil {
		t.Fatal(err)
	}
	if !appended || st.FilesRewritten != 4 {
		t.Fatalf("appended %v, stats %+v", appended, st)
	}
	if got := opt.SnapshotProperties()["sluice.offsets"]; got != "4" {
		t.Fatalf("offsets after the rebased compaction = %q, want the append's 4", got)
	}
	n, err := opt.Count(ctx)
	if err != nil || n != 5 {
		t.Fatalf("count %d, %v", n, err)
	}
	files, err := opt.DataFiles(ctx)
	if err != nil || len(files) != 2 {
		t.Fatalf("files %v, %v", files, err)
	}

	// Without rebase (a writer's own handle), the same race is a conflict.
	if err := tbl.Refresh(ctx); err != nil { // the writer sees the compaction
		t.Fatal(err)
	}
	for i := 5; i < 8; i++ {
		if err := tbl.Append(ctx, []arrow.RecordBatch{recordFromJSON(t, eventSchema, fmt.Sprintf(`[{"id":%d}]`, i))}, map[string]string{"sluice.offsets": fmt.Sprint(i)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := opt.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	appended = false
	if _, err := opt.Optimize(ctx, OptimizeOptions{}); !errors.Is(err, ErrConflict) {
		t.Fatalf("optimize without rebase: %v, want ErrConflict", err)
	}
}
