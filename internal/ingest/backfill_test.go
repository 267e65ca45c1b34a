package ingest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-dev/sluice/internal/broker"
	"github.com/sluice-dev/sluice/internal/table"
)

// base is the event time of the first live record in these tests.
var base = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// produceAt produces values to partition 0 of topic with record timestamps
// at, at+1s, ...
func (e *env) produceAt(topic string, at time.Time, values ...string) {
	e.t.Helper()
	var recs []*kgo.Record
	for i, v := range values {
		recs = append(recs, &kgo.Record{Topic: topic, Partition: 0, Value: []byte(v), Timestamp: at.Add(time.Duration(i) * time.Second)})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.prod.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		e.t.Fatal(err)
	}
}

// backfillSpec is the orders stream with a backfill source and settings.
func backfillSpec(bootstrap, extra string) string {
	return ordersSpec(bootstrap, "subscribe: orders") + extra
}

// orderRow is a backfill row of the orders stream (no key schema: key is a
// string) as JSON.
func orderRow(id string, amount float64, at time.Time) string {
	return fmt.Sprintf(`{"key":null,"value":{"order_id":%q,"amount":%v,"order_time":"2026-11-23T10:00:00Z"},"stream_record_timestamp":%q}`,
		id, amount, at.Format(time.RFC3339))
}

// backfillSchema is an orders backfill table without kafka_* columns.
func backfillSchema(t testing.TB) *arrow.Schema {
	full := IngestionSchema(mustCompile(t, ""), mustCompile(t, ordersSchema))
	return arrow.NewSchema(full.Fields()[:3], nil)
}

// waitBackfill polls the stream's backfill state until it is state.
func (e *env) waitBackfill(state string, timeout time.Duration) BackfillStatus {
	e.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		st, err := e.m.Status(context.Background(), "main.demo.orders")
		if err == nil && st.Backfill != nil && st.Backfill.State == state {
			return *st.Backfill
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("backfill state after %v: %+v (err %v), want %s", timeout, st.Backfill, err, state)
		}
		time.Sleep(10 * time.Millisecond) // polling an outcome
	}
}

func (e *env) backfillTable(rows ...string) *table.Table {
	e.t.Helper()
	me := &mergeEnv{t: e.t, store: e.store}
	return me.createTable("main.demo.orders_history", backfillSchema(e.t), rows...)
}

// tableRowsOrders returns "record_source:order_id" of every row, sorted.
func tableRowsOrders(t testing.TB, e *env) []string {
	t.Helper()
	tbl := mustLoad(t, e.store, "main.demo.orders_ingestion")
	rr, err := tbl.Scan(context.Background(), table.ScanOptions{Columns: []string{ColValue, ColRecordSource}})
	if err != nil {
		t.Fatal(err)
	}
	defer rr.Release()
	var out []string
	for rr.Next() {
		rec := rr.RecordBatch()
		ids := rec.Column(0).(*array.Struct).Field(0)
		for i := range int(rec.NumRows()) {
			out = append(out, rec.Column(1).ValueStr(i)+":"+ids.ValueStr(i))
		}
	}
	slices.Sort(out)
	return out
}

// TestBackfillOverlapReached: the merge waits until the backfill reaches an
// hour past the first live record, then inserts the backfill rows that are
// not live already, once; live ingestion goes on during and after it.
func TestBackfillOverlapReached(t *testing.T) {
	e := newEnv(t)
	if err := broker.CreateTopic(context.Background(), e.prod, "orders", 1); err != nil {
		t.Fatal(err)
	}
	e.backfillTable(
		orderRow("h1", 1, base.Add(-2*time.Hour)),
		orderRow("h2", 2, base.Add(-time.Hour)),
		orderRow("a", 10, base), // also live: a duplicate
	)
	if _, err := e.create(backfillSpec(e.broker.Addr(), `  backfill_source: main.demo.orders_history
  deduplication_columns: [value.order_id]
  backfill_deadline: 1h
`)); err != nil {
		t.Fatal(err)
	}
	// No live row yet: nothing to overlap with.
	st := e.waitBackfill(BackfillWaiting, 10*time.Second)
	if st.Deadline.IsZero() || st.Overlap.D() != time.Hour || st.Source != "table main.demo.orders_history" {
		t.Fatalf("waiting status = %+v", st)
	}
	e.produceAt("orders", base, order("a", 10), order("b", 20))
	e.waitRows("main.demo.orders_ingestion", ColValue, 2)
	// Both timestamps are known, and an hour of overlap is missing.
	sluiceEventually(t, "both timestamps reported", func() (bool, string) {
		st, _ := e.m.Status(context.Background(), "main.demo.orders")
		b := st.Backfill
		return b != nil && b.State == BackfillWaiting && b.IngestionMin.Equal(base) && b.BackfillMax.Equal(base), fmt.Sprintf("%+v", b)
	})
	// The user appends history up to an hour past the first live record.
	hist := mustLoad(t, e.store, "main.demo.orders_history")
	rec := jsonRecord(t, hist.ArrowSchema(), orderRow("b", 20, base.Add(time.Second)), orderRow("h3", 3, base.Add(time.Hour)))
	defer rec.Release()
	if err := hist.Append(context.Background(), []arrow.RecordBatch{rec}, nil); err != nil {
		t.Fatal(err)
	}
	done := e.waitBackfill(BackfillDone, 20*time.Second)
	if done.Trigger != "overlap" || done.RowsInserted != 3 || done.DuplicatesSkipped != 2 || done.SnapshotID == 0 {
		t.Fatalf("done status = %+v", done)
	}
	e.produceAt("orders", base.Add(time.Minute), order("c", 30))
	e.waitRows("main.demo.orders_ingestion", ColValue, 6)
	want := []string{"backfill:h1", "backfill:h2", "backfill:h3", "stream:a", "stream:b", "stream:c"}
	if got := tableRowsOrders(t, e); !slices.Equal(got, want) {
		t.Fatalf("rows = %v, want %v", got, want)
	}
	// After a restart the merge is not redone, and the state is kept.
	e.close()
	e.open()
	st2, err := e.m.Status(context.Background(), "main.demo.orders")
	if err != nil || st2.Backfill == nil || st2.Backfill.State != BackfillDone || st2.Backfill.RowsInserted != 3 {
		t.Fatalf("after restart: %+v, %v", st2.Backfill, err)
	}
	e.produceAt("orders", base.Add(2*time.Minute), order("d", 40))
	e.waitRows("main.demo.orders_ingestion", ColValue, 7)
}

// TestBackfillDeadline: without the overlap, the merge runs at the
// deadline anyway, and the status said why it was waiting until then.
func TestBackfillDeadline(t *testing.T) {
	e := newEnv(t)
	if err := broker.CreateTopic(context.Background(), e.prod, "orders", 1); err != nil {
		t.Fatal(err)
	}
	e.backfillTable(orderRow("h1", 1, base.Add(-48*time.Hour)), orderRow("h2", 2, base.Add(-47*time.Hour)))
	created := time.Now()
	if _, err := e.create(backfillSpec(e.broker.Addr(), `  backfill_source: main.demo.orders_history
  backfill_overlap: 30m
  backfill_deadline: 3s
`)); err != nil {
		t.Fatal(err)
	}
	e.produceAt("orders", base, order("a", 10))
	e.waitRows("main.demo.orders_ingestion", ColValue, 1)
	st, _ := e.m.Status(context.Background(), "main.demo.orders")
	if b := st.Backfill; b == nil || b.State != BackfillWaiting || time.Since(created) > 3*time.Second {
		t.Logf("status before the deadline: %+v (may have passed already on a slow machine)", b)
	}
	done := e.waitBackfill(BackfillDone, 20*time.Second)
	took := done.MergedAt.Sub(created)
	if done.Trigger != "deadline" || done.RowsInserted != 2 || took < 3*time.Second || took > 8*time.Second {
		t.Fatalf("done %+v, %v after creation; want the deadline trigger about 3s after", done, took)
	}
	if got, want := tableRowsOrders(t, e), []string{"backfill:h1", "backfill:h2", "stream:a"}; !slices.Equal(got, want) {
		t.Fatalf("rows = %v, want %v", got, want)
	}
}

// writeParquet writes rows (JSON, of the orders backfill schema with an
// extra kafka_offset column) to path with arrow-go's pqarrow.
func writeParquet(t testing.TB, path string, rows ...string) {
	t.Helper()
	sc := arrow.NewSchema(append(backfillSchema(t).Fields(), arrow.Field{Name: ColOffset, Type: arrow.PrimitiveTypes.Int32, Nullable: true}), nil)
	rec := jsonRecord(t, sc, rows...)
	defer rec.Release()
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		t.Fatal(err)
	}
	w, err := pqarrow.NewFileWriter(sc, f, parquet.NewWriterProperties(parquet.WithCompression(compress.Codecs.Snappy)), pqarrow.DefaultWriterProps())
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(rec); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil { // appear whole, as a user's copy would
		t.Fatal(err)
	}
}

// TestBackfillParquetGrowing: a Parquet-glob source is re-read on every
// check; files added while waiting make the overlap and are merged.
func TestBackfillParquetGrowing(t *testing.T) {
	e := newEnv(t)
	if err := broker.CreateTopic(context.Background(), e.prod, "orders", 1); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	row := func(id string, at time.Time, off int) string {
		return strings.TrimSuffix(orderRow(id, 1, at), "}") + fmt.Sprintf(`,"kafka_offset":%d}`, off)
	}
	writeParquet(t, filepath.Join(dir, "part-000.parquet"), row("h1", base.Add(-time.Hour), 1), row("h2", base.Add(-time.Minute), 2))
	if _, err := e.create(backfillSpec(e.broker.Addr(), fmt.Sprintf(`  backfill_source: {parquet: "%s/part-*.parquet"}
  deduplication_columns: [value.order_id]
  backfill_overlap: 10m
`, dir))); err != nil {
		t.Fatal(err)
	}
	e.produceAt("orders", base, order("a", 1), order("b", 1))
	e.waitRows("main.demo.orders_ingestion", ColValue, 2)
	sluiceEventually(t, "the first file's latest timestamp is reported", func() (bool, string) {
		st, _ := e.m.Status(context.Background(), "main.demo.orders")
		b := st.Backfill
		return b != nil && b.State == BackfillWaiting && b.BackfillMax.Equal(base.Add(-time.Minute)) && b.IngestionMin.Equal(base), fmt.Sprintf("%+v", b)
	})
	writeParquet(t, filepath.Join(dir, "part-001.parquet"), row("b", base.Add(time.Second), 3), row("h3", base.Add(5*time.Minute), 4))
	sluiceEventually(t, "the second file is seen", func() (bool, string) {
		st, _ := e.m.Status(context.Background(), "main.demo.orders")
		b := st.Backfill
		return b != nil && b.BackfillMax.Equal(base.Add(5*time.Minute)), fmt.Sprintf("%+v", b)
	})
	if st, _ := e.m.Status(context.Background(), "main.demo.orders"); st.Backfill.State != BackfillWaiting {
		t.Fatalf("merged with 5 of the 10 minutes of overlap: %+v", st.Backfill)
	}
	writeParquet(t, filepath.Join(dir, "part-002.parquet"), row("h4", base.Add(10*time.Minute), 5))
	done := e.waitBackfill(BackfillDone, 20*time.Second)
	if done.Trigger != "overlap" || done.RowsInserted != 4 || done.DuplicatesSkipped != 1 {
		t.Fatalf("done = %+v", done)
	}
	want := []string{"backfill:h1", "backfill:h2", "backfill:h3", "backfill:h4", "stream:a", "stream:b"}
	if got := tableRowsOrders(t, e); !slices.Equal(got, want) {
		t.Fatalf("rows = %v, want %v", got, want)
	}
}

// TestBackfillCreateChecks: the source is checked when the stream is
// created; a bad one creates nothing.
func TestBackfillCreateChecks(t *testing.T) {
	e := newEnv(t)
	if err := broker.CreateTopic(context.Background(), e.prod, "orders", 1); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]struct{ extra, want string }{
		"missing table":        {"  backfill_source: main.demo.nope\n", "ingestion.backfill_source: table main.demo.nope does not exist"},
		"no parquet":           {"  backfill_source: {parquet: /nonexistent/*.parquet}\n", "ingestion.backfill_source.parquet: no file matches /nonexistent/*.parquet"},
		"bad dedup":            {"  backfill_source: main.demo.orders_history\n  deduplication_columns: [value.nope]\n", "ingestion.deduplication_columns[0]: value.nope is not a column"},
		"dedup needs a source": {"  deduplication_columns: [value.order_id]\n", "ingestion.deduplication_columns: applies to the backfill merge"},
	} {
		t.Run(name, func(t *testing.T) {
			if name == "bad dedup" {
				if _, err := e.store.Load(context.Background(), mustName("main.demo.orders_history")); err != nil {
					e.backfillTable()
				}
			}
			_, err := e.create(backfillSpec(e.broker.Addr(), c.extra))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want %q", err, c.want)
			}
			if _, err := e.cat.GetStream(context.Background(), "main.demo.orders"); err == nil {
				t.Fatal("the stream was created")
			}
		})
	}
}

// sluiceEventually polls cond for an outcome (not for synchronisation).
func sluiceEventually(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after 20s; last state: %s", what, state)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
