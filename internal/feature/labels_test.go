package feature

import (
	"runtime/debug"
	"slices"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// TestSplitter checks that label batches are cut down to n rows, in order
// and without loss, and that smaller batches pass whole (never glued).
func TestSplitter(t *testing.T) {
	sc := arrow.NewSchema([]arrow.Field{{Name: "x", Type: arrow.PrimitiveTypes.Int64}}, nil)
	var batches []arrow.RecordBatch
	next := int64(0)
	for _, n := range []int{3, 10, 0, 7, 4, 1} {
		b := array.NewInt64Builder(memory.DefaultAllocator)
		for range n {
			b.Append(next)
			next++
		}
		col := b.NewArray()
		batches = append(batches, array.NewRecordBatch(sc, []arrow.Array{col}, int64(n)))
		col.Release()
		b.Release()
	}
	src, err := array.NewRecordReader(sc, batches)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range batches {
		b.Release()
	}
	s := newSplitter(src, 4)
	defer s.Release()
	var sizes []int64
	var got []int64
	for s.Next() {
		b := s.RecordBatch()
		sizes = append(sizes, b.NumRows())
		got = append(got, b.Column(0).(*array.Int64).Int64Values()...)
	}
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	if want := []int64{3, 4, 4, 2, 4, 3, 4, 1}; !slices.Equal(sizes, want) {
		t.Errorf("batch sizes %v, want %v", sizes, want)
	}
	for i, v := range got {
		if v != int64(i) {
			t.Fatalf("row %d holds %d: rows lost or reordered (%v)", i, v, got)
		}
	}
	if int64(len(got)) != next {
		t.Errorf("%d rows, want %d", len(got), next)
	}
}

// TestHoldGC checks the GC target while training sets are computed: set
// by the first holder, kept while any holds it, restored by the last, and
// left alone when the process's is already as low or the collector is off.
func TestHoldGC(t *testing.T) {
	current := func() int { p := debug.SetGCPercent(0); debug.SetGCPercent(p); return p }
	orig := debug.SetGCPercent(100)
	defer debug.SetGCPercent(orig)

	a, b := holdGC(50), holdGC(50)
	if got := current(); got != 50 {
		t.Fatalf("while held: GC percent %d, want 50", got)
	}
	a()
	a() // a second call changes nothing
	if got := current(); got != 50 {
		t.Fatalf("after one of two released: GC percent %d, want 50", got)
	}
	b()
	if got := current(); got != 100 {
		t.Fatalf("after both released: GC percent %d, want 100 back", got)
	}
	for _, own := range []int{30, -1} {
		debug.SetGCPercent(own)
		r := holdGC(50)
		if got := current(); got != own {
			t.Errorf("process at %d: held GC percent %d, want it left alone", own, got)
		}
		r()
		if got := current(); got != own {
			t.Errorf("process at %d: released GC percent %d", own, got)
		}
	}
	debug.SetGCPercent(100)
	holdGC(-1)()
	if got := current(); got != 100 {
		t.Errorf("GCPercent -1 changed the target to %d", got)
	}
}
