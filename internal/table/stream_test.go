package table

import (
	"context"
	"errors"
	"io"
	"slices"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
)

// TestAppendStream checks that batches streamed to AppendStream land in
// one snapshot whose summary holds the properties props returns at the end,
// and that an error from next commits nothing.
func TestAppendStream(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	tbl, err := e.store.Create(ctx, mustName(t, "main.demo.events"), eventSchema, CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sc := tbl.ArrowSchema()
	recs := []arrow.RecordBatch{recordFromJSON(t, sc, batch1), recordFromJSON(t, sc, batch2)}
	defer func() {
		for _, r := range recs {
			r.Release()
		}
	}()

	t.Run("commits", func(t *testing.T) {
		// The rows are produced while AppendStream runs; the offsets are
		// only known once the last one is.
		ch := make(chan arrow.RecordBatch)
		go func() {
			for _, r := range recs {
				ch <- r
			}
			close(ch)
		}()
		sent := 0
		next := func() (arrow.RecordBatch, error) {
			r, ok := <-ch
			if !ok {
				return nil, io.EOF
			}
			sent++
			return r, nil
		}
		props := func() map[string]string {
			return map[string]string{"sluice.offsets": string(rune('0' + sent))}
		}
		before := tbl.SnapshotCount()
		if err := tbl.AppendStream(ctx, sc, next, props); err != nil {
			t.Fatal(err)
		}
		if got := tbl.SnapshotCount(); got != before+1 {
			t.Fatalf("%d snapshots after one AppendStream, want %d", got, before+1)
		}
		if got := tbl.SnapshotProperties()["sluice.offsets"]; got != "2" {
			t.Fatalf("sluice.offsets = %q, want the value props returned after the last batch, 2", got)
		}
		if n, err := tbl.Count(ctx); err != nil || n != 4 {
			t.Fatalf("Count = %d, %v; want 4", n, err)
		}
		rdr, err := tbl.Scan(ctx, ScanOptions{})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for rdr.Next() {
			got = append(got, jsonRows(t, rdr.RecordBatch())...)
		}
		rdr.Release()
		want := slices.Concat(jsonRows(t, recs[0]), jsonRows(t, recs[1]))
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Fatalf("rows:\n%v\nwant:\n%v", got, want)
		}
	})

	t.Run("next fails", func(t *testing.T) {
		boom := errors.New("boom")
		calls := 0
		next := func() (arrow.RecordBatch, error) {
			if calls++; calls == 1 {
				return recs[0], nil
			}
			return nil, boom
		}
		props := func() map[string]string { t.Error("props called after a failed next"); return nil }
		id := tbl.SnapshotID()
		if err := tbl.AppendStream(ctx, sc, next, props); !errors.Is(err, boom) {
			t.Fatalf("AppendStream = %v, want boom", err)
		}
		if tbl.SnapshotID() != id {
			t.Fatal("a failed AppendStream moved the table")
		}
	})
}
