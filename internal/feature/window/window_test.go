package window

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/online"
)

func testDef(t *testing.T, windows ...string) *Def {
	t.Helper()
	d := &Def{Keys: []string{"user_id"}, TimeKey: "event_ts"}
	for i, w := range windows {
		for _, fn := range Functions {
			if fn == "count" && i > 0 {
				continue
			}
			d.Features = append(d.Features, FeatureDef{Name: fmt.Sprintf("%s_%d", fn, i), Function: fn, Window: w})
		}
	}
	d.Features = append(d.Features, FeatureDef{Name: "last_ever", Function: "last"})
	if err := d.init(); err != nil {
		t.Fatal(err)
	}
	return d
}

// oracle computes feature f at t by brute force over every event, from
// the documented definition: events in [ceil(t - w, precision), t].
func oracle(d *Def, evs []Event, key string, fi int, t int64, ttl time.Duration) (online.Value, bool) {
	f := d.Features[fi]
	var mine []Event
	newest := int64(math.MinInt64)
	for _, e := range evs {
		if e.Key[0].Str() == key && e.TS <= t {
			mine = append(mine, e)
			newest = max(newest, e.TS)
		}
	}
	if len(mine) == 0 || (ttl > 0 && t-newest > ttl.Microseconds()) {
		return online.Null(), false
	}
	lo := int64(math.MinInt64)
	if f.w > 0 {
		p := map[bool]int64{true: usSecond}[f.w <= usHour]
		switch {
		case f.w <= usHour:
			p = usSecond
		case f.w <= usDay:
			p = usMinute
		case f.w <= 60*usDay:
			p = usHour
		default:
			p = usDay
		}
		lo = t - f.w
		if r := ((lo % p) + p) % p; r != 0 {
			lo += p - r
		}
	}
	var n int64
	var sum, fsum float64
	var isum int64
	var hasSum, intSum bool
	var best online.Value
	var bestTS int64
	distinct := map[string]bool{}
	for _, e := range mine {
		in := e.Inputs[fi]
		if e.TS < lo || in.IsNull() {
			continue
		}
		n++
		switch f.Function {
		case "sum":
			hasSum = true
			if in.Kind() == online.KindInt64 {
				intSum = true
				isum += in.Int64()
			} else {
				fsum += in.Float64()
			}
		case "avg":
			sum += toFloat(in)
		case "min":
			if best.IsNull() || compareValues(in, best) < 0 {
				best = in
			}
		case "max":
			if best.IsNull() || compareValues(in, best) > 0 {
				best = in
			}
		case "count_distinct":
			distinct[in.String()] = true
		case "last":
			if best.IsNull() || e.TS > bestTS || (e.TS == bestTS && compareValues(in, best) > 0) {
				best, bestTS = in, e.TS
			}
		}
	}
	switch f.Function {
	case "count":
		return online.Int64(n), true
	case "sum":
		if !hasSum {
			return online.Null(), true
		}
		if intSum {
			return online.Int64(isum), true
		}
		return online.Float64(fsum), true
	case "avg":
		if n == 0 {
			return online.Null(), true
		}
		return online.Float64(sum / float64(n)), true
	case "count_distinct":
		return online.Int64(int64(len(distinct))), true
	}
	return best, true
}

func near(a, b online.Value) bool {
	if a.Kind() == online.KindFloat64 && b.Kind() == online.KindFloat64 {
		x, y := a.Float64(), b.Float64()
		return math.Abs(x-y) <= 1e-9*math.Max(1, math.Max(math.Abs(x), math.Abs(y)))
	}
	return a.Equal(b)
}

func randomEvents(rng *rand.Rand, d *Def, n int, base, span int64) []Event {
	evs := make([]Event, n)
	for i := range evs {
		e := &evs[i]
		e.Key = online.Key{online.String(fmt.Sprintf("u%d", rng.IntN(4)))}
		// Bursts within a second and spread over the span, with ties.
		e.TS = base + rng.Int64N(span)
		if rng.IntN(4) == 0 && i > 0 {
			e.TS = evs[i-1].TS
		}
		e.Pos = Pos{Seq: int64(i / 7), File: int64(i % 7 / 3), Row: int64(i % 7 % 3)}
		e.Inputs = make([]online.Value, len(d.Features))
		for fi, f := range d.Features {
			if rng.IntN(6) == 0 {
				continue // null input: does not count
			}
			switch {
			case f.Function == "count":
				e.Inputs[fi] = online.Int64(1)
			case f.Function == "count_distinct" || f.Function == "last" || f.Function == "max":
				e.Inputs[fi] = online.String(fmt.Sprintf("s%d", rng.IntN(5)))
			case f.Function == "sum" && strings.HasSuffix(f.Name, "_0"):
				e.Inputs[fi] = online.Int64(rng.Int64N(100))
			default:
				e.Inputs[fi] = online.Float64(float64(rng.IntN(10000)) / 7)
			}
		}
	}
	return evs
}

// memBlobs is a BlobStore in a map, without expiry, so that the test can
// read tiles at any time of its choosing; the stores' own conformance
// suite covers UpdateBlobs and GetBlobs, and TestFoldEmbedded the real
// store at the wall clock.
type memBlobs map[string][]byte

func (m memBlobs) UpdateBlobs(_ context.Context, _ string, ups []online.BlobUpdate) error {
	for _, u := range ups {
		nv, err := u.Apply(m[string(u.Key)])
		if err != nil {
			return err
		}
		m[string(u.Key)] = nv
	}
	return nil
}

func (m memBlobs) GetBlobs(_ context.Context, _ string, keys [][]byte, _ time.Time) ([][]byte, error) {
	out := make([][]byte, len(keys))
	for i, k := range keys {
		out[i] = m[string(k)]
	}
	return out, nil
}

var testKeys = []online.Key{{online.String("u0")}, {online.String("u1")}, {online.String("u2")}, {online.String("u3")}, {online.String("nobody")}}

func allFeatures(d *Def) []int {
	all := make([]int, len(d.Features))
	for i := range all {
		all[i] = i
	}
	return all
}

func checkAgainstOracle(t *testing.T, d *Def, evs []Event, res []online.Result, at int64, ttl time.Duration, what string) {
	t.Helper()
	for ki, k := range testKeys {
		key := k[0].Str()
		for fi, f := range d.Features {
			want, found := oracle(d, evs, key, fi, at, ttl)
			got := res[ki].Values[fi]
			if !found {
				if !got.IsNull() {
					t.Fatalf("%s: %s %s at %v: %v (%v), want null", what, key, f.Name, time.UnixMicro(at), got, res[ki].Statuses[fi])
				}
				continue
			}
			if !near(got, want) {
				lo := Start(at, f.w)
				for _, e := range evs {
					if e.Key[0].Str() == key && e.TS >= lo && e.TS <= at && !e.Inputs[fi].IsNull() {
						t.Logf("event %v %+v %v", time.UnixMicro(e.TS), e.Pos, e.Inputs[fi])
					}
				}
				t.Fatalf("%s: %s %s (window %s) at %v: %v, want %v", what, key, f.Name, f.Window, time.UnixMicro(at), got, want)
			}
		}
	}
}

// TestTilesMatchOracle folds random events (mostly in time order, some
// late, some ties) into tiles in random batches, replaying some batches as
// a sync restarted after a crash would, and reads after each batch at a
// time no earlier than any event folded, as online reads happen; every
// feature must equal the brute-force oracle over the events folded so
// far. Then the offline path (Values) must equal the oracle over all
// events at any time.
func TestTilesMatchOracle(t *testing.T) {
	ctx := context.Background()
	for seed := range uint64(4) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 7))
			d := testDef(t, "10s", "5m", "1h", "3h", "2d", "90d")
			store := memBlobs{}
			span := (3 * 24 * time.Hour).Microseconds()
			base := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC).UnixMicro()
			evs := randomEvents(rng, d, 500, base, span)
			// Arrival order: by time, except that one event in eight is
			// late by up to two hours.
			arrival := func(e Event) int64 { return e.TS }
			late := map[int]int64{}
			for i := range evs {
				if rng.IntN(8) == 0 {
					late[i] = rng.Int64N(2 * usHour)
				}
			}
			idx := make([]int, len(evs))
			for i := range idx {
				idx[i] = i
			}
			slices.SortStableFunc(idx, func(a, b int) int {
				return int((arrival(evs[a]) + late[a]) - (arrival(evs[b]) + late[b]))
			})
			ordered := make([]Event, len(evs))
			for i, j := range idx {
				ordered[i] = evs[j]
				ordered[i].Pos = Pos{Seq: int64(i / 7), File: int64(i % 7 / 3), Row: int64(i % 7 % 3)}
			}
			evs = ordered
			ttl := time.Duration(0)
			if seed%2 == 1 {
				ttl = 12 * time.Hour
			}
			at := base
			for i := 0; i < len(evs); {
				j := min(len(evs), i+1+rng.IntN(60))
				if err := d.Fold(ctx, store, "t", ttl, evs[i:j], time.UnixMicro(base)); err != nil {
					t.Fatal(err)
				}
				if rng.IntN(3) == 0 {
					back := max(0, i-rng.IntN(50))
					if err := d.Fold(ctx, store, "t", ttl, evs[back:j], time.UnixMicro(base)); err != nil {
						t.Fatal(err)
					}
				}
				for _, e := range evs[i:j] {
					at = max(at, e.TS)
				}
				at += rng.Int64N(3 * usMinute)
				if rng.IntN(10) == 0 {
					at += rng.Int64N(20 * usHour)
				}
				res, err := d.Read(ctx, store, "t", ttl, testKeys, allFeatures(d), time.UnixMicro(at))
				if err != nil {
					t.Fatal(err)
				}
				checkAgainstOracle(t, d, evs[:j], res, at, ttl, "online")
				i = j
			}
			byKey := map[string][]Event{}
			for _, e := range evs {
				k := e.Key[0].Str()
				byKey[k] = append(byKey[k], e)
			}
			for k := range byKey {
				slices.SortStableFunc(byKey[k], func(a, b Event) int { return int(a.TS - b.TS) })
			}
			for range 80 {
				at := base + rng.Int64N(span+usDay) - usHour
				if rng.IntN(3) == 0 {
					at = evs[rng.IntN(len(evs))].TS
				}
				res := make([]online.Result, len(testKeys))
				for ki, k := range testKeys {
					res[ki].Values = make([]online.Value, len(d.Features))
					d.Values(byKey[k[0].Str()], at, ttl, res[ki].Values)
				}
				checkAgainstOracle(t, d, evs, res, at, ttl, "offline")
			}
		})
	}
}

// TestFoldEmbedded folds into the real embedded store and reads at the
// wall clock: the expiry that the store applies keeps what reads need.
func TestFoldEmbedded(t *testing.T) {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(1, 2))
	d := testDef(t, "10s", "1h", "2d")
	store, err := online.OpenEmbedded(t.TempDir(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	now := time.Now()
	span := (3 * 24 * time.Hour).Microseconds()
	base := now.UnixMicro() - span
	evs := randomEvents(rng, d, 500, base, span)
	for i := range evs {
		evs[i].Pos = Pos{Seq: int64(i)}
	}
	for i := 0; i < len(evs); i += 50 {
		if err := d.Fold(ctx, store, "t", 0, evs[i:min(i+50, len(evs))], now); err != nil {
			t.Fatal(err)
		}
	}
	at := time.Now()
	res, err := d.Read(ctx, store, "t", 0, testKeys, allFeatures(d), at)
	if err != nil {
		t.Fatal(err)
	}
	checkAgainstOracle(t, d, evs, res, at.UnixMicro(), 0, "embedded")
	if res[4].Found || res[4].Statuses[0] != online.NotFound {
		t.Fatalf("unknown entity: %+v", res[4])
	}
}

func TestDecomposeBounded(t *testing.T) {
	now := time.Date(2026, 11, 23, 13, 47, 31, 123456000, time.UTC).UnixMicro()
	for _, w := range []time.Duration{time.Second, 10 * time.Second, time.Hour, 24 * time.Hour, 30 * 24 * time.Hour, 365 * 24 * time.Hour} {
		wu := w.Microseconds()
		tiles := decompose(nil, Start(now, wu), now, precision(wu), top(wu))
		if len(tiles) > 420 {
			t.Errorf("window %v: %d tiles", w, len(tiles))
		}
		// Contiguous, aligned, covering [start, now].
		cur := Start(now, wu)
		for _, tr := range tiles {
			if tr.start != cur || tr.start%tileSize[tr.level] != 0 {
				t.Fatalf("window %v: tile %+v at %d", w, tr, cur)
			}
			cur += tileSize[tr.level]
		}
		if cur <= now {
			t.Fatalf("window %v: tiles end at %d before %d", w, cur, now)
		}
		if got := now - Start(now, wu); got > wu || got <= wu-int64(Precision(w)/time.Microsecond) {
			t.Errorf("window %v: covers %v", w, time.Duration(got)*time.Microsecond)
		}
	}
}
