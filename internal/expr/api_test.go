package expr

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/sluice-dev/sluice/internal/sql"
)

func TestScopeConcat(t *testing.T) {
	s := testScope()
	if len(s.Columns) != 13 {
		t.Fatalf("%d columns", len(s.Columns))
	}
	c := s.Columns[11]
	if c.Qualifier != "c" || c.Name != "customer_id" || c.Index != 11 {
		t.Errorf("right side column: %+v", c)
	}
	var nilScope *Scope
	if got := nilScope.Concat(NewScope(cSchema, "c")); got.Columns[0].Index != 0 {
		t.Errorf("nil.Concat shifted: %+v", got.Columns[0])
	}
}

func TestColumnsAndDeterministic(t *testing.T) {
	s := testScope()
	cases := map[string]struct {
		expr string
		cols []int
		det  bool
	}{
		"one":      {"o.amount * 2", []int{1}, true},
		"several":  {"c.amount + o.amount > qty", []int{1, 4, 12}, true},
		"constant": {"1 + 2", nil, true},
		"now":      {"order_time < current_timestamp() - INTERVAL 1 HOUR", []int{3}, false},
		"rand":     {"rand() < 0.5", nil, false},
		"field":    {"value.nested.x", []int{5}, true},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			e := mustBind(t, tc.expr, s)
			if got := Columns(e); !slices.Equal(got, tc.cols) {
				t.Errorf("Columns = %v, want %v", got, tc.cols)
			}
			if got := Deterministic(e); got != tc.det {
				t.Errorf("Deterministic = %v", got)
			}
		})
	}
}

func TestHelpers(t *testing.T) {
	batch := testBatch(t)
	defer batch.Release()
	ctx := &Ctx{Now: testNow}
	eval := func(e Expr) string {
		a, err := e.Eval(ctx, batch)
		if err != nil {
			t.Fatal(err)
		}
		defer a.Release()
		var rows []string
		for i := range a.Len() {
			rows = append(rows, FormatValue(a, i))
		}
		return strings.Join(rows, " | ")
	}
	qty := ColumnAt(4, "qty", arrow.PrimitiveTypes.Int32)
	if !arrow.TypeEqual(qty.Type(), arrow.PrimitiveTypes.Int64) {
		t.Errorf("ColumnAt type %s", qty.Type())
	}
	if got := eval(qty); got != "3 | 0 | NULL" {
		t.Errorf("ColumnAt: %s", got)
	}
	for v, want := range map[any]string{
		nil:                    "NULL",
		true:                   "TRUE",
		int64(7):               "7",
		2.5:                    "2.5",
		"x":                    "'x'",
		testNow:                "TIMESTAMP '2024-05-06 07:08:09'",
		90 * time.Second:       "INTERVAL '1 minute 30 seconds'",
		"2024-01-01T00:00:00Z": "'2024-01-01T00:00:00Z'",
	} {
		if got := Literal(v).String(); got != want {
			t.Errorf("Literal(%v) = %s, want %s", v, got, want)
		}
	}
	c, err := CastTo(qty, arrow.BinaryTypes.String)
	if err != nil {
		t.Fatal(err)
	}
	if got := eval(c); got != "'3' | '0' | NULL" {
		t.Errorf("CastTo: %s", got)
	}
	ts, err := CastTo(Literal("2024-01-01 10:00"), TimestampType)
	if err != nil || ts.String() != "TIMESTAMP '2024-01-01 10:00:00'" {
		t.Errorf("CastTo constant: %v %v", ts, err)
	}
	if _, err := CastTo(ColumnAt(5, "value", valueType), arrow.PrimitiveTypes.Int64); err == nil {
		t.Error("CastTo struct → BIGINT: no error")
	}
}

func TestFilter(t *testing.T) {
	batch := testBatch(t)
	defer batch.Release()
	mem := memory.NewCheckedAllocator(memory.DefaultAllocator)
	defer mem.AssertSize(t, 0)
	for name, tc := range map[string]struct {
		pred string
		want int64
	}{
		"some":          {"order_id = 2", 1},
		"null is false": {"ok OR order_id IS NULL", 2},
		"all":           {"TRUE", 3},
		"none":          {"FALSE", 0},
		"null":          {"NULL", 0},
	} {
		t.Run(name, func(t *testing.T) {
			pred := mustBind(t, tc.pred, testScope())
			m, err := pred.Eval(&Ctx{Mem: mem}, batch)
			if err != nil {
				t.Fatal(err)
			}
			defer m.Release()
			out, err := Filter(mem, batch, m)
			if err != nil {
				t.Fatal(err)
			}
			defer out.Release()
			if out.NumRows() != tc.want {
				t.Fatalf("%d rows, want %d", out.NumRows(), tc.want)
			}
			for i, col := range out.Columns() {
				if col.Len() != int(tc.want) {
					t.Errorf("column %d: %d rows", i, col.Len())
				}
			}
		})
	}
	// Every column type, nested ones included, against the row kept.
	pred := mustBind(t, "order_id = 2", testScope())
	m, _ := pred.Eval(&Ctx{Mem: mem}, batch)
	defer m.Release()
	out, err := Filter(mem, batch, m)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Release()
	for i, col := range out.Columns() {
		if got, want := FormatValue(col, 0), FormatValue(batch.Column(i), 1); got != want {
			t.Errorf("column %d: %s, want %s", i, got, want)
		}
	}
	// A slice: offsets in the input.
	sl := batch.NewSlice(1, 3)
	defer sl.Release()
	bld := array.NewBooleanBuilder(mem)
	bld.AppendValues([]bool{false, true}, nil)
	mask := bld.NewArray()
	bld.Release()
	defer mask.Release()
	out2, err := Filter(mem, sl, mask)
	if err != nil {
		t.Fatal(err)
	}
	defer out2.Release()
	if out2.NumRows() != 1 || !out2.Column(0).IsNull(0) || FormatValue(out2.Column(11), 0) != "NULL" {
		t.Errorf("filtered slice: %v", out2)
	}
}

func TestIntervals(t *testing.T) {
	for s, want := range map[string]time.Duration{
		"5 minutes":         5 * time.Minute,
		"10 seconds":        10 * time.Second,
		"1 hour 30 minutes": 90 * time.Minute,
		"2 days":            48 * time.Hour,
		"INTERVAL 1 week":   7 * 24 * time.Hour,
		"1.5 hours":         90 * time.Minute,
		"250 ms":            250 * time.Millisecond,
		"1h30m":             90 * time.Minute,
	} {
		got, err := ParseInterval(s)
		if err != nil || got != want {
			t.Errorf("ParseInterval(%q) = %v, %v; want %v", s, got, err, want)
		}
	}
	for _, s := range []string{"", "5", "five minutes", "5 fortnights", "1 month"} {
		if _, err := ParseInterval(s); err == nil {
			t.Errorf("ParseInterval(%q): no error", s)
		}
	}
	for src, want := range map[string]string{
		"INTERVAL 10 MINUTES":        "10m0s",
		"INTERVAL '10' MINUTE":       "10m0s",
		"INTERVAL 1 HOUR 30 MINUTES": "1h30m0s",
		"INTERVAL '2 days'":          "48h0m0s",
		"INTERVAL -5 SECONDS":        "-5s",
		"INTERVAL 1 MONTH":           "error: line 1, column 1: month intervals are not supported in windows; use days",
		"INTERVAL 'soon'":            `error: line 1, column 10: invalid interval "soon": expected number-unit pairs such as '1 hour 30 minutes'`,
	} {
		pe, err := sql.ParseExpr(src)
		if err != nil {
			t.Fatal(err)
		}
		d, err := IntervalDuration(pe.(*sql.IntervalLit))
		got := d.String()
		if err != nil {
			got = "error: " + err.Error()
			var e *Error
			if !errors.As(err, &e) {
				t.Errorf("%s: error %T", src, err)
			}
		}
		if got != want {
			t.Errorf("IntervalDuration(%s) = %s, want %s", src, got, want)
		}
	}
}

func TestIsAggregate(t *testing.T) {
	for _, n := range []string{"count", "SUM", "approx_count_distinct", "collect_set", "any_value"} {
		if !IsAggregate(n) {
			t.Errorf("IsAggregate(%s) = false", n)
		}
	}
	for _, n := range []string{"lower", "coalesce", "window"} {
		if IsAggregate(n) {
			t.Errorf("IsAggregate(%s) = true", n)
		}
	}
}
