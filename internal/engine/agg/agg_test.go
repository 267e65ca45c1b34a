package agg

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

var (
	i64  = arrow.PrimitiveTypes.Int64
	i32  = arrow.PrimitiveTypes.Int32
	f64  = arrow.PrimitiveTypes.Float64
	str  = arrow.BinaryTypes.String
	boo  = arrow.FixedWidthTypes.Boolean
	d32  = arrow.FixedWidthTypes.Date32
	tsMS = &arrow.TimestampType{Unit: arrow.Millisecond}
	tsNS = &arrow.TimestampType{Unit: arrow.Nanosecond}
)

func auctionCfg() Config {
	return Config{
		Keys:      []arrow.Field{{Name: "auction", Type: i64}},
		Aggs:      []Spec{{Func: CountStar, Name: "n"}, {Func: Max, Type: i64, Name: "mx"}},
		Window:    Window{Kind: Tumbling, Size: sec(10)},
		Watermark: true,
		Delay:     sec(5),
		Mode:      Append,
	}
}

func TestValidate(t *testing.T) {
	base := auctionCfg
	tests := map[string]struct {
		edit func(*Config)
		want string // substring; "" means valid
	}{
		"valid":                     {func(c *Config) {}, ""},
		"zero mode is append":       {func(c *Config) { c.Mode = 0 }, ""},
		"append without watermark":  {func(c *Config) { c.Watermark, c.Delay = false, 0 }, "Append output mode not supported when there are streaming aggregations on streaming DataFrames/DataSets without watermark"},
		"append without window":     {func(c *Config) { c.Window = Window{} }, "Append output mode not supported"},
		"update without watermark":  {func(c *Config) { c.Watermark, c.Delay, c.Mode = false, 0, Update }, ""},
		"complete without window":   {func(c *Config) { c.Window, c.Mode = Window{}, Complete }, ""},
		"sum of string":             {func(c *Config) { c.Aggs[1] = Spec{Func: Sum, Type: str, Name: "s"} }, "requires numeric"},
		"avg of bool":               {func(c *Config) { c.Aggs[1] = Spec{Func: Avg, Type: boo, Name: "s"} }, "requires numeric"},
		"min of string":             {func(c *Config) { c.Aggs[1] = Spec{Func: Min, Type: str, Name: "s"} }, ""},
		"unsupported agg type":      {func(c *Config) { c.Aggs[1].Type = arrow.BinaryTypes.Binary }, "unsupported type binary"},
		"nil agg type":              {func(c *Config) { c.Aggs[1].Type = nil }, "unsupported type"},
		"unknown func":              {func(c *Config) { c.Aggs[1].Func = 99 }, "unknown function"},
		"no agg name":               {func(c *Config) { c.Aggs[0].Name = "" }, "has no name"},
		"unsupported key type":      {func(c *Config) { c.Keys[0].Type = arrow.ListOf(i64) }, "unsupported type"},
		"zero size":                 {func(c *Config) { c.Window.Size = 0 }, "must be greater than 0"},
		"slide > size":              {func(c *Config) { c.Window = Window{Kind: Sliding, Size: sec(5), Slide: sec(10)} }, "slide duration (10s) must be less than or equal to the window duration (5s)"},
		"sliding zero slide":        {func(c *Config) { c.Window = Window{Kind: Sliding, Size: sec(5)} }, "slide duration (0s) must be greater than 0"},
		"tumbling with other slide": {func(c *Config) { c.Window.Slide = sec(5) }, "use Sliding"},
		"offset too big":            {func(c *Config) { c.Window.Offset = sec(10) }, "offset"},
		"negative offset ok":        {func(c *Config) { c.Window.Offset = -sec(3) }, ""},
		"zero gap":                  {func(c *Config) { c.Window = Window{Kind: Session} }, "gap (0s) must be greater than 0"},
		"session with size":         {func(c *Config) { c.Window = Window{Kind: Session, Gap: sec(1), Size: sec(1)} }, "not for session"},
		"sub-microsecond":           {func(c *Config) { c.Window.Size = sec(10) + 1 }, "whole number of microseconds"},
		"negative delay":            {func(c *Config) { c.Delay = -1 * time.Second }, "should not be negative"},
		"too many windows":          {func(c *Config) { c.Window = Window{Kind: Sliding, Size: time.Hour, Slide: time.Millisecond} }, "at most"},
		"unknown mode":              {func(c *Config) { c.Mode = 9 }, "unknown output mode"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			c := base()
			tc.edit(&c)
			_, err := New(c, nil)
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) || !errors.Is(err, ErrConfig) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestTumblingAppend(t *testing.T) {
	h := newHarness(t, auctionCfg())
	m := h.mem
	batch := func(keys []any, ts []any, prices []any) {
		h.add([]arrow.Array{col(t, m, i64, keys...)}, col(t, m, tsSec, ts...), []arrow.Array{nil, col(t, m, i64, prices...)}, nil)
	}
	batch([]any{1, 2, 1}, []any{1, 12, 3}, []any{10, 20, 30})
	eq(t, h.flush(), nil) // watermark 7: [0,10) still open
	if got := h.a.Stats().Watermark; !got.Equal(time.Unix(7, 0)) {
		t.Fatalf("watermark %v", got)
	}
	batch([]any{1, 1, 2}, []any{2, 16, 25}, []any{5, 7, 8})
	eq(t, h.flush(), []string{ // watermark 20
		"window=[0,10) auction=1 n=3 mx=30",
		"window=[10,20) auction=1 n=1 mx=7",
		"window=[10,20) auction=2 n=1 mx=20",
	})
	batch([]any{1}, []any{15}, []any{100}) // [10,20) closed: late
	eq(t, h.flush(), nil)
	if s := h.a.Stats(); s.DroppedLate != 1 || s.StateRows != 1 {
		t.Fatalf("stats %+v", s)
	}
	batch([]any{3}, []any{100}, []any{1})
	eq(t, h.flush(), []string{"window=[20,30) auction=2 n=1 mx=8"})
	if s := h.a.Stats(); s.StateRows != 1 || s.StateBytes <= 0 {
		t.Fatalf("stats %+v", s)
	}
}

func TestFunctionsInt(t *testing.T) {
	cfg := Config{
		Keys: []arrow.Field{{Name: "k", Type: str}},
		Aggs: []Spec{
			{Func: Count, Type: i64, Name: "cnt"}, {Func: CountStar, Name: "star"},
			{Func: CountDistinct, Type: i64, Name: "cd"}, {Func: Sum, Type: i64, Name: "sum"},
			{Func: Avg, Type: i64, Name: "avg"}, {Func: Min, Type: i64, Name: "min"},
			{Func: Max, Type: i64, Name: "max"}, {Func: First, Type: i64, Name: "first"},
			{Func: Last, Type: i64, Name: "last"},
		},
		Mode: Complete,
	}
	h := newHarness(t, cfg)
	m := h.mem
	add := func(keys, xs []any) {
		args := make([]arrow.Array, len(cfg.Aggs))
		for i, s := range cfg.Aggs {
			if s.Func != CountStar {
				args[i] = col(t, m, i64, xs...)
			}
		}
		h.add([]arrow.Array{col(t, m, str, keys...)}, nil, args, nil)
	}
	add([]any{"a", "a", "a", "b", "b", nil}, []any{1, nil, 3, nil, nil, 1})
	add([]any{"a", "b"}, []any{1, nil})
	eq(t, h.flush(), []string{
		"k=null cnt=1 star=1 cd=1 sum=1 avg=1 min=1 max=1 first=1 last=1",
		"k=a cnt=3 star=4 cd=2 sum=5 avg=1.6666666666666667 min=1 max=3 first=1 last=1",
		"k=b cnt=0 star=3 cd=0 sum=null avg=null min=null max=null first=null last=null",
	})
	// first keeps a leading null (Spark's first without ignoreNulls); last takes a trailing one.
	add([]any{"c", "c", "a"}, []any{nil, 7, nil})
	got := h.flush()
	eq(t, got[1:], []string{
		"k=a cnt=3 star=5 cd=2 sum=5 avg=1.6666666666666667 min=1 max=3 first=1 last=null",
		"k=b cnt=0 star=3 cd=0 sum=null avg=null min=null max=null first=null last=null",
		"k=c cnt=1 star=2 cd=1 sum=7 avg=7 min=7 max=7 first=null last=7",
	})
}

func TestFunctionsByType(t *testing.T) {
	nan := math.NaN()
	tests := map[string]struct {
		typ  arrow.DataType
		vals []any
		want string // min max first last cd [sum]
	}{
		"float64":        {f64, []any{2.5, nil, -1.0, nan, 2.5}, "min=-1 max=NaN first=2.5 last=2.5 cd=3 sum=NaN avg=NaN"},
		"float64 no nan": {f64, []any{2.5, math.Copysign(0, -1), 0.0}, "min=-0 max=2.5 first=2.5 last=0 cd=2 sum=2.5 avg=0.8333333333333334"},
		"int32":          {i32, []any{5, -7, nil, 5}, "min=-7 max=5 first=5 last=5 cd=2 sum=3 avg=1"},
		"string":         {str, []any{"b", "", nil, "ab", "b"}, "min= max=b first=b last=b cd=3"},
		"bool":           {boo, []any{true, nil, false}, "min=false max=true first=true last=false cd=2"},
		"ts":             {tsMS, []any{3000, 1000, nil}, "min=1970-01-01T00:00:01 max=1970-01-01T00:00:03 first=1970-01-01T00:00:03 last=null cd=2"},
		"date32":         {d32, []any{nil, 10, 3}, "min=1970-01-04 max=1970-01-11 first=null last=1970-01-04 cd=2"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			aggs := []Spec{{Func: Min, Type: tc.typ, Name: "min"}, {Func: Max, Type: tc.typ, Name: "max"},
				{Func: First, Type: tc.typ, Name: "first"}, {Func: Last, Type: tc.typ, Name: "last"},
				{Func: CountDistinct, Type: tc.typ, Name: "cd"}}
			if isNumeric(tc.typ) {
				aggs = append(aggs, Spec{Func: Sum, Type: tc.typ, Name: "sum"}, Spec{Func: Avg, Type: tc.typ, Name: "avg"})
			}
			h := newHarness(t, Config{Aggs: aggs, Mode: Update})
			args := make([]arrow.Array, len(aggs))
			for i := range args {
				args[i] = col(t, h.mem, tc.typ, tc.vals...)
			}
			h.add(nil, nil, args, nil)
			eq(t, h.flush(), []string{tc.want})
			// The output keeps the input type (sum: int64 for integers).
			if got := h.a.OutputSchema().Field(0).Type; !arrow.TypeEqual(got, tc.typ) {
				t.Fatalf("min type %s", got)
			}
		})
	}
}

func TestFilter(t *testing.T) {
	cfg := Config{
		Keys: []arrow.Field{{Name: "k", Type: i64}},
		Aggs: []Spec{{Func: CountStar, Name: "all"}, {Func: CountStar, Name: "big"},
			{Func: Sum, Type: i64, Name: "sum_big"}, {Func: First, Type: i64, Name: "first_big"}},
		Mode: Update,
	}
	h := newHarness(t, cfg)
	m := h.mem
	x := []any{1, 50, 200, 300, nil}
	big := []any{false, nil, true, true, true} // null filter: row ignored
	h.add([]arrow.Array{col(t, m, i64, 1, 1, 1, 1, 2)}, nil,
		[]arrow.Array{nil, nil, col(t, m, i64, x...), col(t, m, i64, x...)},
		[]arrow.Array{nil, col(t, m, boo, big...), col(t, m, boo, big...), col(t, m, boo, big...)})
	eq(t, h.flush(), []string{
		"k=1 all=4 big=2 sum_big=500 first_big=200",
		"k=2 all=1 big=1 sum_big=null first_big=null",
	})
}

func TestSliding(t *testing.T) {
	cfg := Config{
		Keys:      []arrow.Field{{Name: "k", Type: i64}},
		Aggs:      []Spec{{Func: CountStar, Name: "n"}},
		Window:    Window{Kind: Sliding, Size: sec(10), Slide: sec(5)},
		Watermark: true,
		Mode:      Append,
	}
	h := newHarness(t, cfg)
	m := h.mem
	batch := func(ts ...any) {
		keys := make([]any, len(ts))
		for i := range keys {
			keys[i] = 1
		}
		h.add([]arrow.Array{col(t, m, i64, keys...)}, col(t, m, tsSec, ts...), []arrow.Array{nil}, nil)
	}
	batch(7, 12)
	eq(t, h.flush(), []string{"window=[0,10) k=1 n=1"}) // watermark 12
	batch(3, 11, 9)                                     // 3: every window closed (late); 9: [0,10) closed, [5,15) open
	eq(t, h.flush(), nil)
	if s := h.a.Stats(); s.DroppedLate != 1 {
		t.Fatalf("dropped %d", s.DroppedLate)
	}
	batch(30)
	eq(t, h.flush(), []string{
		"window=[5,15) k=1 n=4",
		"window=[10,20) k=1 n=2",
	})
}

func TestSlidingUneven(t *testing.T) {
	cfg := Config{
		Aggs:   []Spec{{Func: CountStar, Name: "n"}},
		Window: Window{Kind: Sliding, Size: sec(10), Slide: sec(4), Offset: sec(1)},
		Mode:   Complete,
	}
	h := newHarness(t, cfg)
	h.add(nil, col(t, h.mem, tsSec, 10, 12, -1), []arrow.Array{nil}, nil)
	// starts are 1 + 4k: 10 is in [1,11) [5,15) [9,19); 12 in [5,15) [9,19); -1 in [-7,3) [-3,7).
	eq(t, h.flush(), []string{
		"window=[-7,3) n=1",
		"window=[-3,7) n=1",
		"window=[1,11) n=1",
		"window=[5,15) n=2",
		"window=[9,19) n=2",
	})
}

func TestTimeUnitsAndOffset(t *testing.T) {
	for name, tc := range map[string]struct {
		typ  arrow.DataType
		ts   int
		want string
	}{
		"seconds":           {tsSec, -1, "window=[-7,3) n=1"},
		"millis":            {tsMS, 3000, "window=[3,13) n=1"},
		"nanos floor":       {tsNS, -1, "window=[-7,3) n=1"},
		"micros tz ignored": {&arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "Europe/Paris"}, 13_000_000, "window=[13,23) n=1"},
	} {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t, Config{
				Aggs:   []Spec{{Func: CountStar, Name: "n"}},
				Window: Window{Kind: Tumbling, Size: sec(10), Offset: sec(3)},
				Mode:   Complete,
			})
			h.add(nil, col(t, h.mem, tc.typ, tc.ts), []arrow.Array{nil}, nil)
			eq(t, h.flush(), []string{tc.want})
		})
	}
}

func TestSessionMerge(t *testing.T) {
	cfg := Config{
		Keys:   []arrow.Field{{Name: "k", Type: i64}},
		Aggs:   []Spec{{Func: CountStar, Name: "n"}, {Func: First, Type: i64, Name: "first"}, {Func: Last, Type: i64, Name: "last"}, {Func: Min, Type: i64, Name: "min"}},
		Window: Window{Kind: Session, Gap: sec(5)},
		Mode:   Complete,
	}
	h := newHarness(t, cfg)
	m := h.mem
	row := func(k int, ts ...any) {
		keys := make([]any, len(ts))
		for i := range keys {
			keys[i] = k
		}
		h.add([]arrow.Array{col(t, m, i64, keys...)}, col(t, m, tsSec, ts...), []arrow.Array{nil, col(t, m, i64, ts...), col(t, m, i64, ts...), col(t, m, i64, ts...)}, nil)
	}
	row(1, 0, 20, 10)
	row(2, 3)
	eq(t, h.flush(), []string{
		"window=[0,5) k=1 n=1 first=0 last=0 min=0",
		"window=[3,8) k=2 n=1 first=3 last=3 min=3",
		"window=[10,15) k=1 n=1 first=10 last=10 min=10",
		"window=[20,25) k=1 n=1 first=20 last=20 min=20",
	})
	row(1, 5) // touches [0,5) and [10,15): Spark merges when start ≤ end
	eq(t, h.flush(), []string{
		"window=[0,15) k=1 n=3 first=0 last=5 min=0",
		"window=[3,8) k=2 n=1 first=3 last=3 min=3",
		"window=[20,25) k=1 n=1 first=20 last=20 min=20",
	})
	row(1, 17, 15) // 17 joins [20,25); 15 bridges [0,15) and [17,25)
	eq(t, h.flush(), []string{
		"window=[0,25) k=1 n=6 first=0 last=15 min=0",
		"window=[3,8) k=2 n=1 first=3 last=3 min=3",
	})
	if s := h.a.Stats(); s.StateRows != 2 {
		t.Fatalf("state rows %d", s.StateRows)
	}
}

func TestSessionWatermark(t *testing.T) {
	cfg := Config{
		Keys:      []arrow.Field{{Name: "k", Type: i64}},
		Aggs:      []Spec{{Func: CountStar, Name: "n"}},
		Window:    Window{Kind: Session, Gap: sec(10)},
		Watermark: true,
		Mode:      Append,
	}
	h := newHarness(t, cfg)
	m := h.mem
	add := func(keys, ts []any) {
		h.add([]arrow.Array{col(t, m, i64, keys...)}, col(t, m, tsSec, ts...), []arrow.Array{nil}, nil)
	}
	add([]any{1, 1}, []any{0, 3})
	eq(t, h.flush(), nil) // watermark 3
	add([]any{2}, []any{13})
	eq(t, h.flush(), []string{"window=[0,13) k=1 n=2"}) // watermark 13
	// 2 ends at 12 ≤ 13: late. 5 opens [5,15): it would have extended the
	// emitted [0,13), which is not reopened (as in Spark).
	add([]any{1, 1}, []any{2, 5})
	eq(t, h.flush(), nil)
	add([]any{3}, []any{40})
	eq(t, h.flush(), []string{"window=[5,15) k=1 n=1", "window=[13,23) k=2 n=1"})
	if s := h.a.Stats(); s.DroppedLate != 1 || s.StateRows != 1 {
		t.Fatalf("stats %+v", s)
	}
}

func TestUpdateMode(t *testing.T) {
	cfg := auctionCfg()
	cfg.Mode, cfg.Delay = Update, 0
	h := newHarness(t, cfg)
	m := h.mem
	batch := func(keys, ts []any) {
		h.add([]arrow.Array{col(t, m, i64, keys...)}, col(t, m, tsSec, ts...), []arrow.Array{nil, col(t, m, i64, keys...)}, nil)
	}
	batch([]any{1, 2}, []any{1, 2})
	eq(t, h.flush(), []string{"window=[0,10) auction=1 n=1 mx=1", "window=[0,10) auction=2 n=1 mx=2"})
	batch([]any{1}, []any{3})
	eq(t, h.flush(), []string{"window=[0,10) auction=1 n=2 mx=1"})
	eq(t, h.flush(), nil) // nothing changed
	batch([]any{3, 1}, []any{15, 4})
	eq(t, h.flush(), []string{"window=[0,10) auction=1 n=3 mx=1", "window=[10,20) auction=3 n=1 mx=3"})
	if s := h.a.Stats(); s.StateRows != 1 { // [0,10) removed at watermark 15
		t.Fatalf("state rows %d", s.StateRows)
	}
	batch([]any{1}, []any{5})
	eq(t, h.flush(), nil)
	if s := h.a.Stats(); s.DroppedLate != 1 {
		t.Fatalf("dropped %d", s.DroppedLate)
	}
}

func TestCompleteModeKeepsLateRows(t *testing.T) {
	cfg := auctionCfg()
	cfg.Mode, cfg.Delay = Complete, 0
	h := newHarness(t, cfg)
	m := h.mem
	batch := func(keys, ts []any) {
		h.add([]arrow.Array{col(t, m, i64, keys...)}, col(t, m, tsSec, ts...), []arrow.Array{nil, col(t, m, i64, keys...)}, nil)
	}
	batch([]any{1}, []any{1})
	eq(t, h.flush(), []string{"window=[0,10) auction=1 n=1 mx=1"})
	batch([]any{2}, []any{100})
	batch([]any{1}, []any{2})
	eq(t, h.flush(), []string{"window=[0,10) auction=1 n=2 mx=1", "window=[100,110) auction=2 n=1 mx=2"})
	batch([]any{1}, []any{3}) // behind the watermark (100), still aggregated
	eq(t, h.flush(), []string{"window=[0,10) auction=1 n=3 mx=1", "window=[100,110) auction=2 n=1 mx=2"})
	if s := h.a.Stats(); s.DroppedLate != 0 || !s.Watermark.Equal(time.Unix(100, 0)) {
		t.Fatalf("stats %+v", s)
	}
}

func TestWatermarkMonotonic(t *testing.T) {
	cfg := auctionCfg()
	h := newHarness(t, cfg)
	m := h.mem
	if !h.a.Stats().Watermark.IsZero() {
		t.Fatal("watermark before the first batch")
	}
	for _, c := range []struct{ ts, wm int }{{100, 95}, {50, 95}, {96, 95}, {101, 96}} {
		h.add([]arrow.Array{col(t, m, i64, 1)}, col(t, m, tsSec, c.ts), []arrow.Array{nil, col(t, m, i64, 1)}, nil)
		h.flush()
		if got := h.a.Stats().Watermark; !got.Equal(time.Unix(int64(c.wm), 0)) {
			t.Fatalf("after %d: watermark %v, want %d", c.ts, got, c.wm)
		}
	}
	// A micro-batch without rows keeps the watermark.
	h.flush()
	if got := h.a.Stats().Watermark; !got.Equal(time.Unix(96, 0)) {
		t.Fatalf("watermark %v", got)
	}
}

func TestNullEventTime(t *testing.T) {
	h := newHarness(t, auctionCfg())
	m := h.mem
	h.add([]arrow.Array{col(t, m, i64, 1, 1)}, col(t, m, tsSec, nil, 30), []arrow.Array{nil, col(t, m, i64, 1, 1)}, nil)
	h.flush()
	if s := h.a.Stats(); s.DroppedNullTime != 1 || s.DroppedLate != 0 || s.StateRows != 1 {
		t.Fatalf("stats %+v", s)
	}
	// Without a window, null event times are kept and the watermark does nothing to state.
	h2 := newHarness(t, Config{Keys: []arrow.Field{{Name: "k", Type: i64}}, Aggs: []Spec{{Func: CountStar, Name: "n"}}, Watermark: true, Mode: Update})
	h2.add([]arrow.Array{col(t, h2.mem, i64, 1, 1)}, col(t, h2.mem, tsSec, nil, 30), []arrow.Array{nil}, nil)
	eq(t, h2.flush(), []string{"k=1 n=2"})
	h2.add([]arrow.Array{col(t, h2.mem, i64, 1)}, col(t, h2.mem, tsSec, 1), []arrow.Array{nil}, nil)
	eq(t, h2.flush(), []string{"k=1 n=3"})
	if s := h2.a.Stats(); s.DroppedNullTime != 0 || !s.Watermark.Equal(time.Unix(30, 0)) {
		t.Fatalf("stats %+v", s)
	}
}

func TestKeyOrderAndTypes(t *testing.T) {
	t.Run("composite", func(t *testing.T) {
		h := newHarness(t, Config{
			Keys: []arrow.Field{{Name: "s", Type: str}, {Name: "i", Type: i64}},
			Aggs: []Spec{{Func: CountStar, Name: "n"}},
			Mode: Complete,
		})
		m := h.mem
		h.add([]arrow.Array{col(t, m, str, nil, "a", "a", "", "a\x00", "b", "a"), col(t, m, i64, 1, nil, 2, 3, 1, -5, 2)}, nil, []arrow.Array{nil}, nil)
		eq(t, h.flush(), []string{
			"s=null i=1 n=1", "s= i=3 n=1", "s=a i=null n=1", "s=a i=2 n=2", "s=a\x00 i=1 n=1", "s=b i=-5 n=1",
		})
	})
	t.Run("float normalised", func(t *testing.T) {
		h := newHarness(t, Config{Keys: []arrow.Field{{Name: "f", Type: f64}}, Aggs: []Spec{{Func: CountStar, Name: "n"}}, Mode: Complete})
		nan := math.NaN()
		h.add([]arrow.Array{col(t, h.mem, f64, nan, math.Copysign(0, -1), 0.0, -1.0, math.Inf(1), nil, math.Float64frombits(0x7ff8000000000001))}, nil, []arrow.Array{nil}, nil)
		eq(t, h.flush(), []string{"f=null n=1", "f=-1 n=1", "f=0 n=2", "f=+Inf n=1", "f=NaN n=2"})
	})
	for name, tc := range map[string]struct {
		typ  arrow.DataType
		vals []any
		want []string
	}{
		"bool":   {boo, []any{true, nil, false, true}, []string{"k=null n=1", "k=false n=1", "k=true n=2"}},
		"int32":  {i32, []any{5, -1, 5}, []string{"k=-1 n=1", "k=5 n=2"}},
		"date32": {d32, []any{1, 0}, []string{"k=1970-01-01 n=1", "k=1970-01-02 n=1"}},
		"ts":     {tsSec, []any{2, nil}, []string{"k=null n=1", "k=1970-01-01T00:00:02 n=1"}},
		"string": {str, []any{"b", nil, "a", "b"}, []string{"k=null n=1", "k=a n=1", "k=b n=2"}},
	} {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t, Config{Keys: []arrow.Field{{Name: "k", Type: tc.typ}}, Aggs: []Spec{{Func: CountStar, Name: "n"}}, Mode: Complete})
			h.add([]arrow.Array{col(t, h.mem, tc.typ, tc.vals...)}, nil, []arrow.Array{nil}, nil)
			eq(t, h.flush(), tc.want)
		})
	}
}

func TestAddErrors(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	a, err := New(auctionCfg(), mem)
	if err != nil {
		t.Fatal(err)
	}
	k := col(t, mem, i64, 1, 2)
	k3 := col(t, mem, i64, 1, 2, 3)
	ks := col(t, mem, str, "a", "b")
	ts := col(t, mem, tsSec, 1, 2)
	p := col(t, mem, i64, 1, 2)
	defer release(k, k3, ks, ts, p)
	for name, add := range map[string]func() error{
		"no keys":         func() error { return a.Add(nil, ts, []arrow.Array{nil, p}, nil) },
		"key type":        func() error { return a.Add([]arrow.Array{ks}, ts, []arrow.Array{nil, p}, nil) },
		"length":          func() error { return a.Add([]arrow.Array{k3}, ts, []arrow.Array{nil, p}, nil) },
		"nil event time":  func() error { return a.Add([]arrow.Array{k}, nil, []arrow.Array{nil, p}, nil) },
		"event time type": func() error { return a.Add([]arrow.Array{k}, p, []arrow.Array{nil, p}, nil) },
		"args count":      func() error { return a.Add([]arrow.Array{k}, ts, []arrow.Array{p}, nil) },
		"nil arg":         func() error { return a.Add([]arrow.Array{k}, ts, []arrow.Array{nil, nil}, nil) },
		"filter type":     func() error { return a.Add([]arrow.Array{k}, ts, []arrow.Array{nil, p}, []arrow.Array{p, nil}) },
		"filter count":    func() error { return a.Add([]arrow.Array{k}, ts, []arrow.Array{nil, p}, []arrow.Array{nil}) },
	} {
		if err := add(); !errors.Is(err, ErrInput) {
			t.Errorf("%s: err = %v, want ErrInput", name, err)
		}
	}
	if s := a.Stats(); s.StateRows != 0 || s.DroppedLate != 0 {
		t.Fatalf("state changed by failed Adds: %+v", s)
	}
}
