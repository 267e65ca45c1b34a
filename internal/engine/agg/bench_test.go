package agg

import (
	"fmt"
	"math/rand"
	"runtime"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// bidBatch is one micro-batch of Nexmark-style bids.
type bidBatch struct {
	auction, price, ts arrow.Array
	auctionStr         arrow.Array // nil unless asked for
}

func (b bidBatch) release() { release(b.auction, b.price, b.ts, b.auctionStr) }

// bidGen generates bids: auctions uniform over nAuctions, event time
// advancing at perSecond events per second with up to jitter of disorder.
type bidGen struct {
	rng        *rand.Rand
	nAuctions  int
	perSecond  int64
	jitter     int64 // µs
	seq        int64
	withString bool
	mem        memory.Allocator
}

func newBidGen(seed int64) *bidGen {
	return &bidGen{rng: rand.New(rand.NewSource(seed)), nAuctions: 10_000, perSecond: 10_000, jitter: 500_000, mem: memory.NewGoAllocator()}
}

func (g *bidGen) next(n int) bidBatch {
	ab := array.NewInt64Builder(g.mem)
	pb := array.NewInt64Builder(g.mem)
	tb := array.NewTimestampBuilder(g.mem, tsMS)
	var sb *array.StringBuilder
	if g.withString {
		sb = array.NewStringBuilder(g.mem)
	}
	base := int64(1_700_000_000) * 1e6
	for i := 0; i < n; i++ {
		a := 1000 + int64(g.rng.Intn(g.nAuctions))
		ab.Append(a)
		if sb != nil {
			sb.Append(fmt.Sprintf("auction-%d", a))
		}
		pb.Append(100 + g.rng.Int63n(1_000_000))
		now := base + g.seq*1e6/g.perSecond
		tb.Append(arrow.Timestamp((now - g.rng.Int63n(g.jitter)) / 1000))
		g.seq++
	}
	b := bidBatch{auction: ab.NewArray(), price: pb.NewArray(), ts: tb.NewArray()}
	if sb != nil {
		b.auctionStr = sb.NewArray()
		sb.Release()
	}
	ab.Release()
	pb.Release()
	tb.Release()
	return b
}

var (
	tumblingCountMax = Config{
		Keys:      []arrow.Field{{Name: "auction", Type: i64}},
		Aggs:      []Spec{{Func: CountStar, Name: "bids"}, {Func: Max, Type: i64, Name: "max_price"}},
		Window:    Window{Kind: Tumbling, Size: 10 * time.Second},
		Watermark: true,
		Delay:     time.Second,
		Mode:      Append,
	}
	slidingCount = Config{
		Keys:      []arrow.Field{{Name: "auction", Type: i64}},
		Aggs:      []Spec{{Func: CountStar, Name: "bids"}},
		Window:    Window{Kind: Sliding, Size: 10 * time.Second, Slide: 2 * time.Second},
		Watermark: true,
		Delay:     time.Second,
		Mode:      Append,
	}
)

func benchAgg(b *testing.B, cfg Config, strKey bool) {
	const events, batch = 1 << 20, 10_000
	g := newBidGen(1)
	g.withString = strKey
	var batches []bidBatch
	for n := 0; n < events; n += batch {
		batches = append(batches, g.next(min(batch, events-n)))
	}
	defer func() {
		for _, bb := range batches {
			bb.release()
		}
	}()
	if strKey {
		cfg.Keys = []arrow.Field{{Name: "auction", Type: str}}
	}
	args := make([]arrow.Array, len(cfg.Aggs))
	keys := make([]arrow.Array, 1)
	var ms0, ms1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms0)
	cpu0 := cpuNanos()
	b.ResetTimer()
	var out int64
	for i := 0; i < b.N; i++ {
		a, err := New(cfg, nil)
		if err != nil {
			b.Fatal(err)
		}
		for _, bb := range batches {
			keys[0] = bb.auction
			if strKey {
				keys[0] = bb.auctionStr
			}
			for j, s := range cfg.Aggs {
				if s.Func != CountStar {
					args[j] = bb.price
				}
			}
			if err := a.Add(keys, bb.ts, args, nil); err != nil {
				b.Fatal(err)
			}
			rec, err := a.Flush()
			if err != nil {
				b.Fatal(err)
			}
			out += rec.NumRows()
			rec.Release()
		}
	}
	b.StopTimer()
	cpu1 := cpuNanos()
	runtime.ReadMemStats(&ms1)
	total := float64(b.N) * events
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/total, "ns/event")
	b.ReportMetric(float64(cpu1-cpu0)/total, "cpu-ns/event")
	b.ReportMetric(float64(ms1.Mallocs-ms0.Mallocs)/total, "allocs/event")
	b.ReportMetric(float64(ms1.TotalAlloc-ms0.TotalAlloc)/total, "B/event")
	b.ReportMetric(float64(out)/float64(b.N), "rows/op")
}

// BenchmarkTumblingCountMax is Nexmark-style query (b): a 10 s tumbling
// count(*) and max(price) per auction, over 1M bids on 10k auctions at 10k
// bids per second of event time, 10k-row micro-batches.
func BenchmarkTumblingCountMax(b *testing.B) { benchAgg(b, tumblingCountMax, false) }

// BenchmarkSlidingCount is query (c): a 10 s / 2 s sliding count(*) per
// auction (5 windows per bid).
func BenchmarkSlidingCount(b *testing.B) { benchAgg(b, slidingCount, false) }

// BenchmarkTumblingCountMaxStringKey is (b) keyed by a string.
func BenchmarkTumblingCountMaxStringKey(b *testing.B) { benchAgg(b, tumblingCountMax, true) }

// TestStateBounded feeds a long stream over advancing event time and checks
// that state (groups, bytes, slot capacity) stays bounded by the watermark.
func TestStateBounded(t *testing.T) {
	session := Config{
		Keys:      []arrow.Field{{Name: "auction", Type: i64}},
		Aggs:      []Spec{{Func: CountStar, Name: "bids"}, {Func: Max, Type: i64, Name: "max_price"}},
		Window:    Window{Kind: Session, Gap: 3 * time.Second},
		Watermark: true,
		Delay:     time.Second,
		Mode:      Append,
	}
	update := tumblingCountMax
	update.Mode = Update
	for name, tc := range map[string]struct {
		cfg    Config
		events int
	}{
		"tumbling": {tumblingCountMax, 5_000_000},
		"sliding":  {slidingCount, 1_000_000},
		"session":  {session, 1_000_000},
		"update":   {update, 1_000_000},
	} {
		t.Run(name, func(t *testing.T) {
			n := tc.events
			if testing.Short() {
				n /= 5
			}
			g := newBidGen(7)
			a, err := New(tc.cfg, nil)
			if err != nil {
				t.Fatal(err)
			}
			args := make([]arrow.Array, len(tc.cfg.Aggs))
			var maxRows, maxBytes [2]int64
			var maxSlots [2]int
			const batch = 20_000
			for i := 0; i < n; i += batch {
				bb := g.next(batch)
				for j, s := range tc.cfg.Aggs {
					if s.Func != CountStar {
						args[j] = bb.price
					}
				}
				if err := a.Add([]arrow.Array{bb.auction}, bb.ts, args, nil); err != nil {
					t.Fatal(err)
				}
				rec, err := a.Flush()
				if err != nil {
					t.Fatal(err)
				}
				rec.Release()
				bb.release()
				half := 0
				if i >= n/2 {
					half = 1
				}
				s := a.Stats()
				maxRows[half] = max(maxRows[half], s.StateRows)
				maxBytes[half] = max(maxBytes[half], s.StateBytes)
				maxSlots[half] = max(maxSlots[half], len(a.start))
			}
			t.Logf("max state rows %v, bytes %v, slots %v (first half, second half)", maxRows, maxBytes, maxSlots)
			// With 10k auctions and at most a few windows open, the second
			// half of the stream must not hold more than the first did.
			grew := maxRows[1] > maxRows[0]*11/10 || maxBytes[1] > maxBytes[0]*11/10 || maxSlots[1] > maxSlots[0]*11/10
			if grew && !testing.Short() { // a short stream is still warming up at half time
				t.Fatalf("state grows: rows %v bytes %v slots %v", maxRows, maxBytes, maxSlots)
			}
			if limit := 10_000 * (a.nwin + 3); maxRows[1] > int64(limit) || maxSlots[1] > limit {
				t.Fatalf("state rows %d, slots %d above %d", maxRows[1], maxSlots[1], limit)
			}
			if len(a.wins) > a.nwin+3 {
				t.Fatalf("%d windows open", len(a.wins))
			}
		})
	}
}
