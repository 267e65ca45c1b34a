package pipeline

import (
	"context"
	"maps"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/sluice-dev/sluice/internal/expr"
	"github.com/sluice-dev/sluice/internal/publish"
	"github.com/sluice-dev/sluice/internal/table"
)

// MergeRows commits rows (of schema sc, the table's) that replace the
// table's rows with the same primary key: the feature store's
// mode="merge". Within rows, the last row of a key wins. It is what a
// pipeline does for a table with PRIMARY KEY, and what writes to a feature
// table through the API do. mem is the allocator of the work (nil: Go's).
func MergeRows(ctx context.Context, out *table.Table, keys []string, sc *arrow.Schema, rows []arrow.RecordBatch, props map[string]string, mem memory.Allocator) error {
	if mem == nil {
		mem = memory.DefaultAllocator
	}
	x := &execCtx{ctx: ctx, mem: mem, eval: &expr.Ctx{Mem: mem, Now: time.Now()}}
	return mergeRows(ctx, x, out, keys, sc, rows, props)
}

// mergeRows commits output rows that replace the table's rows with the same
// primary key (update mode, and feature tables: PRIMARY KEY with the
// TIMESERIES column makes the key (keys, timestamp)). Within the output,
// the last row of a key wins. When no key is already in the table (the
// usual case for time series, whose rows carry new timestamps), the rows
// are appended; otherwise the table is rewritten without the replaced rows
// (copy on write), in one overwrite commit.
func mergeRows(ctx context.Context, x *execCtx, tbl *table.Table, keys []string, sc *arrow.Schema, out []arrow.RecordBatch, props map[string]string) error {
	idx := make([]int, len(keys))
	for i, k := range keys {
		idx[i] = sc.FieldIndices(k)[0]
	}
	keyCols := func(b arrow.RecordBatch, idx []int) []arrow.Array {
		cols := make([]arrow.Array, len(idx))
		for i, c := range idx {
			cols[i] = b.Column(c)
		}
		return cols
	}
	// The last row of each key in the output.
	type pos struct{ batch, row int }
	last := map[string]pos{}
	var buf []byte
	for bi, b := range out {
		cols := keyCols(b, idx)
		for row := 0; row < int(b.NumRows()); row++ {
			buf, _ = encodeKey(buf[:0], cols, row)
			last[string(buf)] = pos{bi, row}
		}
	}
	var fresh []arrow.RecordBatch
	defer func() {
		for _, b := range fresh {
			b.Release()
		}
	}()
	for bi, b := range out {
		cols := keyCols(b, idx)
		keep := make([]bool, b.NumRows())
		for row := range keep {
			buf, _ = encodeKey(buf[:0], cols, row)
			keep[row] = last[string(buf)] == pos{bi, row}
		}
		fb, err := filterBools(x, b, keep)
		if err != nil {
			return err
		}
		fresh = append(fresh, fb)
	}

	// Does the table hold any of these keys? Read only the key columns.
	rdr, err := tbl.Scan(ctx, table.ScanOptions{Columns: keys})
	if err != nil {
		return err
	}
	collide := false
	seq := make([]int, len(keys))
	for i := range seq {
		seq[i] = i
	}
	for !collide && rdr.Next() {
		b := rdr.RecordBatch()
		cols := keyCols(b, seq)
		for row := 0; row < int(b.NumRows()); row++ {
			buf, _ = encodeKey(buf[:0], cols, row)
			if _, ok := last[string(buf)]; ok {
				collide = true
				break
			}
		}
	}
	err = rdr.Err()
	rdr.Release()
	if err != nil {
		return err
	}
	if !collide {
		return tbl.Append(ctx, fresh, props)
	}

	var kept []arrow.RecordBatch
	defer func() {
		for _, b := range kept {
			b.Release()
		}
	}()
	rdr, err = tbl.Scan(ctx, table.ScanOptions{})
	if err != nil {
		return err
	}
	defer rdr.Release()
	for rdr.Next() {
		b := rdr.RecordBatch()
		cols := keyCols(b, idx)
		keep := make([]bool, b.NumRows())
		for row := range keep {
			buf, _ = encodeKey(buf[:0], cols, row)
			_, replaced := last[string(buf)]
			keep[row] = !replaced
		}
		rec := array.NewRecordBatch(sc, b.Columns(), b.NumRows())
		fb, err := filterBools(x, rec, keep)
		rec.Release()
		if err != nil {
			return err
		}
		kept = append(kept, fb)
	}
	if err := rdr.Err(); err != nil {
		return err
	}
	// The online sync applies a merge without clearing the table's online
	// rows first (publish.PropMerge).
	props = maps.Clone(props)
	if props == nil {
		props = map[string]string{}
	}
	props[publish.PropMerge] = "true"
	return tbl.Overwrite(ctx, append(kept, fresh...), props)
}
