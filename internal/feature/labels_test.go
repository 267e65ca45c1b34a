package feature

import (
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
