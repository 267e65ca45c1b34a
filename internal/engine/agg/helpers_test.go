package agg

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

var (
	tsSec = &arrow.TimestampType{Unit: arrow.Second}
	tsUS  = &arrow.TimestampType{Unit: arrow.Microsecond}
)

// col builds an array of typ from Go values; nil is null.
func col(t testing.TB, mem memory.Allocator, typ arrow.DataType, vals ...any) arrow.Array {
	t.Helper()
	b := array.NewBuilder(mem, typ)
	defer b.Release()
	for _, v := range vals {
		if v == nil {
			b.AppendNull()
			continue
		}
		switch b := b.(type) {
		case *array.Int64Builder:
			b.Append(int64(v.(int)))
		case *array.Int32Builder:
			b.Append(int32(v.(int)))
		case *array.Float64Builder:
			b.Append(v.(float64))
		case *array.StringBuilder:
			b.Append(v.(string))
		case *array.BooleanBuilder:
			b.Append(v.(bool))
		case *array.TimestampBuilder:
			b.Append(arrow.Timestamp(v.(int)))
		case *array.Date32Builder:
			b.Append(arrow.Date32(v.(int)))
		default:
			t.Fatalf("col: unsupported builder %T", b)
		}
	}
	return b.NewArray()
}

func release(arrs ...arrow.Array) {
	for _, a := range arrs {
		if a != nil {
			a.Release()
		}
	}
}

// render turns a batch into one line per row: window as [start,end) in
// seconds since the epoch, then the other columns with ValueStr.
func render(rec arrow.RecordBatch) []string {
	var out []string
	for r := 0; r < int(rec.NumRows()); r++ {
		var parts []string
		for c := 0; c < int(rec.NumCols()); c++ {
			parts = append(parts, rec.ColumnName(c)+"="+cell(rec.Column(c), r))
		}
		out = append(out, strings.Join(parts, " "))
	}
	return out
}

func cell(a arrow.Array, r int) string {
	if a.IsNull(r) {
		return "null"
	}
	switch a := a.(type) {
	case *array.Struct:
		s := a.Field(0).(*array.Timestamp).Value(r)
		e := a.Field(1).(*array.Timestamp).Value(r)
		return fmt.Sprintf("[%s,%s)", secs(int64(s)), secs(int64(e)))
	case *array.Float64:
		return fmt.Sprintf("%g", a.Value(r))
	}
	return a.ValueStr(r)
}

func secs(us int64) string {
	if us%1e6 == 0 {
		return fmt.Sprint(us / 1e6)
	}
	return fmt.Sprintf("%gs", float64(us)/1e6)
}

// harness drives an Aggregator in tests with a checked allocator.
type harness struct {
	t   testing.TB
	mem *memory.CheckedAllocator
	a   *Aggregator
}

func newHarness(t testing.TB, cfg Config) *harness {
	t.Helper()
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	a, err := New(cfg, mem)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mem.AssertSize(t, 0) })
	return &harness{t: t, mem: mem, a: a}
}

// add adds arrays (released afterwards).
func (h *harness) add(keys []arrow.Array, ts arrow.Array, args []arrow.Array, filters []arrow.Array) {
	h.t.Helper()
	err := h.a.Add(keys, ts, args, filters)
	release(keys...)
	release(ts)
	release(args...)
	release(filters...)
	if err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) flush() []string {
	h.t.Helper()
	rec, err := h.a.Flush()
	if err != nil {
		h.t.Fatal(err)
	}
	defer rec.Release()
	if !rec.Schema().Equal(h.a.OutputSchema()) {
		h.t.Fatalf("schema %s, want %s", rec.Schema(), h.a.OutputSchema())
	}
	return render(rec)
}

func sec(n int) time.Duration { return time.Duration(n) * time.Second }

func eq(t testing.TB, got, want []string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
