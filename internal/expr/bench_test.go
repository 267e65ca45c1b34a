package expr

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// The Nexmark Bid schema.
var bidSchema = arrow.NewSchema([]arrow.Field{
	{Name: "auction", Type: arrow.PrimitiveTypes.Int64},
	{Name: "bidder", Type: arrow.PrimitiveTypes.Int64},
	{Name: "price", Type: arrow.PrimitiveTypes.Int64},
	{Name: "channel", Type: arrow.BinaryTypes.String},
	{Name: "url", Type: arrow.BinaryTypes.String},
	{Name: "dateTime", Type: tTS},
	{Name: "extra", Type: arrow.BinaryTypes.String},
}, nil)

const bidRows = 4096

func bidBatch() arrow.RecordBatch {
	r := rand.New(rand.NewPCG(1, 2))
	b := array.NewRecordBuilder(memory.DefaultAllocator, bidSchema)
	defer b.Release()
	base := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC).UnixMicro()
	for i := range bidRows {
		b.Field(0).(*array.Int64Builder).Append(1000 + r.Int64N(10000))
		b.Field(1).(*array.Int64Builder).Append(1000 + r.Int64N(100000))
		b.Field(2).(*array.Int64Builder).Append(r.Int64N(1100000))
		b.Field(3).(*array.StringBuilder).Append(fmt.Sprintf("channel-%d", r.IntN(10)))
		b.Field(4).(*array.StringBuilder).Append(fmt.Sprintf("https://www.nexmark.com/item/%d/bid?x=%d", r.IntN(1000), r.IntN(1000)))
		b.Field(5).(*array.TimestampBuilder).Append(arrow.Timestamp(base + int64(i)*1000))
		b.Field(6).(*array.StringBuilder).Append("extra-payload-for-the-bid")
	}
	return b.NewRecordBatch()
}

func mustBind(tb testing.TB, src string, s *Scope) Expr {
	tb.Helper()
	e, err := bindText(src, s)
	if err != nil {
		tb.Fatal(err)
	}
	return e
}

func reportPerRow(b *testing.B) {
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/bidRows, "ns/row")
}

// BenchmarkEvalFilter is the predicate alone.
func BenchmarkEvalFilter(b *testing.B) {
	batch := bidBatch()
	defer batch.Release()
	pred := mustBind(b, "auction % 123 = 0 OR price > 1000000", NewScope(bidSchema, "bid"))
	ctx := &Ctx{Now: time.Now()}
	b.ReportAllocs()
	for b.Loop() {
		m, err := pred.Eval(ctx, batch)
		if err != nil {
			b.Fatal(err)
		}
		m.Release()
	}
	reportPerRow(b)
}

// BenchmarkEvalProject is the projection of all rows.
func BenchmarkEvalProject(b *testing.B) {
	batch := bidBatch()
	defer batch.Release()
	s := NewScope(bidSchema, "bid")
	proj := []Expr{mustBind(b, "auction", s), mustBind(b, "bidder", s), mustBind(b, "price * 0.908", s), mustBind(b, "dateTime", s)}
	ctx := &Ctx{Now: time.Now()}
	b.ReportAllocs()
	for b.Loop() {
		for _, p := range proj {
			a, err := p.Eval(ctx, batch)
			if err != nil {
				b.Fatal(err)
			}
			a.Release()
		}
	}
	reportPerRow(b)
}

// BenchmarkEvalFilterProject is Nexmark-style filter + projection:
//
//	SELECT auction, bidder, price * 0.908 AS price_eur, dateTime
//	FROM bid WHERE auction % 123 = 0 OR price > 1000000
//
// as the planner runs it: the predicate, Filter of the columns the
// projection needs, then the projection. ns/row is per input row.
func BenchmarkEvalFilterProject(b *testing.B) {
	batch := bidBatch()
	defer batch.Release()
	s := NewScope(bidSchema, "bid")
	pred := mustBind(b, "auction % 123 = 0 OR price > 1000000", s)
	// The planner prunes to the columns used before filtering.
	used := []int{0, 1, 2, 5}
	var fields []arrow.Field
	var cols []arrow.Array
	for _, i := range used {
		fields = append(fields, bidSchema.Field(i))
		cols = append(cols, batch.Column(i))
	}
	pruned := arrow.NewSchema(fields, nil)
	ps := NewScope(pruned, "bid")
	proj := []Expr{mustBind(b, "auction", ps), mustBind(b, "bidder", ps), mustBind(b, "price * 0.908", ps), mustBind(b, "dateTime", ps)}
	ctx := &Ctx{Now: time.Now()}
	b.ReportAllocs()
	for b.Loop() {
		m, err := pred.Eval(ctx, batch)
		if err != nil {
			b.Fatal(err)
		}
		in := array.NewRecordBatch(pruned, cols, batch.NumRows())
		f, err := Filter(nil, in, m)
		if err != nil {
			b.Fatal(err)
		}
		in.Release()
		m.Release()
		for _, p := range proj {
			a, err := p.Eval(ctx, f)
			if err != nil {
				b.Fatal(err)
			}
			a.Release()
		}
		f.Release()
	}
	reportPerRow(b)
}

// BenchmarkEvalFilterAllColumns filters all seven columns (strings too).
func BenchmarkEvalFilterAllColumns(b *testing.B) {
	batch := bidBatch()
	defer batch.Release()
	pred := mustBind(b, "auction % 123 = 0 OR price > 1000000", NewScope(bidSchema, "bid"))
	ctx := &Ctx{Now: time.Now()}
	b.ReportAllocs()
	for b.Loop() {
		m, err := pred.Eval(ctx, batch)
		if err != nil {
			b.Fatal(err)
		}
		f, err := Filter(nil, batch, m)
		if err != nil {
			b.Fatal(err)
		}
		m.Release()
		f.Release()
	}
	reportPerRow(b)
}

// BenchmarkEvalStringFuncs is a string-heavy projection.
func BenchmarkEvalStringFuncs(b *testing.B) {
	batch := bidBatch()
	defer batch.Release()
	e := mustBind(b, "upper(channel) || '/' || substring(url, 9, 10) LIKE '%NEL-1/%'", NewScope(bidSchema, "bid"))
	ctx := &Ctx{Now: time.Now()}
	b.ReportAllocs()
	for b.Loop() {
		a, err := e.Eval(ctx, batch)
		if err != nil {
			b.Fatal(err)
		}
		a.Release()
	}
	reportPerRow(b)
}
