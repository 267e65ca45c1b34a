package agg

// The oracle test runs randomized event streams (out-of-order, late and
// null-time events, random micro-batches) through the Aggregator and
// compares its output with a straightforward batch computation written
// independently of it: plain maps and slices of events, windows enumerated
// by division, sessions merged by sorting, aggregates recomputed from the
// kept events. Reference: Spark Structured Streaming programming guide,
// "Handling Late Data and Watermarking" and "Output Modes".

import (
	"fmt"
	"math"
	"math/rand"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

type ev struct {
	seq     int
	key     int // -1: null
	key2    int // composite second key; -1: null
	ts      int64
	tsNull  bool
	x       int64
	xNull   bool
	f       float64
	s       string
	flt     bool
	fltNull bool
}

type keyMode int

const (
	kmInt keyMode = iota
	kmStr
	kmComposite
)

var oracleAggs = []Spec{
	{Func: CountStar, Name: "star"},
	{Func: Count, Type: i64, Name: "cnt"},
	{Func: Sum, Type: i64, Name: "sum"},
	{Func: Avg, Type: i64, Name: "avg"},
	{Func: Min, Type: i64, Name: "min"},
	{Func: Max, Type: i64, Name: "max"},
	{Func: First, Type: i64, Name: "first"},
	{Func: Last, Type: i64, Name: "last"},
	{Func: CountDistinct, Type: i64, Name: "cd"},
	{Func: Sum, Type: i64, Name: "sum_flt"}, // FILTER (WHERE flt)
	{Func: Max, Type: f64, Name: "maxf"},
	{Func: Min, Type: str, Name: "mins"},
	{Func: CountDistinct, Type: str, Name: "cds"},
}

const filteredAgg = 9

func oracleKeys(km keyMode) []arrow.Field {
	switch km {
	case kmStr:
		return []arrow.Field{{Name: "k", Type: str}}
	case kmComposite:
		return []arrow.Field{{Name: "k", Type: str}, {Name: "k2", Type: i64}}
	}
	return []arrow.Field{{Name: "k", Type: i64}}
}

func keyString(km keyMode, e ev) string {
	k := "null"
	if e.key >= 0 {
		k = fmt.Sprint(e.key)
		if km != kmInt {
			k = fmt.Sprint("k", e.key)
		}
	}
	if km == kmComposite {
		k2 := "null"
		if e.key2 >= 0 {
			k2 = fmt.Sprint(e.key2)
		}
		return k + "|" + k2
	}
	return k
}

// genStream makes n events with advancing, jittered event times, split
// into micro-batches (each a list of Add calls).
func genStream(rng *rand.Rand, n int) [][][]ev {
	nkeys := []int{1, 4, 25}[rng.Intn(3)]
	var evs []ev
	now := int64(1_700_000_000) * 1e6
	for i := 0; i < n; i++ {
		now += rng.Int63n(400_000) // ~0.2 s per event
		e := ev{seq: i, key: rng.Intn(nkeys), key2: rng.Intn(3)}
		if rng.Intn(50) == 0 {
			e.key = -1
		}
		if rng.Intn(40) == 0 {
			e.key2 = -1
		}
		switch r := rng.Intn(100); {
		case r < 60:
			e.ts = now - rng.Int63n(3e6) // a little out of order
		case r < 85:
			e.ts = now - rng.Int63n(15e6) // more
		case r < 97:
			e.ts = now - rng.Int63n(60e6) // often late
		default:
			e.tsNull = true
		}
		if rng.Intn(4) != 0 {
			e.ts -= e.ts % 1e6 // mostly whole seconds, so boundaries are hit
		}
		e.x = rng.Int63n(100) - 20
		e.xNull = rng.Intn(10) == 0
		e.f = float64(rng.Intn(1000)) / 8
		e.s = fmt.Sprint("s", rng.Intn(30))
		e.flt = rng.Intn(2) == 0
		e.fltNull = rng.Intn(15) == 0
		evs = append(evs, e)
	}
	var batches [][][]ev
	for len(evs) > 0 || rng.Intn(3) == 0 {
		var batch [][]ev
		for calls := rng.Intn(3); calls >= 0 && len(evs) > 0; calls-- {
			m := min(len(evs), 1+rng.Intn(120))
			batch = append(batch, evs[:m])
			evs = evs[m:]
		}
		batches = append(batches, batch) // may be empty: a micro-batch without data
		if len(batches) > 10000 {
			break
		}
	}
	return batches
}

// addEvents feeds one Add call.
func addEvents(t testing.TB, a *Aggregator, mem memory.Allocator, km keyMode, evs []ev) {
	t.Helper()
	kb := array.NewInt64Builder(mem)
	sb := array.NewStringBuilder(mem)
	k2 := array.NewInt64Builder(mem)
	tsb := array.NewTimestampBuilder(mem, tsUS)
	xb := array.NewInt64Builder(mem)
	fb := array.NewFloat64Builder(mem)
	strb := array.NewStringBuilder(mem)
	flb := array.NewBooleanBuilder(mem)
	for _, e := range evs {
		if e.key < 0 {
			kb.AppendNull()
			sb.AppendNull()
		} else {
			kb.Append(int64(e.key))
			sb.Append(fmt.Sprint("k", e.key))
		}
		if e.key2 < 0 {
			k2.AppendNull()
		} else {
			k2.Append(int64(e.key2))
		}
		if e.tsNull {
			tsb.AppendNull()
		} else {
			tsb.Append(arrow.Timestamp(e.ts))
		}
		if e.xNull {
			xb.AppendNull()
		} else {
			xb.Append(e.x)
		}
		fb.Append(e.f)
		strb.Append(e.s)
		if e.fltNull {
			flb.AppendNull()
		} else {
			flb.Append(e.flt)
		}
	}
	kArr, sArr, k2Arr, ts, x, f, s, flt := kb.NewArray(), sb.NewArray(), k2.NewArray(), tsb.NewArray(), xb.NewArray(), fb.NewArray(), strb.NewArray(), flb.NewArray()
	for _, b := range []array.Builder{kb, sb, k2, tsb, xb, fb, strb, flb} {
		b.Release()
	}
	defer release(kArr, sArr, k2Arr, ts, x, f, s, flt)
	var keys []arrow.Array
	switch km {
	case kmInt:
		keys = []arrow.Array{kArr}
	case kmStr:
		keys = []arrow.Array{sArr}
	case kmComposite:
		keys = []arrow.Array{sArr, k2Arr}
	}
	args := make([]arrow.Array, len(oracleAggs))
	filters := make([]arrow.Array, len(oracleAggs))
	for i, sp := range oracleAggs {
		switch {
		case sp.Func == CountStar:
		case sp.Type == f64:
			args[i] = f
		case sp.Type == str:
			args[i] = s
		default:
			args[i] = x
		}
	}
	filters[filteredAgg] = flt
	if err := a.Add(keys, ts, args, filters); err != nil {
		t.Fatal(err)
	}
}

// orow is an output row: group and aggregate values (nil for null).
type orow struct {
	start, end int64
	key        string
	vals       []any
}

func (r orow) group() string { return fmt.Sprintf("%d %d %s", r.start, r.end, r.key) }

func decodeRows(t testing.TB, rec arrow.RecordBatch, km keyMode, windowed bool) []orow {
	t.Helper()
	var out []orow
	c0 := 0
	if windowed {
		c0 = 1
	}
	nk := len(oracleKeys(km))
	for r := 0; r < int(rec.NumRows()); r++ {
		var o orow
		if windowed {
			st := rec.Column(0).(*array.Struct)
			o.start = int64(st.Field(0).(*array.Timestamp).Value(r))
			o.end = int64(st.Field(1).(*array.Timestamp).Value(r))
		}
		var ks []string
		for k := 0; k < nk; k++ {
			if c := rec.Column(c0 + k); c.IsNull(r) {
				ks = append(ks, "null")
			} else {
				ks = append(ks, c.ValueStr(r))
			}
		}
		o.key = strings.Join(ks, "|")
		for c := c0 + nk; c < int(rec.NumCols()); c++ {
			col := rec.Column(c)
			if col.IsNull(r) {
				o.vals = append(o.vals, nil)
				continue
			}
			switch col := col.(type) {
			case *array.Int64:
				o.vals = append(o.vals, col.Value(r))
			case *array.Float64:
				o.vals = append(o.vals, col.Value(r))
			case *array.String:
				o.vals = append(o.vals, col.Value(r))
			default:
				t.Fatalf("column %T", col)
			}
		}
		out = append(out, o)
	}
	return out
}

// oracleAgg computes the aggregates of evs (in arrival order).
func oracleAgg(evs []ev) []any {
	evs = slices.Clone(evs)
	sort.Slice(evs, func(i, j int) bool { return evs[i].seq < evs[j].seq })
	var cnt, sum, sumF int64
	var fsum float64
	var mn, mx *int64
	var maxf *float64
	var mins *string
	distinct := map[int64]bool{}
	distinctS := map[string]bool{}
	nflt := 0
	for _, e := range evs {
		maxf = ptrMax(maxf, e.f)
		if mins == nil || e.s < *mins {
			s := e.s
			mins = &s
		}
		distinctS[e.s] = true
		if e.xNull {
			continue
		}
		cnt++
		sum += e.x
		fsum += float64(e.x)
		if mn == nil || e.x < *mn {
			v := e.x
			mn = &v
		}
		if mx == nil || e.x > *mx {
			v := e.x
			mx = &v
		}
		distinct[e.x] = true
		if e.flt && !e.fltNull {
			sumF += e.x
			nflt++
		}
	}
	opt := func(p *int64) any {
		if p == nil {
			return nil
		}
		return *p
	}
	xval := func(e ev) any {
		if e.xNull {
			return nil
		}
		return e.x
	}
	var vals []any
	vals = append(vals, int64(len(evs)), cnt)
	if cnt == 0 {
		vals = append(vals, nil, nil)
	} else {
		vals = append(vals, sum, fsum/float64(cnt))
	}
	vals = append(vals, opt(mn), opt(mx), xval(evs[0]), xval(evs[len(evs)-1]), int64(len(distinct)))
	if nflt == 0 {
		vals = append(vals, nil)
	} else {
		vals = append(vals, sumF)
	}
	vals = append(vals, *maxf, *mins, int64(len(distinctS)))
	return vals
}

func ptrMax(p *float64, v float64) *float64 {
	if p == nil || v > *p {
		return &v
	}
	return p
}

func fdiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

// oracleWindows lists the [start, end) windows containing ts.
func oracleWindows(w Window, ts int64) [][2]int64 {
	size, slide, off := w.Size.Microseconds(), w.Slide.Microseconds(), w.Offset.Microseconds()
	if w.Kind == Tumbling {
		slide = size
	}
	var out [][2]int64
	for k := fdiv(ts-off-size, slide); k <= fdiv(ts-off, slide)+1; k++ {
		s := off + k*slide
		if s <= ts && ts < s+size {
			out = append(out, [2]int64{s, s + size})
		}
	}
	return out
}

type oracleGroup struct {
	start, end int64
	key        string
	evs        []ev
}

// oracle runs the batch computation and returns, per mode:
// Append: the groups closed by the final watermark; Update, Complete: every
// group's final value. touched lists, per micro-batch, the groups that got
// a contribution (Update's expected emission sets; windowed, not session).
func oracle(cfg Config, km keyMode, batches [][][]ev) (want map[string]orow, touched []map[string]bool) {
	dropping := cfg.Window.Kind != NoWindow && cfg.Watermark && cfg.Mode != Complete
	hasWM, wm := false, int64(0)
	hasMax, maxTs := false, int64(0)
	delay := cfg.Delay.Microseconds()
	groups := map[string]*oracleGroup{}
	sessions := map[string][]*oracleGroup{} // Session: open sessions per key
	var closed []*oracleGroup
	for _, batch := range batches {
		touch := map[string]bool{}
		for _, call := range batch {
			for _, e := range call {
				if !e.tsNull && (!hasMax || e.ts > maxTs) {
					hasMax, maxTs = true, e.ts
				}
				key := keyString(km, e)
				switch cfg.Window.Kind {
				case NoWindow:
					g := groups[key]
					if g == nil {
						g = &oracleGroup{key: key}
						groups[key] = g
					}
					g.evs = append(g.evs, e)
					touch[fmt.Sprintf("%d %d %s", 0, 0, key)] = true
				case Tumbling, Sliding:
					if e.tsNull {
						continue
					}
					for _, w := range oracleWindows(cfg.Window, e.ts) {
						if dropping && hasWM && w[1] <= wm {
							continue
						}
						id := fmt.Sprintf("%d %d %s", w[0], w[1], key)
						g := groups[id]
						if g == nil {
							g = &oracleGroup{start: w[0], end: w[1], key: key}
							groups[id] = g
						}
						g.evs = append(g.evs, e)
						touch[id] = true
					}
				case Session:
					if e.tsNull {
						continue
					}
					gap := cfg.Window.Gap.Microseconds()
					if dropping && hasWM && e.ts+gap <= wm {
						continue
					}
					ss := append(sessions[key], &oracleGroup{start: e.ts, end: e.ts + gap, key: key, evs: []ev{e}})
					sort.Slice(ss, func(i, j int) bool { return ss[i].start < ss[j].start })
					var merged []*oracleGroup
					for _, s := range ss {
						if n := len(merged); n > 0 && s.start <= merged[n-1].end {
							merged[n-1].end = max(merged[n-1].end, s.end)
							merged[n-1].evs = append(merged[n-1].evs, s.evs...)
							continue
						}
						merged = append(merged, s)
					}
					sessions[key] = merged
				}
			}
		}
		touched = append(touched, touch)
		if cfg.Watermark && hasMax && (!hasWM || maxTs-delay > wm) {
			hasWM, wm = true, maxTs-delay
		}
		if cfg.Window.Kind == Session && dropping && hasWM {
			for key, ss := range sessions {
				var open []*oracleGroup
				for _, s := range ss {
					if s.end <= wm {
						closed = append(closed, s)
					} else {
						open = append(open, s)
					}
				}
				sessions[key] = open
			}
		}
	}
	var all []*oracleGroup
	if cfg.Window.Kind == Session {
		all = closed
		for _, ss := range sessions {
			all = append(all, ss...)
		}
	} else {
		for _, g := range groups {
			all = append(all, g)
		}
	}
	want = map[string]orow{}
	for _, g := range all {
		if cfg.Mode == Append && g.end > wm {
			continue
		}
		r := orow{start: g.start, end: g.end, key: g.key, vals: oracleAgg(g.evs)}
		want[r.group()] = r
	}
	return want, touched
}

// runStream feeds batches to a new Aggregator and returns each Flush's
// rows. If restoreAfter ≥ 0, the state is checkpointed after that many
// micro-batches and restored into a fresh Aggregator, which continues.
func runStream(t testing.TB, cfg Config, km keyMode, batches [][][]ev, restoreAfter int) ([][]orow, []string, *Aggregator) {
	t.Helper()
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	a, err := New(cfg, mem)
	if err != nil {
		t.Fatal(err)
	}
	var out [][]orow
	var text []string
	for i, batch := range batches {
		if i == restoreAfter {
			ck, err := a.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			if a, err = New(cfg, mem); err != nil {
				t.Fatal(err)
			}
			if err := a.UnmarshalBinary(ck); err != nil {
				t.Fatal(err)
			}
			again, _ := a.MarshalBinary()
			if string(again) != string(ck) {
				t.Fatal("checkpoint of a restored aggregator differs")
			}
		}
		for _, call := range batch {
			addEvents(t, a, mem, km, call)
		}
		rec, err := a.Flush()
		if err != nil {
			t.Fatal(err)
		}
		rows := decodeRows(t, rec, km, cfg.Window.Kind != NoWindow)
		text = append(text, render(rec)...)
		text = append(text, "--")
		rec.Release()
		for j := 1; j < len(rows); j++ { // documented order: start, end, key (ties impossible)
			p, q := rows[j-1], rows[j]
			if p.start > q.start || p.start == q.start && p.end > q.end {
				t.Fatalf("flush %d: rows out of order: %v then %v", i, p, q)
			}
		}
		out = append(out, rows)
	}
	return out, text, a
}

func sameVals(a, b []any) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		fa, okA := a[i].(float64)
		fb, okB := b[i].(float64)
		if okA && okB {
			if math.Abs(fa-fb) > 1e-9*math.Max(1, math.Abs(fb)) {
				return false
			}
			continue
		}
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

type oracleCase struct {
	name   string
	window Window
}

var oracleWindowsCases = []oracleCase{
	{"tumbling", Window{Kind: Tumbling, Size: sec(10)}},
	{"tumbling-offset", Window{Kind: Tumbling, Size: sec(7), Offset: -sec(2)}},
	{"sliding", Window{Kind: Sliding, Size: sec(10), Slide: sec(2)}},
	{"sliding-uneven", Window{Kind: Sliding, Size: sec(10), Slide: sec(3), Offset: sec(1)}},
	{"session", Window{Kind: Session, Gap: sec(4)}},
	{"none", Window{}},
}

func TestOracle(t *testing.T) {
	seeds := 6
	if testing.Short() {
		seeds = 2
	}
	for _, wc := range oracleWindowsCases {
		for _, mode := range []Mode{Append, Update, Complete} {
			if wc.window.Kind == NoWindow && mode == Append {
				continue
			}
			for seed := 1; seed <= seeds; seed++ {
				name := fmt.Sprintf("%s/%d/seed%d", wc.name, mode, seed)
				t.Run(name, func(t *testing.T) {
					rng := rand.New(rand.NewSource(int64(seed)))
					km := keyMode(seed % 3)
					cfg := Config{
						Keys:      oracleKeys(km),
						Aggs:      oracleAggs,
						Window:    wc.window,
						Watermark: seed%4 != 0 || mode == Append,
						Mode:      mode,
					}
					if cfg.Watermark {
						cfg.Delay = []time.Duration{0, sec(3), sec(7), 1500 * time.Millisecond}[rng.Intn(4)]
					}
					batches := genStream(rng, 1500+rng.Intn(1500))
					got, _, a := runStream(t, cfg, km, batches, -1)
					want, touched := oracle(cfg, km, batches)
					checkOracle(t, cfg, got, want, touched)
					if cfg.Mode == Append && a.Stats().DroppedLate == 0 {
						t.Errorf("no late rows: the stream does not exercise lateness")
					}
				})
			}
		}
	}
}

func checkOracle(t *testing.T, cfg Config, got [][]orow, want map[string]orow, touched []map[string]bool) {
	t.Helper()
	final := map[string]orow{}
	switch cfg.Mode {
	case Append:
		for _, rows := range got {
			for _, r := range rows {
				if _, dup := final[r.group()]; dup {
					t.Fatalf("group %s emitted twice", r.group())
				}
				final[r.group()] = r
			}
		}
	case Update:
		for i, rows := range got {
			for _, r := range rows {
				final[r.group()] = r
			}
			if cfg.Window.Kind == Session {
				continue // sessions merged away leave their last update behind, as in Spark
			}
			emitted := map[string]bool{}
			for _, r := range rows {
				emitted[r.group()] = true
			}
			if !maps_equal(emitted, touched[i]) {
				t.Fatalf("flush %d emitted %d groups, %d changed", i, len(emitted), len(touched[i]))
			}
		}
		if cfg.Window.Kind == Session {
			// Every group the oracle has must be the last update of that group.
			for id, w := range want {
				g, ok := final[id]
				if !ok || !sameVals(g.vals, w.vals) {
					t.Fatalf("session %s: got %v, want %v", id, g.vals, w.vals)
				}
			}
			return
		}
	case Complete:
		if len(got) > 0 {
			for _, r := range got[len(got)-1] {
				final[r.group()] = r
			}
		}
	}
	if len(final) != len(want) {
		t.Errorf("%d groups, want %d", len(final), len(want))
	}
	n := 0
	for id, w := range want {
		g, ok := final[id]
		if !ok {
			t.Errorf("missing group %s %v", id, w.vals)
		} else if !sameVals(g.vals, w.vals) {
			t.Errorf("group %s:\n got %v\nwant %v", id, g.vals, w.vals)
		}
		if n++; t.Failed() && n > 5 {
			t.FailNow()
		}
	}
	for id := range final {
		if _, ok := want[id]; !ok {
			t.Errorf("unexpected group %s", id)
		}
	}
	if len(want) == 0 {
		t.Errorf("empty expectation: the stream does not exercise this case")
	}
}

func maps_equal(a, b map[string]bool) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if !b[k] {
			return false
		}
	}
	return true
}

func TestCheckpointRestore(t *testing.T) {
	for _, wc := range oracleWindowsCases {
		for _, mode := range []Mode{Append, Update, Complete} {
			if wc.window.Kind == NoWindow && mode == Append {
				continue
			}
			for seed := 1; seed <= 3; seed++ {
				t.Run(fmt.Sprintf("%s/%d/seed%d", wc.name, mode, seed), func(t *testing.T) {
					rng := rand.New(rand.NewSource(int64(100 + seed)))
					km := keyMode(seed % 3)
					cfg := Config{Keys: oracleKeys(km), Aggs: oracleAggs, Window: wc.window, Watermark: true, Delay: sec(2), Mode: mode}
					batches := genStream(rng, 800+rng.Intn(800))
					split := rng.Intn(len(batches) + 1)
					_, want, a1 := runStream(t, cfg, km, batches, -1)
					_, got, a2 := runStream(t, cfg, km, batches, split)
					if strings.Join(got, "\n") != strings.Join(want, "\n") {
						t.Fatalf("restored after batch %d: output differs", split)
					}
					c1, _ := a1.MarshalBinary()
					c2, _ := a2.MarshalBinary()
					if string(c1) != string(c2) || a1.Stats() != a2.Stats() {
						t.Fatalf("final state differs: %+v vs %+v", a1.Stats(), a2.Stats())
					}
				})
			}
		}
	}
}
