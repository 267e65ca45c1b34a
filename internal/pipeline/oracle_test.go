package pipeline

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

var oracleSchema = arrow.NewSchema([]arrow.Field{
	{Name: "k", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "v", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
	{Name: "ts", Type: &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}, Nullable: true},
}, nil)

type oracleEvent struct {
	k  string
	v  int64
	ts time.Time
}

// TestWindowOracle runs randomized event streams, out of order and with
// late events, through windowed aggregations written in SQL, in random
// micro-batches, and compares what the query appends with a direct
// computation: the watermark after each batch is the largest event time so
// far minus the delay; a row contributes to a window unless that window
// ended at or before the watermark when the row arrived; a window is
// emitted once the watermark passes its end.
func TestWindowOracle(t *testing.T) {
	const delay = 20 * time.Second
	for _, w := range []struct{ size, slide time.Duration }{
		{10 * time.Second, 10 * time.Second},
		{10 * time.Second, 5 * time.Second},
		{30 * time.Second, 10 * time.Second},
	} {
		for seed := uint64(1); seed <= 4; seed++ {
			t.Run(fmt.Sprintf("%v/%v/seed%d", w.size, w.slide, seed), func(t *testing.T) {
				rng := rand.New(rand.NewPCG(seed, 99))
				var events []oracleEvent
				base := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
				clock := base
				for range 3000 {
					clock = clock.Add(time.Duration(rng.IntN(300)) * time.Millisecond)
					ts := clock.Add(-time.Duration(rng.IntN(15000)) * time.Millisecond) // out of order
					if rng.IntN(50) == 0 {
						ts = clock.Add(-time.Duration(30+rng.IntN(60)) * time.Second) // late
					}
					events = append(events, oracleEvent{k: fmt.Sprintf("k%d", rng.IntN(5)), v: int64(rng.IntN(1000) - 100), ts: ts})
				}
				var cuts []int
				for i := 0; i < len(events); i += 1 + rng.IntN(400) {
					cuts = append(cuts, i)
				}
				cuts = append(cuts, len(events))
				got := runOracleQuery(t, w.size, w.slide, delay, events, cuts)
				want := oracleWindows(w.size, w.slide, delay, events, cuts)
				if len(want) < 10 {
					t.Fatalf("the oracle emitted only %d windows: a weak test", len(want))
				}
				if !slices.Equal(got, want) {
					t.Fatalf("the query appended %d rows, the oracle %d\nfirst difference: %s", len(got), len(want), firstDiff(got, want))
				}
			})
		}
	}
}

func firstDiff(a, b []string) string {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return fmt.Sprintf("got %s, want %s", a[i], b[i])
		}
	}
	return "one is a prefix of the other"
}

func runOracleQuery(t *testing.T, size, slide, delay time.Duration, events []oracleEvent, cuts []int) []string {
	t.Helper()
	src := fmt.Sprintf(`CREATE STREAMING TABLE main.t.out AS
SELECT window(ts, '%d seconds', '%d seconds') AS w, k, count(*) AS n, sum(v) AS s, max(v) AS mx, min(v) AS mn
FROM STREAM(main.t.events) WATERMARK ts DELAY OF INTERVAL %d SECONDS
GROUP BY window(ts, '%d seconds', '%d seconds'), k`, int(size.Seconds()), int(slide.Seconds()), int(delay.Seconds()), int(size.Seconds()), int(slide.Seconds()))
	q, err := NewQuery(context.Background(), src, QueryOptions{Tables: map[string]*arrow.Schema{"main.t.events": oracleSchema}})
	if err != nil {
		t.Fatal(err)
	}
	var out []arrow.RecordBatch
	for i := 0; i+1 < len(cuts); i++ {
		b := array.NewRecordBuilder(memory.DefaultAllocator, oracleSchema)
		for _, e := range events[cuts[i]:cuts[i+1]] {
			b.Field(0).(*array.StringBuilder).Append(e.k)
			b.Field(1).(*array.Int64Builder).Append(e.v)
			b.Field(2).(*array.TimestampBuilder).Append(arrow.Timestamp(e.ts.UnixMicro()))
		}
		rec := b.NewRecordBatch()
		b.Release()
		if err := q.Push(rec, &out); err != nil {
			t.Fatal(err)
		}
		rec.Release()
		if err := q.Flush(&out); err != nil {
			t.Fatal(err)
		}
	}
	var rows []string
	for _, rec := range out {
		w := rec.Column(0).(*array.Struct)
		start := w.Field(0).(*array.Timestamp)
		end := w.Field(1).(*array.Timestamp)
		for i := 0; i < int(rec.NumRows()); i++ {
			rows = append(rows, fmt.Sprintf("%d-%d %s n=%d s=%d max=%d min=%d",
				start.Value(i), end.Value(i), rec.Column(1).(*array.String).Value(i),
				rec.Column(2).(*array.Int64).Value(i), rec.Column(3).(*array.Int64).Value(i),
				rec.Column(4).(*array.Int64).Value(i), rec.Column(5).(*array.Int64).Value(i)))
		}
		rec.Release()
	}
	slices.Sort(rows)
	return rows
}

// oracleWindows is the direct computation.
func oracleWindows(size, slide, delay time.Duration, events []oracleEvent, cuts []int) []string {
	type key struct {
		start int64
		k     string
	}
	type acc struct{ n, s, mx, mn int64 }
	groups := map[key]*acc{}
	var wm int64 = -1 << 62 // microseconds; no watermark before the first batch ends
	var maxTs int64 = -1 << 62
	sz, sl := size.Microseconds(), slide.Microseconds()
	for i := 0; i+1 < len(cuts); i++ {
		for _, e := range events[cuts[i]:cuts[i+1]] {
			ts := e.ts.UnixMicro()
			maxTs = max(maxTs, ts)
			// Windows [start, start+size) containing ts, start a multiple of slide.
			last := ts - ((ts%sl)+sl)%sl
			for start := last; start > ts-sz; start -= sl {
				if start+sz <= wm {
					continue // that window was already final
				}
				g := groups[key{start, e.k}]
				if g == nil {
					g = &acc{mx: e.v, mn: e.v}
					groups[key{start, e.k}] = g
				}
				g.n++
				g.s += e.v
				g.mx, g.mn = max(g.mx, e.v), min(g.mn, e.v)
			}
		}
		wm = max(wm, maxTs-delay.Microseconds())
	}
	var rows []string
	for k, g := range groups {
		if k.start+sz <= wm {
			rows = append(rows, fmt.Sprintf("%d-%d %s n=%d s=%d max=%d min=%d", k.start, k.start+sz, k.k, g.n, g.s, g.mx, g.mn))
		}
	}
	slices.Sort(rows)
	return rows
}
