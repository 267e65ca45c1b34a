package node_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/sluice-dev/sluice/internal/ingest"
	"github.com/sluice-dev/sluice/internal/table"
	"github.com/sluice-dev/sluice/internal/testutil/sluicetest"
)

// TestSIGKILLDuringBackfillMerge checks that the backfill merge happens
// exactly once although the process is killed with SIGKILL while it merges,
// several times, while live records keep arriving: in the end every
// acknowledged record is in the table once as a stream row, every backfill
// row whose id is not live is there once as a backfill row, and no backfill
// row duplicates a live one. SLUICE_CHAOS_SEED=N replays a run.
func TestSIGKILLDuringBackfillMerge(t *testing.T) {
	rng := startChaosTest(t, 0xbacf11)
	const topic = "events"
	proc, brokerAddr := newSluiceWithBroker(t, topic)
	hist := t.TempDir()

	// A first, old history file: no overlap yet.
	old := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	writeHistory(t, filepath.Join(hist, "part-0000.parquet"), old, "h-old-", 0, 10)

	proc.start()
	api := proc.waitUp()
	api.MustCreateStream(t, chaosStreamSpec(topic, brokerAddr, fmt.Sprintf(`  backfill_source: {parquet: "%s/part-*.parquet"}
  deduplication_columns: [value.id]
  backfill_overlap: 1h
`, hist)))
	p := startMixedProducer(t, brokerAddr, topic)
	// Wait until live rows r-000001..r-000400 are surely committed.
	sluicetest.Eventually(t, 60*time.Second, "the first live rows committed", func() (bool, string) {
		s, err := api.Stream(sluicetest.Context(t), "main.chaos.events")
		if err != nil {
			return false, err.Error()
		}
		return s.Status.RowsIngested >= 1000, fmt.Sprintf("%d rows", s.Status.RowsIngested)
	})
	// The user adds history that overlaps: 600k new rows and the first
	// 200 valid live ids again (duplicates to skip).
	const perFile, files = 100_000, 6
	for f := range files {
		writeHistory(t, filepath.Join(hist, fmt.Sprintf("part-%04d.parquet", f+1)), old.Add(time.Duration(f)*time.Hour), "h-", f*perFile, perFile)
	}
	var dupIDs []string
	for n := 1; len(dupIDs) < 200; n++ {
		if n%11 != 0 { // the producer's valid records
			dupIDs = append(dupIDs, fmt.Sprintf("r-%06d", n))
		}
	}
	writeHistoryIDs(t, filepath.Join(hist, "part-9999.parquet"), time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC), dupIDs)

	// Kill the process while it merges, a few times.
	kills := 3 + rng.IntN(3)
	for k := range kills {
		sluicetest.Eventually(t, 60*time.Second, "merging", func() (bool, string) {
			s, err := api.Stream(sluicetest.Context(t), "main.chaos.events")
			if err != nil || s.Status.Backfill == nil {
				return false, fmt.Sprint(err)
			}
			st := s.Status.Backfill.State
			return st == ingest.BackfillMerging || st == ingest.BackfillDone, st
		})
		time.Sleep(time.Duration(rng.IntN(1500)) * time.Millisecond) // the kill schedule, not synchronisation
		s, _ := api.Stream(sluicetest.Context(t), "main.chaos.events")
		state := "?"
		if s.Status.Backfill != nil {
			state = s.Status.Backfill.State
		}
		t.Logf("kill %d: %s after start, backfill %s, %d records acknowledged", k+1, proc.age(), state, p.count())
		proc.kill()
		proc.start()
		api = proc.waitUp()
	}

	var done sluicetest.Backfill
	sluicetest.Eventually(t, 120*time.Second, "the backfill merged", func() (bool, string) {
		s, err := api.Stream(sluicetest.Context(t), "main.chaos.events")
		if err != nil || s.Status.Backfill == nil {
			return false, fmt.Sprint(err)
		}
		done = *s.Status.Backfill
		return done.State == ingest.BackfillDone, fmt.Sprintf("%+v", done)
	})
	acked, err := p.stop()
	if err != nil {
		t.Fatalf("producer: %v", err)
	}
	var wantLive int64
	for _, r := range acked {
		if r.valid {
			wantLive++
		}
	}
	wantBackfill := int64(10 + files*perFile)
	sluicetest.Eventually(t, 60*time.Second, "every acknowledged record ingested", func() (bool, string) {
		tb, err := api.Table(sluicetest.Context(t), "main.chaos.events_ingestion")
		if err != nil {
			return false, err.Error()
		}
		return tb.Rows >= wantLive+wantBackfill, fmt.Sprintf("%d/%d rows", tb.Rows, wantLive+wantBackfill)
	})
	if err := proc.term(30 * time.Second); err != nil {
		t.Fatalf("stopping sluice with SIGTERM: %v", err)
	}
	if done.RowsInserted != wantBackfill || done.DuplicatesSkipped != int64(len(dupIDs)) {
		t.Errorf("backfill done: %+v; want %d inserted, %d skipped", done, wantBackfill, len(dupIDs))
	}
	merges := strings.Count(proc.log(), `msg="backfill merged"`)
	t.Logf("%d records acknowledged (%d valid); the merge committed %d time(s) in the log", len(acked), wantLive, merges)

	// Read the table directly.
	store := openStore(t, proc.data)
	live := map[pos]int{}
	backfill := map[string]int{}
	liveIDs := map[string]bool{}
	scanOpts := table.ScanOptions{Columns: []string{ingest.ColValue, ingest.ColPartition, ingest.ColOffset, ingest.ColRecordSource}}
	eachBatch(t, store, "main.chaos.events_ingestion", scanOpts, func(rec arrow.RecordBatch) {
		ids := rec.Column(0).(*array.Struct).Field(0).(*array.String)
		parts := rec.Column(1).(*array.Int32)
		offs := rec.Column(2).(*array.Int64)
		srcs := rec.Column(3).(*array.String)
		for i := range int(rec.NumRows()) {
			switch srcs.Value(i) {
			case ingest.RecordSourceStream:
				live[pos{parts.Value(i), offs.Value(i)}]++
				liveIDs[ids.Value(i)] = true
			case ingest.RecordSourceBackfill:
				backfill[ids.Value(i)]++
			default:
				t.Errorf("row with record_source %q", srcs.Value(i))
			}
		}
	})
	var bad []string
	for _, r := range acked {
		if n := live[pos{r.partition, r.offset}]; r.valid && n != 1 {
			bad = append(bad, fmt.Sprintf("live record %d@%d %s: %d times", r.partition, r.offset, r.id, n))
		}
	}
	if int64(len(live)) != wantLive {
		bad = append(bad, fmt.Sprintf("%d distinct live rows, want %d", len(live), wantLive))
	}
	for id, n := range backfill {
		if n != 1 || liveIDs[id] {
			bad = append(bad, fmt.Sprintf("backfill id %s: %d times (also live: %v)", id, n, liveIDs[id]))
		}
	}
	if int64(len(backfill)) != wantBackfill {
		bad = append(bad, fmt.Sprintf("%d backfill rows, want %d", len(backfill), wantBackfill))
	}
	if len(bad) > 20 {
		bad = append(bad[:20], fmt.Sprintf("... and %d more", len(bad)-20))
	}
	if len(bad) > 0 {
		t.Fatalf("after %d kills:\n%s", kills, strings.Join(bad, "\n"))
	}
}

// historySchema is the chaos stream's backfill: key, value and a UTC
// stream_record_timestamp.
var historySchema = arrow.NewSchema([]arrow.Field{
	{Name: "key", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "value", Type: arrow.StructOf(
		arrow.Field{Name: "id", Type: arrow.BinaryTypes.String, Nullable: true},
		arrow.Field{Name: "n", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
	), Nullable: true},
	{Name: "stream_record_timestamp", Type: &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}, Nullable: true},
}, nil)

// writeHistory writes n rows with ids prefix+from.. and timestamps from at.
func writeHistory(t *testing.T, path string, at time.Time, prefix string, from, n int) {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("%s%07d", prefix, from+i)
	}
	writeHistoryIDs(t, path, at, ids)
}

func writeHistoryIDs(t *testing.T, path string, at time.Time, ids []string) {
	t.Helper()
	b := array.NewRecordBuilder(memory.DefaultAllocator, historySchema)
	defer b.Release()
	keys := b.Field(0).(*array.StringBuilder)
	val := b.Field(1).(*array.StructBuilder)
	idb := val.FieldBuilder(0).(*array.StringBuilder)
	nb := val.FieldBuilder(1).(*array.Int64Builder)
	ts := b.Field(2).(*array.TimestampBuilder)
	for i, id := range ids {
		keys.Append("k")
		val.Append(true)
		idb.Append(id)
		nb.Append(int64(i))
		ts.Append(arrow.Timestamp(at.Add(time.Duration(i) * time.Millisecond).UnixMicro()))
	}
	rec := b.NewRecordBatch()
	defer rec.Release()
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		t.Fatal(err)
	}
	w, err := pqarrow.NewFileWriter(historySchema, f, parquet.NewWriterProperties(parquet.WithCompression(compress.Codecs.Snappy)), pqarrow.DefaultWriterProps())
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(rec); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}
