package expr

import (
	"bytes"
	"cmp"
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/sluice-dev/sluice/internal/sql"
)

// cmpExpr is l op r for op one of = != < <= > >=, both sides of one
// canonical type. A constant, if any, is on the right (the binder flips
// the operator).
type cmpExpr struct {
	op   sql.BinaryOp
	l, r Expr
}

func (e *cmpExpr) Type() arrow.DataType { return tBool }
func (e *cmpExpr) children() []Expr     { return []Expr{e.l, e.r} }
func (e *cmpExpr) String() string {
	return "(" + e.l.String() + " " + e.op.String() + " " + e.r.String() + ")"
}

func (e *cmpExpr) Eval(ctx *Ctx, in arrow.RecordBatch) (arrow.Array, error) {
	mem := ctx.mem()
	n := int(in.NumRows())
	la, err := e.l.Eval(ctx, in)
	if err != nil {
		return nil, err
	}
	defer la.Release()
	if c, ok := e.r.(*constExpr); ok {
		if c.val == nil {
			return nullArray(mem, tBool, n), nil
		}
		vals, err := compareConst(mem, e.op, la, c.val)
		if err != nil {
			return nil, err
		}
		return makeArray(tBool, n, andValidity(mem, n, la), vals), nil
	}
	ra, err := e.r.Eval(ctx, in)
	if err != nil {
		return nil, err
	}
	defer ra.Release()
	vals, err := compareArrays(mem, e.op, la, ra)
	if err != nil {
		return nil, err
	}
	return makeArray(tBool, n, andValidity(mem, n, la, ra), vals), nil
}

// flipOp is the operator with its operands swapped: a < b is b > a.
func flipOp(op sql.BinaryOp) sql.BinaryOp {
	switch op {
	case sql.OpLt:
		return sql.OpGt
	case sql.OpLe:
		return sql.OpGe
	case sql.OpGt:
		return sql.OpLt
	case sql.OpGe:
		return sql.OpLe
	}
	return op
}

// compareConst returns the value bits of a op c (garbage under nulls).
func compareConst(mem memory.Allocator, op sql.BinaryOp, a arrow.Array, c any) (*memory.Buffer, error) {
	n := a.Len()
	buf, out := newBitmap(mem, n)
	switch c := c.(type) {
	case int64:
		cmpConst(op, i64s(a), c, out)
	case float64:
		cmpConst(op, f64s(a), c, out)
	case int32:
		cmpConst(op, i32s(a), c, out)
	case string:
		s := a.(*array.String)
		cmpEach(op, n, out, func(i int) int { return cmp.Compare(s.Value(i), c) })
	case []byte:
		s := a.(*array.Binary)
		cmpEach(op, n, out, func(i int) int { return bytes.Compare(s.Value(i), c) })
	case bool:
		s := a.(*array.Boolean)
		cmpEach(op, n, out, func(i int) int { return cmpBool(s.Value(i), c) })
	default:
		buf.Release()
		return nil, fmt.Errorf("comparing %s with a constant of Go type %T", typeName(a.DataType()), c)
	}
	return buf, nil
}

// compareArrays returns the value bits of a op b.
func compareArrays(mem memory.Allocator, op sql.BinaryOp, a, b arrow.Array) (*memory.Buffer, error) {
	n := a.Len()
	buf, out := newBitmap(mem, n)
	if a.DataType().ID() == arrow.NULL || b.DataType().ID() == arrow.NULL {
		return buf, nil
	}
	switch kindOf(a.DataType()) {
	case kInt, kTS, kDur:
		cmpSlices(op, i64s(a), i64s(b), out)
	case kFloat:
		cmpSlices(op, f64s(a), f64s(b), out)
	case kDate:
		cmpSlices(op, i32s(a), i32s(b), out)
	default:
		cmpEach(op, n, out, func(i int) int { return compareAt(a, i, b, i) })
	}
	return buf, nil
}

type ordered interface {
	~int64 | ~int32 | ~float64
}

func cmpConst[T ordered](op sql.BinaryOp, xs []T, c T, out []byte) {
	switch op {
	case sql.OpEq, sql.OpNullSafeEq:
		for i, x := range xs {
			out[i>>3] |= b2u(x == c) << (i & 7)
		}
	case sql.OpNe:
		for i, x := range xs {
			out[i>>3] |= b2u(x != c) << (i & 7)
		}
	case sql.OpLt:
		for i, x := range xs {
			out[i>>3] |= b2u(x < c) << (i & 7)
		}
	case sql.OpLe:
		for i, x := range xs {
			out[i>>3] |= b2u(x <= c) << (i & 7)
		}
	case sql.OpGt:
		for i, x := range xs {
			out[i>>3] |= b2u(x > c) << (i & 7)
		}
	case sql.OpGe:
		for i, x := range xs {
			out[i>>3] |= b2u(x >= c) << (i & 7)
		}
	}
}

func cmpSlices[T ordered](op sql.BinaryOp, xs, ys []T, out []byte) {
	ys = ys[:len(xs)]
	switch op {
	case sql.OpEq, sql.OpNullSafeEq:
		for i, x := range xs {
			out[i>>3] |= b2u(x == ys[i]) << (i & 7)
		}
	case sql.OpNe:
		for i, x := range xs {
			out[i>>3] |= b2u(x != ys[i]) << (i & 7)
		}
	case sql.OpLt:
		for i, x := range xs {
			out[i>>3] |= b2u(x < ys[i]) << (i & 7)
		}
	case sql.OpLe:
		for i, x := range xs {
			out[i>>3] |= b2u(x <= ys[i]) << (i & 7)
		}
	case sql.OpGt:
		for i, x := range xs {
			out[i>>3] |= b2u(x > ys[i]) << (i & 7)
		}
	case sql.OpGe:
		for i, x := range xs {
			out[i>>3] |= b2u(x >= ys[i]) << (i & 7)
		}
	}
}

func cmpEach(op sql.BinaryOp, n int, out []byte, f func(i int) int) {
	for i := range n {
		c := f(i)
		var r bool
		switch op {
		case sql.OpEq, sql.OpNullSafeEq:
			r = c == 0
		case sql.OpNe:
			r = c != 0
		case sql.OpLt:
			r = c < 0
		case sql.OpLe:
			r = c <= 0
		case sql.OpGt:
			r = c > 0
		case sql.OpGe:
			r = c >= 0
		}
		out[i>>3] |= b2u(r) << (i & 7)
	}
}

func cmpBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case !a:
		return -1
	}
	return 1
}

// compareAt compares a[i] with b[j], both non-null and of the same
// canonical type.
func compareAt(a arrow.Array, i int, b arrow.Array, j int) int {
	switch a := a.(type) {
	case *array.Int64:
		if b, ok := b.(*array.Int64); ok {
			return cmp.Compare(a.Value(i), b.Value(j))
		}
	case *array.Float64:
		if b, ok := b.(*array.Float64); ok {
			return cmp.Compare(a.Value(i), b.Value(j))
		}
	case *array.String:
		if b, ok := b.(*array.String); ok {
			return cmp.Compare(a.Value(i), b.Value(j))
		}
	case *array.Binary:
		if b, ok := b.(*array.Binary); ok {
			return bytes.Compare(a.Value(i), b.Value(j))
		}
	case *array.Boolean:
		if b, ok := b.(*array.Boolean); ok {
			return cmpBool(a.Value(i), b.Value(j))
		}
	case *array.Timestamp:
		if b, ok := b.(*array.Timestamp); ok {
			return cmp.Compare(a.Value(i), b.Value(j))
		}
	case *array.Date32:
		if b, ok := b.(*array.Date32); ok {
			return cmp.Compare(a.Value(i), b.Value(j))
		}
	case *array.Duration:
		if b, ok := b.(*array.Duration); ok {
			return cmp.Compare(a.Value(i), b.Value(j))
		}
	}
	return cmp.Compare(formatValue(a, i, true), formatValue(b, j, true))
}

// nullSafeEqExpr is l <=> r: true when both are null or equal, never null.
type nullSafeEqExpr struct {
	l, r Expr
}

func (e *nullSafeEqExpr) Type() arrow.DataType { return tBool }
func (e *nullSafeEqExpr) children() []Expr     { return []Expr{e.l, e.r} }
func (e *nullSafeEqExpr) String() string {
	return "(" + e.l.String() + " <=> " + e.r.String() + ")"
}

func (e *nullSafeEqExpr) Eval(ctx *Ctx, in arrow.RecordBatch) (arrow.Array, error) {
	mem := ctx.mem()
	n := int(in.NumRows())
	la, err := e.l.Eval(ctx, in)
	if err != nil {
		return nil, err
	}
	defer la.Release()
	ra, err := e.r.Eval(ctx, in)
	if err != nil {
		return nil, err
	}
	defer ra.Release()
	vals, err := compareArrays(mem, sql.OpEq, la, ra)
	if err != nil {
		return nil, err
	}
	vs := vals.Bytes()
	lv, rv := validBits(la), validBits(ra)
	if lv != nil || rv != nil {
		for i := range vs {
			l, r := byte(0xff), byte(0xff)
			if lv != nil {
				l = lv[i]
			}
			if rv != nil {
				r = rv[i]
			}
			vs[i] = vs[i]&l&r | ^l&^r
		}
	}
	return makeArray(tBool, n, nil, vals), nil
}
