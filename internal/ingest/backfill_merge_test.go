package ingest

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/sluice-dev/sluice/internal/ident"
	"github.com/sluice-dev/sluice/internal/stream"
	"github.com/sluice-dev/sluice/internal/table"
)

// A payload schema with a nested struct, for dot paths.
const txSchema = `{"type":"object","properties":{"tx":{"type":"string"},"amount":{"type":"number"},"customer":{"type":"object","properties":{"id":{"type":"string"},"tier":{"type":"integer"}}}}}`

func txSpec(dest, extra string) string {
	return fmt.Sprintf(`name: main.demo.tx
source: {kafka: {subscribe: tx}}
connection: {bootstrap_servers: "127.0.0.1:1"}
schema:
  key: {json_schema: '{"type":"string"}'}
  payload: {json_schema: '%s'}
ingestion:
  destination: %s
  backfill_source: main.demo.tx_history
%s`, txSchema, dest, extra)
}

// mergeEnv is a table store without a broker, for the merge alone.
type mergeEnv struct {
	t     *testing.T
	store *table.Store
	dir   string
}

func newMergeEnv(t *testing.T) *mergeEnv {
	t.Helper()
	dir := t.TempDir()
	db, err := table.OpenSQLite(filepath.Join(dir, "catalog.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	store, err := table.Open(context.Background(), table.Options{DB: db, Warehouse: filepath.Join(dir, "warehouse")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	return &mergeEnv{t: t, store: store, dir: dir}
}

func (e *mergeEnv) spec(extra string) *stream.Spec {
	e.t.Helper()
	s, err := stream.Parse([]byte(txSpec("main.demo.tx_ingestion", extra)))
	if err != nil {
		e.t.Fatal(err)
	}
	return s
}

func (e *mergeEnv) ingestionSchema(s *stream.Spec) *arrow.Schema {
	e.t.Helper()
	k, v, err := compileSchemas(s)
	if err != nil {
		e.t.Fatal(err)
	}
	return IngestionSchema(k, v)
}

// jsonRecord builds a batch of sc from JSON rows.
func jsonRecord(t testing.TB, sc *arrow.Schema, rows ...string) arrow.RecordBatch {
	t.Helper()
	rec, _, err := array.RecordFromJSON(memory.DefaultAllocator, sc, strings.NewReader("["+strings.Join(rows, ",")+"]"))
	if err != nil {
		t.Fatalf("building rows: %v", err)
	}
	return rec
}

func (e *mergeEnv) createTable(name string, sc *arrow.Schema, rows ...string) *table.Table {
	e.t.Helper()
	ctx := context.Background()
	tbl, err := e.store.Create(ctx, mustName(name), sc, table.CreateOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	if len(rows) > 0 {
		rec := jsonRecord(e.t, tbl.ArrowSchema(), rows...)
		defer rec.Release()
		if err := tbl.Append(ctx, []arrow.RecordBatch{rec}, map[string]string{PropOffsets: `{"tx":{"0":3}}`}); err != nil {
			e.t.Fatal(err)
		}
	}
	return tbl
}

// txRow is an ingestion row as JSON.
func txRow(key, tx string, amount float64, customer string, ts string, part int, off int, source string) string {
	cust := "null"
	if customer != "" {
		cust = fmt.Sprintf(`{"id":%q,"tier":1}`, customer)
	}
	k := "null"
	if key != "" {
		k = fmt.Sprintf("%q", key)
	}
	return fmt.Sprintf(`{"key":%s,"value":{"tx":%q,"amount":%v,"customer":%s},"stream_record_timestamp":%q,"kafka_topic":"tx","kafka_partition":%d,"kafka_offset":%d,"record_source":%q}`,
		k, tx, amount, cust, ts, part, off, source)
}

// tableRows returns "source:tx:amount" for every row of name, sorted.
func tableRows(t testing.TB, store *table.Store, name string) []string {
	t.Helper()
	ctx := context.Background()
	tbl, err := store.Load(ctx, mustName(name))
	if err != nil {
		t.Fatal(err)
	}
	rr, err := tbl.Scan(ctx, table.ScanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer rr.Release()
	var out []string
	for rr.Next() {
		rec := rr.RecordBatch()
		src := rec.Column(rec.Schema().FieldIndices(ColRecordSource)[0]).(*array.String)
		val := rec.Column(rec.Schema().FieldIndices(ColValue)[0]).(*array.Struct)
		tx := val.Field(0).(*array.String)
		amt := val.Field(1).(*array.Float64)
		for i := range int(rec.NumRows()) {
			out = append(out, fmt.Sprintf("%s:%s:%v", src.Value(i), tx.Value(i), amt.Value(i)))
		}
	}
	if err := rr.Err(); err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

func TestMergeDeduplication(t *testing.T) {
	const t0, t1, t2 = "2026-01-01T10:00:00Z", "2026-01-01T10:00:01Z", "2026-01-01T10:00:02Z"
	live := []string{
		txRow("k1", "a", 1, "c1", t0, 0, 0, "stream"),
		txRow("k2", "b", 2, "c2", t1, 0, 1, "stream"),
		txRow("", "c", 3, "", t2, 0, 2, "stream"),
	}
	cases := map[string]struct {
		dedup    string // the deduplication_columns line, or ""
		backfill []string
		want     []string // backfill rows in the table after the merge
		dups     int64
	}{
		"by a value column": {
			dedup: "deduplication_columns: [value.tx]",
			backfill: []string{
				txRow("k0", "z", 9, "c9", "2026-01-01T09:00:00Z", 0, 100, "x"),
				txRow("k1", "a", 100, "c1", t0, 0, 101, "x"), // same tx, other amount: a duplicate
				txRow("k0", "y", 8, "c9", t0, 0, 102, "x"),
				txRow("k0", "y", 7, "c9", t0, 0, 103, "x"), // duplicate within the backfill
			},
			want: []string{"backfill:y:8", "backfill:z:9"},
			dups: 2,
		},
		"by partition and offset": {
			dedup: "deduplication_columns: [kafka_partition, kafka_offset]",
			backfill: []string{
				txRow("k1", "a", 1, "c1", t0, 0, 0, "x"),  // same position
				txRow("k9", "q", 5, "c1", t0, 0, 1, "x"),  // same position, other content
				txRow("k2", "b", 2, "c2", t1, 1, 1, "x"),  // other partition
				txRow("k2", "r", 6, "c2", t1, 0, 99, "x"), // other offset
				txRow("k2", "s", 7, "c2", t1, 0, 99, "x"), // same as the previous
			},
			want: []string{"backfill:b:2", "backfill:r:6"},
			dups: 3,
		},
		"by the default key": {
			backfill: []string{
				txRow("k1", "a", 1, "c1", t0, 7, 70, "x"),  // same key, value, timestamp: duplicate (metadata differs)
				txRow("k1", "a", 1, "c1", t1, 0, 0, "x"),   // another timestamp
				txRow("k2", "b", 2.5, "c2", t1, 0, 1, "x"), // another value
				txRow("", "c", 3, "", t2, 0, 2, "x"),       // null key and null customer match nulls
				txRow("k3", "c", 3, "", t2, 0, 2, "x"),     // another key
			},
			want: []string{"backfill:a:1", "backfill:b:2.5", "backfill:c:3"},
			dups: 2,
		},
		"by a nested dot path": {
			dedup: "deduplication_columns: [value.customer.id]",
			backfill: []string{
				txRow("k5", "n1", 1, "c1", t0, 0, 50, "x"), // customer c1 exists
				txRow("k5", "n2", 2, "c7", t0, 0, 51, "x"), // new customer
				txRow("k5", "n3", 3, "", t0, 0, 52, "x"),   // null customer: matches the live row's null
			},
			want: []string{"backfill:n2:2"},
			dups: 2,
		},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			e := newMergeEnv(t)
			spec := e.spec("  " + c.dedup + "\n")
			sc := e.ingestionSchema(spec)
			dst := e.createTable("main.demo.tx_ingestion", sc, live...)
			e.createTable("main.demo.tx_history", sc, c.backfill...)
			before := dst.SnapshotProperties()[PropOffsets]
			res, err := MergeBackfill(context.Background(), e.store, spec, MergeOptions{PartitionEntries: 2})
			if err != nil {
				t.Fatal(err)
			}
			if res.RowsInserted != int64(len(c.want)) || res.DuplicatesSkipped != c.dups {
				t.Errorf("inserted %d, skipped %d; want %d, %d", res.RowsInserted, res.DuplicatesSkipped, len(c.want), c.dups)
			}
			var got []string
			for _, r := range tableRows(t, e.store, "main.demo.tx_ingestion") {
				if strings.HasPrefix(r, "backfill:") {
					got = append(got, r)
				}
			}
			if !slices.Equal(got, c.want) {
				t.Errorf("backfill rows = %v, want %v", got, c.want)
			}
			// The merge commit carries the offsets and records itself.
			if err := dst.Refresh(context.Background()); err != nil {
				t.Fatal(err)
			}
			props := dst.SnapshotProperties()
			if props[PropOffsets] != before || props[PropBackfill] == "" {
				t.Errorf("merge snapshot properties %v; want offsets %s and %s", props, before, PropBackfill)
			}
			// Merging again does nothing.
			again, err := MergeBackfill(context.Background(), e.store, spec, MergeOptions{})
			if err != nil || again.ID != res.ID {
				t.Fatalf("second merge: %+v, %v; want the first (%s)", again, err, res.ID)
			}
			if n, _ := dst.Count(context.Background()); n != int64(len(live)+len(c.want)) {
				t.Errorf("table has %d rows, want %d", n, len(live)+len(c.want))
			}
		})
	}
}

func TestMergeEmptySides(t *testing.T) {
	e := newMergeEnv(t)
	spec := e.spec("")
	sc := e.ingestionSchema(spec)
	e.createTable("main.demo.tx_ingestion", sc)
	e.createTable("main.demo.tx_history", sc, txRow("k", "a", 1, "", "2026-01-01T00:00:00Z", 0, 0, ""))
	res, err := MergeBackfill(context.Background(), e.store, spec, MergeOptions{})
	if err != nil || res.RowsInserted != 1 {
		t.Fatalf("into an empty table: %+v, %v", res, err)
	}
	e2 := newMergeEnv(t)
	e2.createTable("main.demo.tx_ingestion", sc, txRow("k", "a", 1, "", "2026-01-01T00:00:00Z", 0, 0, "stream"))
	e2.createTable("main.demo.tx_history", sc)
	res, err = MergeBackfill(context.Background(), e2.store, spec, MergeOptions{})
	if err != nil || res.RowsInserted != 0 {
		t.Fatalf("from an empty source: %+v, %v", res, err)
	}
	if _, ok := merged(mustLoad(t, e2.store, "main.demo.tx_ingestion")); !ok {
		t.Fatal("an empty merge is still recorded")
	}
}

func mustLoad(t testing.TB, store *table.Store, name string) *table.Table {
	t.Helper()
	tbl, err := store.Load(context.Background(), mustName(name))
	if err != nil {
		t.Fatal(err)
	}
	return tbl
}

// TestMergeCommitConflict: commits that land while the merge writes make
// its commit conflict; it commits again on top of them, carrying their
// offsets, unless one of them holds a key it inserts.
func TestMergeCommitConflict(t *testing.T) {
	for name, dupLive := range map[string]bool{"new rows": false, "a duplicate": true} {
		t.Run(name, func(t *testing.T) {
			e := newMergeEnv(t)
			spec := e.spec("  deduplication_columns: [value.tx]\n")
			sc := e.ingestionSchema(spec)
			dst := e.createTable("main.demo.tx_ingestion", sc, txRow("k", "a", 1, "", "2026-01-01T00:00:00Z", 0, 0, "stream"))
			e.createTable("main.demo.tx_history", sc,
				txRow("k", "a", 1, "", "2026-01-01T00:00:00Z", 0, 0, ""),
				txRow("k", "b", 2, "", "2026-01-01T00:00:00Z", 0, 0, ""))
			liveTx := "c"
			if dupLive {
				liveTx = "b" // the row the merge is inserting
			}
			// The hook runs after the data files are written, before the
			// first commit: a live commit lands in between.
			hook := func() {
				rec := jsonRecord(t, dst.ArrowSchema(), txRow("k", liveTx, 3, "", "2026-01-01T00:00:01Z", 0, 1, "stream"))
				defer rec.Release()
				if err := dst.Append(context.Background(), []arrow.RecordBatch{rec}, map[string]string{PropOffsets: `{"tx":{"0":2}}`}); err != nil {
					t.Fatal(err)
				}
				testHookBeforeCommit = nil
			}
			testHookBeforeCommit = hook
			t.Cleanup(func() { testHookBeforeCommit = nil })
			res, err := MergeBackfill(context.Background(), e.store, spec, MergeOptions{})
			if err != nil {
				t.Fatal(err)
			}
			got := tableRows(t, e.store, "main.demo.tx_ingestion")
			want := []string{"backfill:b:2", "stream:a:1", "stream:c:3"}
			if dupLive {
				want = []string{"stream:a:1", "stream:b:3"}
			}
			if !slices.Equal(got, want) {
				t.Fatalf("rows = %v, want %v (result %+v)", got, want, res)
			}
			if err := dst.Refresh(context.Background()); err != nil {
				t.Fatal(err)
			}
			if o := dst.SnapshotProperties()[PropOffsets]; o != `{"tx":{"0":2}}` {
				t.Fatalf("offsets after the merge = %s; the live commit's must be carried", o)
			}
		})
	}
}

func TestMergeRefusesBadSources(t *testing.T) {
	cases := map[string]struct {
		fields []arrow.Field // the backfill table's columns
		dedup  string
		want   string
	}{
		"no timestamp": {
			fields: []arrow.Field{{Name: "value", Type: arrow.StructOf(), Nullable: true}},
			want:   "has no column stream_record_timestamp",
		},
		"naive timestamp": {
			fields: []arrow.Field{{Name: "value", Type: arrow.StructOf(), Nullable: true},
				{Name: "stream_record_timestamp", Type: &arrow.TimestampType{Unit: arrow.Microsecond}, Nullable: true}},
			want: "stream_record_timestamp has type timestamp[us]; it must be a timestamp in UTC",
		},
		"value type": {
			fields: []arrow.Field{{Name: "value", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
				{Name: "stream_record_timestamp", Type: tsType, Nullable: true}},
			want: "column value has type int64",
		},
		"nested type": {
			fields: []arrow.Field{{Name: "value", Type: arrow.StructOf(arrow.Field{Name: "amount", Type: arrow.BinaryTypes.String, Nullable: true}), Nullable: true},
				{Name: "stream_record_timestamp", Type: tsType, Nullable: true}},
			want: "column value.amount has type utf8; the stream's schema gives float64",
		},
		"extra nested field": {
			fields: []arrow.Field{{Name: "value", Type: arrow.StructOf(arrow.Field{Name: "color", Type: arrow.BinaryTypes.String, Nullable: true}), Nullable: true},
				{Name: "stream_record_timestamp", Type: tsType, Nullable: true}},
			want: "column value.color is not in the stream's schema",
		},
		"extra column": {
			fields: []arrow.Field{{Name: "value", Type: arrow.StructOf(), Nullable: true},
				{Name: "stream_record_timestamp", Type: tsType, Nullable: true},
				{Name: "ingested_by", Type: arrow.BinaryTypes.String, Nullable: true}},
			want: "column ingested_by is not an ingestion table column",
		},
		"dedup column missing from the source": {
			fields: []arrow.Field{{Name: "value", Type: arrow.StructOf(), Nullable: true},
				{Name: "stream_record_timestamp", Type: tsType, Nullable: true}},
			dedup: "deduplication_columns: [kafka_partition, kafka_offset]",
			want:  "ingestion.deduplication_columns[0]: kafka_partition is not in the backfill source",
		},
		"dedup column missing from the schema": {
			fields: []arrow.Field{{Name: "value", Type: arrow.StructOf(), Nullable: true},
				{Name: "stream_record_timestamp", Type: tsType, Nullable: true}},
			dedup: "deduplication_columns: [value.transaction_id]",
			want:  "ingestion.deduplication_columns[0]: value.transaction_id is not a column of the ingestion table: value has no field transaction_id (it has tx, amount, customer)",
		},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			e := newMergeEnv(t)
			spec := e.spec("  " + c.dedup + "\n")
			e.createTable("main.demo.tx_history", arrow.NewSchema(c.fields, nil))
			m := &Manager{store: e.store}
			err := m.checkBackfill(context.Background(), spec, e.ingestionSchema(spec))
			var fe *stream.FieldError
			if err == nil || !errors.Is(err, ErrInvalid) || !errors.As(err, &fe) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v; want an invalid-field error containing %q", err, c.want)
			}
		})
	}
	t.Run("missing table", func(t *testing.T) {
		e := newMergeEnv(t)
		spec := e.spec("")
		err := (&Manager{store: e.store}).checkBackfill(context.Background(), spec, e.ingestionSchema(spec))
		if err == nil || !strings.Contains(err.Error(), "ingestion.backfill_source: table main.demo.tx_history does not exist") {
			t.Fatalf("err = %v", err)
		}
	})
}

func mustName(s string) ident.Name {
	n, err := ident.Parse(s)
	if err != nil {
		panic(err)
	}
	return n
}
