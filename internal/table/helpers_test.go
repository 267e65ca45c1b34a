package table

import (
	"bytes"
	"context"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/sluice-dev/sluice/internal/ident"
)

// testEnv is a real store: a SQLite file and a warehouse in t.TempDir().
type testEnv struct {
	dir   string
	db    string
	store *Store
}

func newEnv(t testing.TB) *testEnv {
	t.Helper()
	dir := t.TempDir()
	e := &testEnv{dir: dir, db: filepath.Join(dir, "meta.db")}
	e.store = e.open(t)
	return e
}

// open opens another Store on the same database and warehouse, as a
// restarted process would.
func (e *testEnv) open(t testing.TB) *Store {
	t.Helper()
	db, err := OpenSQLite(e.db)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	s, err := Open(context.Background(), Options{DB: db, Warehouse: filepath.Join(e.dir, "warehouse")}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func mustName(t testing.TB, s string) ident.Name {
	t.Helper()
	n, err := ident.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// eventSchema is a plain Arrow schema with nested and temporal columns.
var eventSchema = arrow.NewSchema([]arrow.Field{
	{Name: "id", Type: arrow.PrimitiveTypes.Int64},
	{Name: "name", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "ts", Type: &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}, Nullable: true},
	{Name: "day", Type: arrow.FixedWidthTypes.Date32, Nullable: true},
	{Name: "score", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	{Name: "ok", Type: arrow.FixedWidthTypes.Boolean, Nullable: true},
	{Name: "n", Type: arrow.PrimitiveTypes.Int32, Nullable: true},
	{Name: "tags", Type: arrow.ListOf(arrow.BinaryTypes.String), Nullable: true},
	{Name: "value", Type: arrow.StructOf(
		arrow.Field{Name: "a", Type: arrow.BinaryTypes.String, Nullable: true},
		arrow.Field{Name: "b", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		arrow.Field{Name: "at", Type: &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}, Nullable: true},
	), Nullable: true},
}, nil)

// recordFromJSON builds a record of schema sc from a JSON array of rows.
func recordFromJSON(t testing.TB, sc *arrow.Schema, js string) arrow.RecordBatch {
	t.Helper()
	rec, _, err := array.RecordFromJSON(memory.DefaultAllocator, sc, strings.NewReader(js))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rec.Release)
	return rec
}

// rowsOf renders every row of rdr as one JSON line, sorted, and releases rdr.
func rowsOf(t testing.TB, rdr array.RecordReader) []string {
	t.Helper()
	rows := readRows(t, rdr)
	slices.Sort(rows)
	return rows
}

// readRows renders every row of rdr as one JSON line, in order, and
// releases rdr.
func readRows(t testing.TB, rdr array.RecordReader) []string {
	t.Helper()
	defer rdr.Release()
	var rows []string
	for rdr.Next() {
		rows = append(rows, jsonRows(t, rdr.RecordBatch())...)
	}
	if err := rdr.Err(); err != nil {
		t.Fatal(err)
	}
	return rows
}

func jsonRows(t testing.TB, rec arrow.RecordBatch) []string {
	t.Helper()
	var buf bytes.Buffer
	if err := array.RecordToJSON(rec, &buf); err != nil {
		t.Fatal(err)
	}
	var rows []string
	for l := range strings.Lines(buf.String()) {
		rows = append(rows, strings.TrimSpace(l))
	}
	return rows
}
