package expr

import (
	"math"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/bitutil"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/sluice-dev/sluice/internal/sql"
)

// arithMode is what an arithExpr computes in.
type arithMode uint8

const (
	modeInt      arithMode = iota // BIGINT op BIGINT → BIGINT (+ - * %); wraps on overflow, x % 0 is null
	modeFloat                     // numbers → DOUBLE (+ - * / %); int operands are converted in the loop; x / 0 is null
	modeTSDur                     // TIMESTAMP ± INTERVAL, INTERVAL ± INTERVAL, TIMESTAMP - TIMESTAMP, DATE ± BIGINT (as int64/int32 adds)
	modeTSMonths                  // TIMESTAMP ± INTERVAL with months
)

// arithExpr is l op r for + - * / %.
type arithExpr struct {
	op   sql.BinaryOp
	l, r Expr
	mode arithMode
	typ  arrow.DataType
}

func (e *arithExpr) Type() arrow.DataType { return e.typ }
func (e *arithExpr) children() []Expr     { return []Expr{e.l, e.r} }
func (e *arithExpr) String() string {
	return "(" + e.l.String() + " " + e.op.String() + " " + e.r.String() + ")"
}

func (e *arithExpr) Eval(ctx *Ctx, in arrow.RecordBatch) (arrow.Array, error) {
	mem := ctx.mem()
	n := int(in.NumRows())
	la, err := e.l.Eval(ctx, in)
	if err != nil {
		return nil, err
	}
	defer la.Release()
	if c, ok := e.r.(*constExpr); ok && e.mode != modeTSMonths {
		if c.val == nil {
			return nullArray(mem, e.typ, n), nil
		}
		return e.evalConst(mem, n, la, c.val), nil
	}
	ra, err := e.r.Eval(ctx, in)
	if err != nil {
		return nil, err
	}
	defer ra.Release()
	if la.DataType().ID() == arrow.NULL || ra.DataType().ID() == arrow.NULL {
		return nullArray(mem, e.typ, n), nil
	}
	switch e.mode {
	case modeInt:
		db, out := allocI64(mem, n)
		xs, ys := i64s(la), i64s(ra)
		if e.op == sql.OpMod {
			vb, vbs := ownedValidity(mem, n, la, ra)
			for i, x := range xs {
				if y := ys[i]; y != 0 {
					out[i] = x % y
				} else {
					out[i] = 0
					bitutil.ClearBit(vbs, i)
				}
			}
			return makeArray(e.typ, n, vb, db), nil
		}
		arithSlices(e.op, xs, ys, out)
		return makeArray(e.typ, n, andValidity(mem, n, la, ra), db), nil
	case modeFloat:
		db, out := allocF64(mem, n)
		switch {
		case kindOf(la.DataType()) == kInt && kindOf(ra.DataType()) == kInt:
			floatSlices(e.op, i64s(la), i64s(ra), out)
		case kindOf(la.DataType()) == kInt:
			floatSlices(e.op, i64s(la), f64s(ra), out)
		case kindOf(ra.DataType()) == kInt:
			floatSlices(e.op, f64s(la), i64s(ra), out)
		default:
			floatSlices(e.op, f64s(la), f64s(ra), out)
		}
		if e.op == sql.OpDiv || e.op == sql.OpMod {
			vb, vbs := ownedValidity(mem, n, la, ra)
			if kindOf(ra.DataType()) == kInt {
				for i, y := range i64s(ra) {
					if y == 0 {
						bitutil.ClearBit(vbs, i)
					}
				}
			} else {
				for i, y := range f64s(ra) {
					if y == 0 {
						bitutil.ClearBit(vbs, i)
					}
				}
			}
			return makeArray(e.typ, n, vb, db), nil
		}
		return makeArray(e.typ, n, andValidity(mem, n, la, ra), db), nil
	case modeTSDur:
		if kindOf(e.typ) == kDate {
			db, out := allocI32(mem, n)
			xs, ys := i32s(la), i64s(ra)
			for i, x := range xs {
				if e.op == sql.OpSub {
					out[i] = x - int32(ys[i])
				} else {
					out[i] = x + int32(ys[i])
				}
			}
			return makeArray(e.typ, n, andValidity(mem, n, la, ra), db), nil
		}
		db, out := allocI64(mem, n)
		arithSlices(e.op, i64s(la), i64s(ra), out)
		return makeArray(e.typ, n, andValidity(mem, n, la, ra), db), nil
	case modeTSMonths:
		db, out := allocI64(mem, n)
		xs := i64s(la)
		ivs := ra.(*array.MonthDayNanoInterval)
		for i, x := range xs {
			out[i] = addInterval(x, ivs.Value(i), e.op == sql.OpSub)
		}
		return makeArray(e.typ, n, andValidity(mem, n, la, ra), db), nil
	}
	panic("unreachable")
}

// evalConst computes la op c for a non-null constant c.
func (e *arithExpr) evalConst(mem memory.Allocator, n int, la arrow.Array, c any) arrow.Array {
	if la.DataType().ID() == arrow.NULL {
		return nullArray(mem, e.typ, n)
	}
	switch e.mode {
	case modeInt:
		y := c.(int64)
		if (e.op == sql.OpMod) && y == 0 {
			return nullArray(mem, e.typ, n)
		}
		db, out := allocI64(mem, n)
		arithConst(e.op, i64s(la), y, out)
		return makeArray(e.typ, n, andValidity(mem, n, la), db)
	case modeFloat:
		var y float64
		switch c := c.(type) {
		case int64:
			y = float64(c)
		case float64:
			y = c
		}
		if (e.op == sql.OpDiv || e.op == sql.OpMod) && y == 0 {
			return nullArray(mem, e.typ, n)
		}
		db, out := allocF64(mem, n)
		if kindOf(la.DataType()) == kInt {
			floatConst(e.op, i64s(la), y, out)
		} else {
			floatConst(e.op, f64s(la), y, out)
		}
		return makeArray(e.typ, n, andValidity(mem, n, la), db)
	case modeTSDur:
		y := c.(int64)
		if kindOf(e.typ) == kDate {
			db, out := allocI32(mem, n)
			if e.op == sql.OpSub {
				y = -y
			}
			for i, x := range i32s(la) {
				out[i] = x + int32(y)
			}
			return makeArray(e.typ, n, andValidity(mem, n, la), db)
		}
		db, out := allocI64(mem, n)
		arithConst(e.op, i64s(la), y, out)
		return makeArray(e.typ, n, andValidity(mem, n, la), db)
	}
	panic("unreachable")
}

func arithConst(op sql.BinaryOp, xs []int64, c int64, out []int64) {
	out = out[:len(xs)]
	switch op {
	case sql.OpAdd:
		for i, x := range xs {
			out[i] = x + c
		}
	case sql.OpSub:
		for i, x := range xs {
			out[i] = x - c
		}
	case sql.OpMul:
		for i, x := range xs {
			out[i] = x * c
		}
	case sql.OpMod:
		if c == -1 {
			clear(out)
			return
		}
		for i, x := range xs {
			out[i] = x % c
		}
	}
}

func arithSlices(op sql.BinaryOp, xs, ys []int64, out []int64) {
	out, ys = out[:len(xs)], ys[:len(xs)]
	switch op {
	case sql.OpAdd:
		for i, x := range xs {
			out[i] = x + ys[i]
		}
	case sql.OpSub:
		for i, x := range xs {
			out[i] = x - ys[i]
		}
	case sql.OpMul:
		for i, x := range xs {
			out[i] = x * ys[i]
		}
	}
}

type number interface{ ~int64 | ~float64 }

func floatConst[T number](op sql.BinaryOp, xs []T, c float64, out []float64) {
	out = out[:len(xs)]
	switch op {
	case sql.OpAdd:
		for i, x := range xs {
			out[i] = float64(x) + c
		}
	case sql.OpSub:
		for i, x := range xs {
			out[i] = float64(x) - c
		}
	case sql.OpMul:
		for i, x := range xs {
			out[i] = float64(x) * c
		}
	case sql.OpDiv:
		for i, x := range xs {
			out[i] = float64(x) / c
		}
	case sql.OpMod:
		for i, x := range xs {
			out[i] = math.Mod(float64(x), c)
		}
	}
}

func floatSlices[A, B number](op sql.BinaryOp, xs []A, ys []B, out []float64) {
	out, ys = out[:len(xs)], ys[:len(xs)]
	switch op {
	case sql.OpAdd:
		for i, x := range xs {
			out[i] = float64(x) + float64(ys[i])
		}
	case sql.OpSub:
		for i, x := range xs {
			out[i] = float64(x) - float64(ys[i])
		}
	case sql.OpMul:
		for i, x := range xs {
			out[i] = float64(x) * float64(ys[i])
		}
	case sql.OpDiv:
		for i, x := range xs {
			if y := float64(ys[i]); y != 0 {
				out[i] = float64(x) / y
			} else {
				out[i] = 0
			}
		}
	case sql.OpMod:
		for i, x := range xs {
			if y := float64(ys[i]); y != 0 {
				out[i] = math.Mod(float64(x), y)
			} else {
				out[i] = 0
			}
		}
	}
}

// addInterval adds (or subtracts) a calendar interval to a timestamp in
// microseconds, in UTC: months first, then days, then the time part.
func addInterval(us int64, iv arrow.MonthDayNanoInterval, sub bool) int64 {
	m, d, ns := int(iv.Months), int(iv.Days), iv.Nanoseconds
	if sub {
		m, d, ns = -m, -d, -ns
	}
	t := time.UnixMicro(us).UTC().AddDate(0, m, d)
	return t.UnixMicro() + ns/1000
}

// negExpr is -x.
type negExpr struct{ x Expr }

func (e *negExpr) Type() arrow.DataType { return e.x.Type() }
func (e *negExpr) children() []Expr     { return []Expr{e.x} }
func (e *negExpr) String() string       { return "(- " + e.x.String() + ")" }

func (e *negExpr) Eval(ctx *Ctx, in arrow.RecordBatch) (arrow.Array, error) {
	mem := ctx.mem()
	xa, err := e.x.Eval(ctx, in)
	if err != nil {
		return nil, err
	}
	defer xa.Release()
	n := xa.Len()
	if xa.DataType().ID() == arrow.NULL {
		return retain(xa), nil
	}
	switch kindOf(xa.DataType()) {
	case kFloat:
		db, out := allocF64(mem, n)
		for i, x := range f64s(xa) {
			out[i] = -x
		}
		return makeArray(e.Type(), n, andValidity(mem, n, xa), db), nil
	case kMonths:
		ivs := xa.(*array.MonthDayNanoInterval)
		b := array.NewMonthDayNanoIntervalBuilder(mem)
		defer b.Release()
		for i := range n {
			v := ivs.Value(i)
			b.Append(arrow.MonthDayNanoInterval{Months: -v.Months, Days: -v.Days, Nanoseconds: -v.Nanoseconds})
		}
		out := b.NewArray()
		defer out.Release()
		return maskNulls(mem, out, xa), nil
	}
	db, out := allocI64(mem, n)
	for i, x := range i64s(xa) {
		out[i] = -x
	}
	return makeArray(e.Type(), n, andValidity(mem, n, xa), db), nil
}
