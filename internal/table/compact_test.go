package table

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
)

// TestCompactDirectMatchesIceberg compacts two identical tables, one by
// the table's own reader and writer (compactGroup) and one by iceberg-go's
// ExecuteCompactionGroup, the oracle: the rows, in order, must be the same,
// and the same as before compaction.
func TestCompactDirectMatchesIceberg(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	build := func(name string) *Table {
		tbl, err := e.store.Create(ctx, mustName(t, name), eventSchema, CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for i := range 12 {
			js := fmt.Sprintf(`[{"id":%d,"name":"n%d","ts":"2024-01-02T03:04:%02d.5Z","day":"2024-01-%02d","score":%d.25,"ok":%v,"n":%d,"tags":["t%d",null,"u"],"value":{"a":"v%d","b":%d,"at":"2024-05-01T00:00:00Z"}},{"id":%d},{"id":%d,"tags":[],"value":{"a":null,"b":null,"at":null}}]`,
				3*i, i, i, i+1, i, i%2 == 0, i, i, i, i, 3*i+1, 3*i+2)
			if err := tbl.Append(ctx, []arrow.RecordBatch{recordFromJSON(t, eventSchema, js)}, map[string]string{"sluice.offsets": fmt.Sprint(i)}); err != nil {
				t.Fatal(err)
			}
		}
		return tbl
	}
	direct, viaIceberg := build("main.demo.direct"), build("main.demo.iceberg")
	before := orderedRows(t, direct)
	opts := OptimizeOptions{OrphanOlderThan: -1, DutyCycle: 0.9}

	n := directCompactions.Load()
	if _, err := direct.Optimize(ctx, opts); err != nil {
		t.Fatal(err)
	}
	if directCompactions.Load() != n+1 {
		t.Fatal("the direct compaction was not used")
	}
	compactDirect = false
	t.Cleanup(func() { compactDirect = true })
	if _, err := viaIceberg.Optimize(ctx, opts); err != nil {
		t.Fatal(err)
	}
	if directCompactions.Load() != n+1 {
		t.Fatal("the direct compaction ran while disabled")
	}
	for _, tbl := range []*Table{direct, viaIceberg} {
		if files, err := tbl.DataFiles(ctx); err != nil || len(files) != 1 {
			t.Fatalf("%s: data files %v (%v), want 1", tbl.Name(), files, err)
		}
		if o := tbl.SnapshotProperties()["sluice.offsets"]; o != "11" {
			t.Errorf("%s: offsets %q after compaction, want 11 carried forward", tbl.Name(), o)
		}
	}
	got, want := orderedRows(t, direct), orderedRows(t, viaIceberg)
	if !slices.Equal(got, want) {
		t.Fatalf("direct compaction rows:\n%v\niceberg-go's:\n%v", got, want)
	}
	if !slices.Equal(got, before) {
		t.Fatalf("rows after compaction:\n%v\nbefore:\n%v", got, before)
	}
}

// orderedRows renders tbl's rows as JSON lines in scan order.
func orderedRows(t *testing.T, tbl *Table) []string {
	t.Helper()
	rdr, err := tbl.Scan(context.Background(), ScanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return readRows(t, rdr)
}

// TestPacer checks the compaction's duty cycle on a fake clock: before
// each batch but the first, it pauses (1-d)/d times the time spent since
// the previous one was asked for, and stops when the pause is cancelled.
func TestPacer(t *testing.T) {
	var recs []arrow.RecordBatch
	for i := range 4 {
		recs = append(recs, recordFromJSON(t, eventSchema, fmt.Sprintf(`[{"id":%d}]`, i)))
	}
	rr, err := array.NewRecordReader(eventSchema, recs)
	if err != nil {
		t.Fatal(err)
	}
	defer rr.Release()
	clock := time.Unix(0, 0)
	var slept []time.Duration
	cancelAt := -1
	p := &pacer{RecordReader: rr, dutyCycle: 0.25, now: func() time.Time { return clock },
		sleep: func(d time.Duration) bool {
			if len(slept) == cancelAt {
				return false
			}
			slept = append(slept, d)
			clock = clock.Add(d)
			return true
		}}
	n := 0
	for p.Next() {
		n++
		clock = clock.Add(time.Duration(n) * 10 * time.Millisecond) // the work on batch n
	}
	if n != 4 {
		t.Fatalf("%d batches, want 4", n)
	}
	if want := []time.Duration{30 * time.Millisecond, 60 * time.Millisecond, 90 * time.Millisecond, 120 * time.Millisecond}; !slices.Equal(slept, want) {
		t.Fatalf("pauses %v, want %v (3× the work before each: a duty cycle of 1/4)", slept, want)
	}

	rr2, err := array.NewRecordReader(eventSchema, recs)
	if err != nil {
		t.Fatal(err)
	}
	defer rr2.Release()
	slept, cancelAt = nil, 1
	p.RecordReader, p.last = rr2, time.Time{}
	n = 0
	for p.Next() {
		n++
	}
	if n != 2 {
		t.Fatalf("%d batches read with the second pause cancelled, want 2", n)
	}
}
