package expr

import (
	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/bitutil"

	"github.com/sluice-dev/sluice/internal/sql"
)

// logicExpr is l AND r or l OR r with SQL's three-valued logic: FALSE AND
// NULL is FALSE, TRUE OR NULL is TRUE, other combinations with NULL are
// NULL. Bitmaps are combined a byte at a time.
type logicExpr struct {
	and  bool
	l, r Expr
}

func (e *logicExpr) Type() arrow.DataType { return tBool }
func (e *logicExpr) children() []Expr     { return []Expr{e.l, e.r} }
func (e *logicExpr) String() string {
	op := " OR "
	if e.and {
		op = " AND "
	}
	return "(" + e.l.String() + op + e.r.String() + ")"
}

func (e *logicExpr) Eval(ctx *Ctx, in arrow.RecordBatch) (arrow.Array, error) {
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
	nb := int(bitutil.BytesForBits(int64(n)))
	vb, out := newBitmap(mem, n)
	lv, lok := boolParts(la)
	rv, rok := boolParts(ra)
	if lok == nil && rok == nil {
		if e.and {
			for i := range nb {
				out[i] = lv[i] & rv[i]
			}
		} else {
			for i := range nb {
				out[i] = lv[i] | rv[i]
			}
		}
		return makeArray(tBool, n, nil, vb), nil
	}
	ob, okb := newBitmap(mem, n)
	for i := range nb {
		lk, rk := byte(0xff), byte(0xff)
		if lok != nil {
			lk = lok[i]
		}
		if rok != nil {
			rk = rok[i]
		}
		lt, lf := lk&lv[i], lk&^lv[i]
		rt, rf := rk&rv[i], rk&^rv[i]
		var t, f byte
		if e.and {
			t, f = lt&rt, lf|rf
		} else {
			t, f = lt|rt, lf&rf
		}
		out[i] = t
		okb[i] = t | f
	}
	return makeArray(tBool, n, ob, vb), nil
}

// boolParts returns the value bits (zeros for a NULL-typed array) and the
// validity (nil if no nulls) of a boolean array, both at offset 0.
func boolParts(a arrow.Array) (vals, valid []byte) {
	if a.DataType().ID() == arrow.NULL {
		z := allZero(a.Len())
		return z, z
	}
	return boolBits(a), validBits(a)
}

// notExpr is NOT x.
type notExpr struct{ x Expr }

func (e *notExpr) Type() arrow.DataType { return tBool }
func (e *notExpr) children() []Expr     { return []Expr{e.x} }
func (e *notExpr) String() string       { return "(NOT " + e.x.String() + ")" }

func (e *notExpr) Eval(ctx *Ctx, in arrow.RecordBatch) (arrow.Array, error) {
	mem := ctx.mem()
	xa, err := e.x.Eval(ctx, in)
	if err != nil {
		return nil, err
	}
	defer xa.Release()
	n := xa.Len()
	if xa.DataType().ID() == arrow.NULL {
		return nullArray(mem, tBool, n), nil
	}
	vb, out := newBitmap(mem, n)
	for i, b := range boolBits(xa)[:len(out)] {
		out[i] = ^b
	}
	return makeArray(tBool, n, andValidity(mem, n, xa), vb), nil
}

// isExpr is x IS [NOT] {NULL | TRUE | FALSE}; never null.
type isExpr struct {
	x    Expr
	what sql.IsWhat
	not  bool
}

func (e *isExpr) Type() arrow.DataType { return tBool }
func (e *isExpr) children() []Expr     { return []Expr{e.x} }
func (e *isExpr) String() string {
	s := "(" + e.x.String() + " IS "
	if e.not {
		s += "NOT "
	}
	return s + e.what.String() + ")"
}

func (e *isExpr) Eval(ctx *Ctx, in arrow.RecordBatch) (arrow.Array, error) {
	mem := ctx.mem()
	xa, err := e.x.Eval(ctx, in)
	if err != nil {
		return nil, err
	}
	defer xa.Release()
	n := xa.Len()
	vb, out := newBitmap(mem, n)
	valid := validBits(xa)
	var vals []byte
	if e.what != sql.IsNull && xa.DataType().ID() != arrow.NULL {
		vals = boolBits(xa)
	}
	for i := range out {
		ok := byte(0xff)
		if valid != nil {
			ok = valid[i]
		}
		var r byte
		switch e.what {
		case sql.IsNull:
			r = ^ok
		case sql.IsTrue:
			if vals != nil {
				r = ok & vals[i]
			}
		case sql.IsFalse:
			if vals != nil {
				r = ok &^ vals[i]
			}
		}
		if e.not {
			r = ^r
		}
		out[i] = r
	}
	return makeArray(tBool, n, nil, vb), nil
}

// inSetExpr is x IN (constants): a hash lookup per row. Following SQL, the
// result is NULL when x is NULL, or when x is not found and the list
// holds a NULL.
type inSetExpr struct {
	x       Expr
	list    []*constExpr
	hasNull bool
	ints    map[int64]struct{}
	floats  map[float64]struct{}
	strs    map[string]struct{}
	i32     map[int32]struct{}
	bools   [2]bool
}

func newInSet(x Expr, list []*constExpr) *inSetExpr {
	e := &inSetExpr{x: x, list: list}
	for _, c := range list {
		switch v := c.val.(type) {
		case nil:
			e.hasNull = true
		case int64:
			if e.ints == nil {
				e.ints = map[int64]struct{}{}
			}
			e.ints[v] = struct{}{}
		case float64:
			if e.floats == nil {
				e.floats = map[float64]struct{}{}
			}
			e.floats[v] = struct{}{}
		case string:
			if e.strs == nil {
				e.strs = map[string]struct{}{}
			}
			e.strs[v] = struct{}{}
		case []byte:
			if e.strs == nil {
				e.strs = map[string]struct{}{}
			}
			e.strs[string(v)] = struct{}{}
		case int32:
			if e.i32 == nil {
				e.i32 = map[int32]struct{}{}
			}
			e.i32[v] = struct{}{}
		case bool:
			e.bools[b2u(v)] = true
		}
	}
	return e
}

func (e *inSetExpr) Type() arrow.DataType { return tBool }
func (e *inSetExpr) children() []Expr {
	out := []Expr{e.x}
	for _, c := range e.list {
		out = append(out, c)
	}
	return out
}

func (e *inSetExpr) String() string {
	list := make([]Expr, len(e.list))
	for i, c := range e.list {
		list[i] = c
	}
	return "(" + e.x.String() + " IN (" + joinExprs(list) + "))"
}

func (e *inSetExpr) Eval(ctx *Ctx, in arrow.RecordBatch) (arrow.Array, error) {
	mem := ctx.mem()
	xa, err := e.x.Eval(ctx, in)
	if err != nil {
		return nil, err
	}
	defer xa.Release()
	n := xa.Len()
	if xa.DataType().ID() == arrow.NULL {
		return nullArray(mem, tBool, n), nil
	}
	vb, out := newBitmap(mem, n)
	switch x := xa.(type) {
	case *array.Int64, *array.Timestamp, *array.Duration:
		for i, v := range i64s(x) {
			_, ok := e.ints[v]
			out[i>>3] |= b2u(ok) << (i & 7)
		}
	case *array.Float64:
		for i, v := range f64s(x) {
			_, ok := e.floats[v]
			out[i>>3] |= b2u(ok) << (i & 7)
		}
	case *array.Date32:
		for i, v := range i32s(x) {
			_, ok := e.i32[v]
			out[i>>3] |= b2u(ok) << (i & 7)
		}
	case *array.String:
		for i := range n {
			_, ok := e.strs[x.Value(i)]
			out[i>>3] |= b2u(ok) << (i & 7)
		}
	case *array.Binary:
		for i := range n {
			_, ok := e.strs[string(x.Value(i))]
			out[i>>3] |= b2u(ok) << (i & 7)
		}
	case *array.Boolean:
		for i := range n {
			ok := e.bools[b2u(x.Value(i))]
			out[i>>3] |= b2u(ok) << (i & 7)
		}
	}
	if !e.hasNull {
		return makeArray(tBool, n, andValidity(mem, n, xa), vb), nil
	}
	// Not found and a NULL in the list: NULL.
	ob, okb := ownedValidity(mem, n, xa)
	for i := range okb {
		okb[i] &= out[i]
	}
	return makeArray(tBool, n, ob, vb), nil
}
