package expr

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/bitutil"
	"github.com/apache/arrow-go/v18/arrow/compute"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// node is what every Expr of this package implements besides Expr.
type node interface {
	Expr
	children() []Expr
}

// Columns returns the indexes of the input columns e reads, sorted and
// without duplicates. The caller owns the slice.
func Columns(e Expr) []int {
	var out []int
	walk(e, func(x Expr) {
		if c, ok := x.(*colExpr); ok {
			out = append(out, c.idx)
		}
	})
	slices.Sort(out)
	return slices.Compact(out)
}

// Deterministic reports whether e gives the same result for the same input
// whenever it is evaluated: false if it calls current_timestamp(), now(),
// current_date() or rand().
func Deterministic(e Expr) bool {
	det := true
	walk(e, func(x Expr) {
		if c, ok := x.(*callExpr); ok && c.volatile {
			det = false
		}
	})
	return det
}

func walk(e Expr, f func(Expr)) {
	f(e)
	if n, ok := e.(node); ok {
		for _, c := range n.children() {
			walk(c, f)
		}
	}
}

// ColumnAt returns an expression that reads column i of the input, named
// name (for String), of type t. Its Type is t widened as any column read
// is (int32 → int64, float32 → float64, timestamp[ms] → timestamp[us, UTC],
// large_string → string, ...).
func ColumnAt(i int, name string, t arrow.DataType) Expr {
	return &colExpr{idx: i, name: name, src: t, typ: widenType(t)}
}

// colExpr reads an input column, widening it to its canonical type.
type colExpr struct {
	idx  int
	name string // as printed: qualifier.name or name
	src  arrow.DataType
	typ  arrow.DataType
}

func (e *colExpr) Type() arrow.DataType { return e.typ }
func (e *colExpr) String() string       { return e.name }
func (e *colExpr) children() []Expr     { return nil }

func (e *colExpr) Eval(ctx *Ctx, in arrow.RecordBatch) (arrow.Array, error) {
	if e.idx < 0 || e.idx >= int(in.NumCols()) {
		return nil, fmt.Errorf("evaluating %s: the batch has %d columns, column %d is missing", e.name, in.NumCols(), e.idx)
	}
	a := in.Column(e.idx)
	if arrow.TypeEqual(a.DataType(), e.typ) {
		return retain(a), nil
	}
	if kindOf(a.DataType()) != kindOf(e.typ) && kindOf(a.DataType()) != kNull {
		return nil, fmt.Errorf("evaluating %s: column %d has type %s, the expression was bound for %s", e.name, e.idx, typeName(a.DataType()), typeName(e.src))
	}
	return castArray(ctx, a, e.typ, false)
}

// constExpr is a literal or a folded constant. val is nil (a null of typ),
// bool, int64 (BIGINT, TIMESTAMP micros, INTERVAL micros), float64,
// string, []byte, int32 (DATE days) or arrow.MonthDayNanoInterval.
type constExpr struct {
	typ arrow.DataType
	val any
}

func (e *constExpr) Type() arrow.DataType { return e.typ }
func (e *constExpr) children() []Expr     { return nil }
func (e *constExpr) String() string       { return formatScalar(e.typ, e.val, true) }

func (e *constExpr) Eval(ctx *Ctx, in arrow.RecordBatch) (arrow.Array, error) {
	return constArray(ctx.mem(), e.typ, e.val, int(in.NumRows())), nil
}

// constArray repeats a scalar n times.
func constArray(mem memory.Allocator, t arrow.DataType, v any, n int) arrow.Array {
	if v == nil {
		return nullArray(mem, t, n)
	}
	switch v := v.(type) {
	case bool:
		var b *memory.Buffer
		if v {
			b, _ = newOnes(mem, n)
		} else {
			b, _ = newBitmap(mem, n)
		}
		return makeArray(t, n, nil, b)
	case int64:
		b, vs := allocI64(mem, n)
		for i := range vs {
			vs[i] = v
		}
		return makeArray(t, n, nil, b)
	case float64:
		b, vs := allocF64(mem, n)
		for i := range vs {
			vs[i] = v
		}
		return makeArray(t, n, nil, b)
	case int32:
		b, vs := allocI32(mem, n)
		for i := range vs {
			vs[i] = v
		}
		return makeArray(t, n, nil, b)
	case string:
		return repeatBytes(mem, t, []byte(v), n)
	case []byte:
		return repeatBytes(mem, t, v, n)
	case arrow.MonthDayNanoInterval:
		bld := array.NewMonthDayNanoIntervalBuilder(mem)
		defer bld.Release()
		bld.Reserve(n)
		for range n {
			bld.Append(v)
		}
		return bld.NewArray()
	}
	panic(fmt.Sprintf("expr: constant of Go type %T", v))
}

func repeatBytes(mem memory.Allocator, t arrow.DataType, v []byte, n int) arrow.Array {
	offs, os := allocI32(mem, n+1)
	data := newBuf(mem, len(v)*n)
	db := data.Bytes()
	for i := range n {
		os[i] = int32(i * len(v))
		copy(db[i*len(v):], v)
	}
	os[n] = int32(n * len(v))
	return makeArray(t, n, nil, offs, data)
}

// Literal returns a constant expression for v: nil (a null of type VOID,
// typed by the context it is used in), bool, int64, int, float64, string,
// []byte or time.Time (a TIMESTAMP). Other Go types panic.
func Literal(v any) Expr {
	switch v := v.(type) {
	case nil:
		return &constExpr{typ: tNull}
	case bool:
		return &constExpr{typ: tBool, val: v}
	case int64:
		return &constExpr{typ: tInt, val: v}
	case int:
		return &constExpr{typ: tInt, val: int64(v)}
	case float64:
		return &constExpr{typ: tFloat, val: v}
	case string:
		return &constExpr{typ: tString, val: v}
	case []byte:
		return &constExpr{typ: tBinary, val: v}
	case time.Time:
		return &constExpr{typ: tTS, val: v.UnixMicro()}
	case time.Duration:
		return &constExpr{typ: tDur, val: v.Microseconds()}
	}
	panic(fmt.Sprintf("expr.Literal: unsupported Go type %T", v))
}

// fieldExpr reads a field of a struct; the result is null where the struct
// or the field is.
type fieldExpr struct {
	x    Expr
	i    int
	name string
	typ  arrow.DataType
}

func (e *fieldExpr) Type() arrow.DataType { return e.typ }
func (e *fieldExpr) children() []Expr     { return []Expr{e.x} }
func (e *fieldExpr) String() string       { return e.x.String() + "." + quoteIdent(e.name) }

func (e *fieldExpr) Eval(ctx *Ctx, in arrow.RecordBatch) (arrow.Array, error) {
	xa, err := e.x.Eval(ctx, in)
	if err != nil {
		return nil, err
	}
	defer xa.Release()
	if xa.DataType().ID() == arrow.NULL {
		return nullArray(ctx.mem(), e.typ, xa.Len()), nil
	}
	st := xa.(*array.Struct)
	f := st.Field(e.i)
	var out arrow.Array
	if st.NullN() == 0 {
		out = retain(f)
	} else {
		out = maskNulls(ctx.mem(), f, st)
	}
	if arrow.TypeEqual(out.DataType(), e.typ) {
		return out, nil
	}
	defer out.Release()
	return castArray(ctx, out, e.typ, false)
}

// maskNulls returns a with its rows also null where mask is null.
func maskNulls(mem memory.Allocator, a, mask arrow.Array) arrow.Array {
	d := a.Data()
	off, n := d.Offset(), d.Len()
	vb, vbs := newBitmap(mem, off+n)
	if bits, boff := validity(a); bits != nil {
		bitutil.CopyBitmap(bits, boff, n, vbs, off)
	} else {
		bitutil.SetBitsTo(vbs, int64(off), int64(n), true)
	}
	if bits, moff := validity(mask); bits != nil {
		bitutil.BitmapAnd(vbs, bits, int64(off), int64(moff), vbs, int64(off), int64(n))
	}
	bufs := slices.Clone(d.Buffers())
	if len(bufs) == 0 { // null type
		return retain(a)
	}
	bufs[0] = vb
	nd := array.NewData(d.DataType(), n, bufs, d.Children(), array.UnknownNullCount, off)
	vb.Release()
	out := array.MakeFromData(nd)
	nd.Release()
	return out
}

// indexExpr is arr[i] (0-based) or map[key].
type indexExpr struct {
	x, index Expr
	typ      arrow.DataType
	oneBased bool // element_at
}

func (e *indexExpr) Type() arrow.DataType { return e.typ }
func (e *indexExpr) children() []Expr     { return []Expr{e.x, e.index} }
func (e *indexExpr) String() string {
	if e.oneBased {
		return "element_at(" + e.x.String() + ", " + e.index.String() + ")"
	}
	return e.x.String() + "[" + e.index.String() + "]"
}

func (e *indexExpr) Eval(ctx *Ctx, in arrow.RecordBatch) (arrow.Array, error) {
	xa, err := e.x.Eval(ctx, in)
	if err != nil {
		return nil, err
	}
	defer xa.Release()
	ia, err := e.index.Eval(ctx, in)
	if err != nil {
		return nil, err
	}
	defer ia.Release()
	n := xa.Len()
	idx := make([]int32, n)
	var values arrow.Array
	switch x := xa.(type) {
	case *array.List:
		values = x.ListValues()
		ks := i64s(ia)
		for i := range n {
			idx[i] = -1
			if x.IsNull(i) || ia.IsNull(i) {
				continue
			}
			start, end := x.ValueOffsets(i)
			k := ks[i]
			if e.oneBased {
				if k > 0 {
					k--
				} else if k < 0 {
					k += end - start
				} else {
					continue
				}
			}
			if k >= 0 && k < end-start {
				idx[i] = int32(start + k)
			}
		}
	case *array.Map:
		values = x.Items()
		keys := x.Keys()
		for i := range n {
			idx[i] = -1
			if x.IsNull(i) || ia.IsNull(i) {
				continue
			}
			start, end := x.ValueOffsets(i)
			for j := start; j < end; j++ {
				if keys.IsValid(int(j)) && compareAt(keys, int(j), ia, i) == 0 {
					idx[i] = int32(j)
				}
			}
		}
	default:
		return nullArray(ctx.mem(), e.typ, n), nil
	}
	out, err := takeRows(ctx, values, idx)
	if err != nil {
		return nil, err
	}
	if arrow.TypeEqual(out.DataType(), e.typ) {
		return out, nil
	}
	defer out.Release()
	return castArray(ctx, out, e.typ, false)
}

// takeRows returns values[idx[i]] for each i, null where idx[i] < 0.
func takeRows(ctx *Ctx, values arrow.Array, idx []int32) (arrow.Array, error) {
	mem := ctx.mem()
	out, err := gather(mem, values, idx)
	if err != nil || out != nil {
		return out, err
	}
	// Types gather does not know: arrow/compute.
	n := len(idx)
	ib, is := allocI32(mem, n)
	vb, vbs := newOnes(mem, n)
	for i, j := range idx {
		if j < 0 {
			bitutil.ClearBit(vbs, i)
			j = 0
		}
		is[i] = j
	}
	indices := makeArray(arrow.PrimitiveTypes.Int32, n, vb, ib)
	defer indices.Release()
	if values.Len() == 0 {
		return nullArray(mem, values.DataType(), n), nil
	}
	c := compute.WithAllocator(context.Background(), mem)
	return compute.TakeArray(c, values, indices)
}

func joinExprs(es []Expr) string {
	var b strings.Builder
	for i, e := range es {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(e.String())
	}
	return b.String()
}
