package table

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
)

// readChanges reads the rows of ch, sorted, as JSON lines.
func readChanges(t *testing.T, tbl *Table, ch Changes, cols ...string) []string {
	t.Helper()
	rdr, err := tbl.ReadFiles(context.Background(), ch.Files, cols)
	if err != nil {
		t.Fatal(err)
	}
	return rowsOf(t, rdr)
}

func TestChanges(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	name := mustName(t, "main.demo.changes")
	tbl, err := e.store.Create(ctx, name, eventSchema, CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	empty, err := tbl.Changes(ctx, 0, ChangesOptions{})
	if err != nil || empty.To != 0 || len(empty.Files) != 0 {
		t.Fatalf("changes of an empty table: %+v, %v", empty, err)
	}
	appendIDs := func(ids ...int) {
		t.Helper()
		js := "["
		for i, id := range ids {
			if i > 0 {
				js += ","
			}
			js += fmt.Sprintf(`{"id":%d,"value":{"a":"x","b":%d}}`, id, id)
		}
		rec := recordFromJSON(t, eventSchema, js+"]")
		if err := tbl.Append(ctx, []arrow.RecordBatch{rec}, map[string]string{"sluice.offsets": fmt.Sprint(ids)}); err != nil {
			t.Fatal(err)
		}
	}
	appendIDs(1, 2)
	first := tbl.SnapshotID()
	appendIDs(3)
	appendIDs(4, 5, 6)
	if err := tbl.Append(ctx, nil, nil); err != nil { // an empty commit adds no files
		t.Fatal(err)
	}

	all, err := tbl.Changes(ctx, 0, ChangesOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if all.To != tbl.SnapshotID() || all.Rows != 6 {
		t.Fatalf("from 0: %+v", all)
	}
	since, err := tbl.Changes(ctx, first, ChangesOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got := readChanges(t, tbl, since, "id")
	if want := []string{`{"id":3}`, `{"id":4}`, `{"id":5}`, `{"id":6}`}; !slices.Equal(got, want) {
		t.Fatalf("since the first append: %v, want %v", got, want)
	}
	if since.To != tbl.SnapshotID() || since.Rows != 4 || len(since.Files) != 2 {
		t.Fatalf("since the first append: %+v", since)
	}
	// Bounds apply at snapshot boundaries and are deterministic.
	one, err := tbl.Changes(ctx, first, ChangesOptions{MaxRows: 1})
	if err != nil {
		t.Fatal(err)
	}
	if one.Rows != 1 || len(one.Files) != 1 {
		t.Fatalf("MaxRows 1: %+v", one)
	}
	two, err := tbl.Changes(ctx, one.To, ChangesOptions{MaxRows: 1})
	if err != nil {
		t.Fatal(err)
	}
	if got := readChanges(t, tbl, two, "id", "value"); len(got) != 3 || got[0] != `{"id":4,"value":{"a":"x","at":null,"b":4}}` {
		t.Fatalf("second bounded range: %v", got)
	}
	if none, err := tbl.Changes(ctx, tbl.SnapshotID(), ChangesOptions{}); err != nil || len(none.Files) != 0 || none.To != tbl.SnapshotID() {
		t.Fatalf("nothing new: %+v, %v", none, err)
	}

	// Compaction is skipped: rows appended after it are the only change.
	time.Sleep(3 * time.Millisecond) // snapshot ages are compared in whole milliseconds
	before := tbl.SnapshotID()
	if _, err := tbl.Optimize(ctx, OptimizeOptions{ExpireOlderThan: time.Hour, OrphanOlderThan: -1}); err != nil {
		t.Fatal(err)
	}
	if tbl.SnapshotID() == before {
		t.Fatal("optimize made no snapshot")
	}
	appendIDs(7)
	after, err := tbl.Changes(ctx, before, ChangesOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := readChanges(t, tbl, after, "id"); !slices.Equal(got, []string{`{"id":7}`}) {
		t.Fatalf("after compaction: %v", got)
	}
	// A position that expiry removed is reported as such.
	if _, err := tbl.Changes(ctx, 12345, ChangesOptions{}); !errors.Is(err, ErrHistoryExpired) {
		t.Fatalf("unknown position: %v", err)
	}
	// An overwrite is not an append.
	last := tbl.SnapshotID()
	if err := tbl.Overwrite(ctx, []arrow.RecordBatch{recordFromJSON(t, eventSchema, `[{"id":100}]`)}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := tbl.Changes(ctx, last, ChangesOptions{}); !errors.Is(err, ErrRewritten) {
		t.Fatalf("after an overwrite: %v", err)
	}
	rdr, err := tbl.Scan(ctx, ScanOptions{Columns: []string{"id"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := rowsOf(t, rdr); !slices.Equal(got, []string{`{"id":100}`}) {
		t.Fatalf("after overwrite: %v", got)
	}
}

// TestChangesAcrossManifestMerges checks that merged manifests (every 16
// appends) still yield exactly the rows each append added.
func TestChangesAcrossManifestMerges(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	tbl, err := e.store.Create(ctx, mustName(t, "main.demo.merges"), eventSchema, CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var pos []int64
	for i := range 40 {
		rec := recordFromJSON(t, eventSchema, fmt.Sprintf(`[{"id":%d}]`, i))
		if err := tbl.Append(ctx, []arrow.RecordBatch{rec}, nil); err != nil {
			t.Fatal(err)
		}
		pos = append(pos, tbl.SnapshotID())
	}
	from := int64(0)
	for i := range 40 {
		ch, err := tbl.Changes(ctx, from, ChangesOptions{MaxFiles: 1})
		if err != nil {
			t.Fatal(err)
		}
		if got := readChanges(t, tbl, ch, "id"); !slices.Equal(got, []string{fmt.Sprintf(`{"id":%d}`, i)}) && from != 0 {
			t.Fatalf("append %d: %v", i, got)
		}
		if from == 0 {
			// From the beginning, everything is one range.
			if ch.Rows != 40 {
				t.Fatalf("from 0: %d rows", ch.Rows)
			}
			from = pos[0]
			continue
		}
		from = ch.To
	}
}

// TestExpiryKeepsReaderHistory checks that snapshot expiry keeps the
// snapshots a registered streaming reader has not read past.
func TestExpiryKeepsReaderHistory(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	name := mustName(t, "main.demo.read")
	tbl, err := e.store.Create(ctx, name, eventSchema, CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	appendID := func(id int) {
		t.Helper()
		if err := tbl.Append(ctx, []arrow.RecordBatch{recordFromJSON(t, eventSchema, fmt.Sprintf(`[{"id":%d}]`, id))}, nil); err != nil {
			t.Fatal(err)
		}
	}
	appendID(1)
	ch, err := tbl.Changes(ctx, 0, ChangesOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.store.SetReader(ctx, name, "pipeline:p/x", ch.To, ch.ToTime); err != nil {
		t.Fatal(err)
	}
	for i := 2; i <= 6; i++ {
		appendID(i)
	}
	time.Sleep(3 * time.Millisecond) // snapshot ages are compared in whole milliseconds
	if _, err := tbl.Optimize(ctx, OptimizeOptions{ExpireOlderThan: time.Nanosecond, RetainLast: 1, OrphanOlderThan: -1}); err != nil {
		t.Fatal(err)
	}
	rest, err := tbl.Changes(ctx, ch.To, ChangesOptions{})
	if err != nil {
		t.Fatalf("the reader's position was expired: %v", err)
	}
	if got := readChanges(t, tbl, rest, "id"); len(got) != 5 {
		t.Fatalf("rows after the reader's position: %v", got)
	}
	// Without the reader, the same expiry removes its position.
	if err := e.store.DropReaders(ctx, "pipeline:p/"); err != nil {
		t.Fatal(err)
	}
	appendID(7)
	time.Sleep(3 * time.Millisecond)
	if _, err := tbl.Optimize(ctx, OptimizeOptions{ExpireOlderThan: time.Nanosecond, RetainLast: 1, OrphanOlderThan: -1}); err != nil {
		t.Fatal(err)
	}
	if _, err := tbl.Changes(ctx, ch.To, ChangesOptions{}); !errors.Is(err, ErrHistoryExpired) {
		t.Fatalf("after dropping the reader: %v", err)
	}
}

func TestReadSelected(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	tbl, err := e.store.Create(ctx, mustName(t, "main.demo.sel"), eventSchema, CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rec := recordFromJSON(t, eventSchema, `[{"id":1,"name":"x","value":{"a":"p","b":7,"at":"2024-01-01T00:00:00Z"}},{"id":2,"value":null},{"id":3,"name":"z","tags":["q"],"value":{"a":"r","b":9}}]`)
	if err := tbl.Append(ctx, []arrow.RecordBatch{rec}, nil); err != nil {
		t.Fatal(err)
	}
	ch, err := tbl.Changes(ctx, 0, ChangesOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sel := make([]*Selection, eventSchema.NumFields())
	sel[0] = sel[0].Add(nil)      // id
	sel[8] = sel[8].Add([]int{1}) // value.b
	rdr, err := tbl.ReadSelected(ctx, ch.Files, sel)
	if err != nil {
		t.Fatal(err)
	}
	got := rowsOf(t, rdr)
	want := []string{
		`{"day":null,"id":1,"n":null,"name":null,"ok":null,"score":null,"tags":null,"ts":null,"value":{"a":null,"at":null,"b":7}}`,
		`{"day":null,"id":2,"n":null,"name":null,"ok":null,"score":null,"tags":null,"ts":null,"value":null}`,
		`{"day":null,"id":3,"n":null,"name":null,"ok":null,"score":null,"tags":null,"ts":null,"value":{"a":null,"at":null,"b":9}}`,
	}
	if !slices.Equal(got, want) {
		t.Fatalf("got\n%v\nwant\n%v", got, want)
	}
	// Nothing selected still yields the rows.
	rdr, err = tbl.ReadSelected(ctx, ch.Files, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := rowsOf(t, rdr); len(got) != 3 {
		t.Fatalf("nothing selected: %v", got)
	}
}
