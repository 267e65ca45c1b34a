package main

import (
	"context"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/sluice-dev/sluice/internal/ident"
	"github.com/sluice-dev/sluice/internal/pipeline"
)

// TestQueries runs each query in process over a few simulated seconds
// (past one cycle of the generator's ring) and checks its output row count
// against expectedRows, a plain Go computation of the same query.
func TestQueries(t *testing.T) {
	const n = 80 * batchRows // 32.8 simulated seconds
	g := newGenerator(nil)
	for name, tc := range map[string]struct {
		query      string
		microbatch int64
	}{
		"a":                   {"a", 25 * batchRows},
		"b":                   {"b", 25 * batchRows},
		"c":                   {"c", 25 * batchRows},
		"b one-batch flushes": {"b", batchRows},
		"c one-batch flushes": {"c", batchRows},
	} {
		t.Run(name, func(t *testing.T) {
			res, err := runMemory(context.Background(), tc.query, n, tc.microbatch, "")
			if err != nil {
				t.Fatal(err)
			}
			if res.Events != n {
				t.Errorf("pushed %d events, want %d", res.Events, n)
			}
			want := expectedRows(g, tc.query, n)
			if want == 0 {
				t.Fatal("the oracle expects no rows: the test says nothing")
			}
			if res.OutputRows != want {
				t.Errorf("query %s output %d rows, want %d", tc.query, res.OutputRows, want)
			}
		})
	}
}

// TestGenerator checks that batches and events agree, also after the
// ring wraps, and that times stay within maxDisorder of their slot.
func TestGenerator(t *testing.T) {
	g := newGenerator(nil)
	for bn := range int64(ringBatches + 2) {
		rec := g.batch()
		auction := rec.Column(0).(*array.Int64)
		ts := rec.Column(5).(*array.Timestamp)
		url := rec.Column(4).(*array.String)
		for _, r := range []int{0, batchRows / 2, batchRows - 1} {
			e := bn*batchRows + int64(r)
			b := g.event(e)
			if auction.Value(r) != b.auction || int64(ts.Value(r)) != b.micros || url.Value(r) != b.url {
				t.Fatalf("event %d: batch has (%d, %d, %q), event() (%d, %d, %q)", e, auction.Value(r), ts.Value(r), url.Value(r), b.auction, b.micros, b.url)
			}
			slot := t0.UnixMicro() + e*usPerEvent
			if b.micros > slot || b.micros <= slot-maxDisorder.Microseconds() {
				t.Fatalf("event %d at %d, slot %d: out of order by more than %s", e, b.micros, slot, maxDisorder)
			}
		}
		rec.Release()
	}
}

// TestBrokerSQL checks that the end-to-end pipelines compile over the
// stream's ingestion table.
func TestBrokerSQL(t *testing.T) {
	ingestion := arrow.NewSchema([]arrow.Field{
		{Name: "key", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "value", Type: arrow.StructOf(bidSchema.Fields()...), Nullable: true},
		{Name: "kafka_offset", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
	}, nil)
	for _, q := range queryNames {
		text, err := brokerSQL(q)
		if err != nil {
			t.Fatal(err)
		}
		lookup := func(_ context.Context, n ident.Name) (*arrow.Schema, error) {
			if n.String() == ingestionTable {
				return ingestion, nil
			}
			return nil, pipeline.ErrUnknownTable
		}
		if _, err := pipeline.Compile(context.Background(), text, pipeline.CompileOptions{Lookup: lookup}); err != nil {
			t.Errorf("query %s: %v", q, err)
		}
	}
}
