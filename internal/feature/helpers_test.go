package feature

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/sluice-dev/sluice/internal/catalog"
	"github.com/sluice-dev/sluice/internal/ident"
	"github.com/sluice-dev/sluice/internal/table"
)

// testEnv is a real table store and catalog on a SQLite file in
// t.TempDir().
type testEnv struct {
	dir    string
	tables *table.Store
	cat    *catalog.Catalog
}

func newEnv(t testing.TB) *testEnv {
	t.Helper()
	dir := t.TempDir()
	db, err := table.OpenSQLite(filepath.Join(dir, "catalog.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	ctx := context.Background()
	st, err := table.Open(ctx, table.Options{DB: db, Warehouse: filepath.Join(dir, "warehouse")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	cat, err := catalog.Open(ctx, catalog.Options{DB: db})
	if err != nil {
		t.Fatal(err)
	}
	return &testEnv{dir: dir, tables: st, cat: cat}
}

func (e *testEnv) service(opts Options) *Service {
	return New(e.tables, e.cat, slog.New(slog.DiscardHandler), opts)
}

// createTable creates a table with properties and appends each commit's
// rows (one record per commit).
func (e *testEnv) createTable(t testing.TB, name string, sc *arrow.Schema, props map[string]string, commits ...[][]any) *table.Table {
	t.Helper()
	ctx := context.Background()
	n, err := ident.Parse(name)
	if err != nil {
		t.Fatal(err)
	}
	tbl, err := e.tables.Create(ctx, n, sc, table.CreateOptions{Properties: props})
	if err != nil {
		t.Fatal(err)
	}
	for _, rows := range commits {
		rec := buildRecord(t, sc, rows)
		if err := tbl.Append(ctx, []arrow.RecordBatch{rec}, nil); err != nil {
			t.Fatal(err)
		}
		rec.Release()
	}
	return tbl
}

// buildRecord builds a record of sc from rows of Go values: nil is null;
// int64/int32/string/float64/bool, and int64 microseconds for timestamps
// (any unit: the value is converted) and dates (days).
func buildRecord(t testing.TB, sc *arrow.Schema, rows [][]any) arrow.RecordBatch {
	t.Helper()
	b := array.NewRecordBuilder(memory.DefaultAllocator, sc)
	defer b.Release()
	for _, row := range rows {
		for j, v := range row {
			fb := b.Field(j)
			if v == nil {
				fb.AppendNull()
				continue
			}
			switch fb := fb.(type) {
			case *array.Int64Builder:
				fb.Append(v.(int64))
			case *array.Int32Builder:
				fb.Append(int32(v.(int64)))
			case *array.StringBuilder:
				fb.Append(v.(string))
			case *array.Float64Builder:
				fb.Append(v.(float64))
			case *array.BooleanBuilder:
				fb.Append(v.(bool))
			case *array.TimestampBuilder:
				us := v.(int64)
				switch sc.Field(j).Type.(*arrow.TimestampType).Unit {
				case arrow.Millisecond:
					us /= 1000
				case arrow.Second:
					us /= 1e6
				case arrow.Nanosecond:
					us *= 1000
				}
				fb.Append(arrow.Timestamp(us))
			case *array.Date32Builder:
				fb.Append(arrow.Date32(v.(int64)))
			default:
				t.Fatalf("buildRecord: unsupported builder %T", fb)
			}
		}
	}
	return b.NewRecordBatch()
}

// writeParquet writes rows of sc to a Parquet file.
func writeParquet(t testing.TB, path string, sc *arrow.Schema, rows [][]any) {
	t.Helper()
	rec := buildRecord(t, sc, rows)
	defer rec.Release()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w, err := pqarrow.NewFileWriter(sc, f, parquet.NewWriterProperties(parquet.WithMaxRowGroupLength(5000)), pqarrow.NewArrowWriterProperties(pqarrow.WithStoreSchema()))
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(rec); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

// cells renders a result as strings per row and column ("NULL" for null).
func cells(t testing.TB, rdr array.RecordReader) (names []string, rows [][]string) {
	t.Helper()
	for _, f := range rdr.Schema().Fields() {
		names = append(names, f.Name)
	}
	for rdr.Next() {
		rec := rdr.RecordBatch()
		for i := range int(rec.NumRows()) {
			row := make([]string, rec.NumCols())
			for j := range row {
				c := rec.Column(j)
				if c.IsNull(i) {
					row[j] = "NULL"
				} else {
					row[j] = c.ValueStr(i)
				}
			}
			rows = append(rows, row)
		}
	}
	if err := rdr.Err(); err != nil {
		t.Fatal(err)
	}
	return names, rows
}

func colIndex(t testing.TB, names []string, name string) int {
	t.Helper()
	for i, n := range names {
		if n == name {
			return i
		}
	}
	t.Fatalf("no column %s in %v", name, names)
	return -1
}

func str(v any) string {
	if v == nil {
		return "NULL"
	}
	return fmt.Sprint(v)
}
