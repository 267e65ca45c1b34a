package expr

import (
	"strings"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/bitutil"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// caseExpr is CASE WHEN c1 THEN r1 ... [ELSE e] END (a CASE with an
// operand is bound to this form). Every branch is evaluated over the whole
// batch (only if some row takes it) and the rows are then picked.
type caseExpr struct {
	conds   []Expr
	results []Expr
	els     Expr // nil: NULL
	typ     arrow.DataType
}

func (e *caseExpr) Type() arrow.DataType { return e.typ }
func (e *caseExpr) children() []Expr {
	out := append(append([]Expr{}, e.conds...), e.results...)
	if e.els != nil {
		out = append(out, e.els)
	}
	return out
}

func (e *caseExpr) String() string {
	var b strings.Builder
	b.WriteString("CASE")
	for i, c := range e.conds {
		b.WriteString(" WHEN " + c.String() + " THEN " + e.results[i].String())
	}
	if e.els != nil {
		b.WriteString(" ELSE " + e.els.String())
	}
	b.WriteString(" END")
	return b.String()
}

func (e *caseExpr) Eval(ctx *Ctx, in arrow.RecordBatch) (arrow.Array, error) {
	n := int(in.NumRows())
	choice := make([]int32, n)
	for i := range choice {
		choice[i] = -1
	}
	left := n
	for k, c := range e.conds {
		if left == 0 {
			break
		}
		ca, err := c.Eval(ctx, in)
		if err != nil {
			return nil, err
		}
		if ca.DataType().ID() != arrow.NULL {
			vals, valid := boolParts(ca)
			for i := range n {
				if choice[i] < 0 && bitutil.BitIsSet(vals, i) && (valid == nil || bitutil.BitIsSet(valid, i)) {
					choice[i] = int32(k)
					left--
				}
			}
		}
		ca.Release()
	}
	branches := append([]Expr{}, e.results...)
	if e.els != nil {
		for i := range choice {
			if choice[i] < 0 {
				choice[i] = int32(len(e.results))
			}
		}
		branches = append(branches, e.els)
	}
	return pickRows(ctx, in, e.typ, choice, branches)
}

// pickRows evaluates the branches some row chooses and returns, for each
// row i, row i of branches[choice[i]] (null where choice[i] < 0).
func pickRows(ctx *Ctx, in arrow.RecordBatch, typ arrow.DataType, choice []int32, branches []Expr) (arrow.Array, error) {
	used := make([]bool, len(branches))
	for _, c := range choice {
		if c >= 0 {
			used[c] = true
		}
	}
	arrs := make([]arrow.Array, len(branches))
	defer func() {
		for _, a := range arrs {
			if a != nil {
				a.Release()
			}
		}
	}()
	for k, b := range branches {
		if !used[k] {
			continue
		}
		// A branch used by every row is the result.
		a, err := b.Eval(ctx, in)
		if err != nil {
			return nil, err
		}
		arrs[k] = a
	}
	return selectRows(ctx, typ, choice, arrs)
}

// selectRows returns row i of arrs[choice[i]] for each i, null where
// choice[i] < 0. All arrays have len(choice) rows and type typ (or NULL).
func selectRows(ctx *Ctx, typ arrow.DataType, choice []int32, arrs []arrow.Array) (arrow.Array, error) {
	mem := ctx.mem()
	n := len(choice)
	if k := choice; n > 0 && k[0] >= 0 {
		same := true
		for _, c := range k {
			if c != k[0] {
				same = false
				break
			}
		}
		if same && arrow.TypeEqual(arrs[k[0]].DataType(), typ) {
			return retain(arrs[k[0]]), nil
		}
	}
	valids := make([][]byte, len(arrs))
	isNull := make([]bool, len(arrs))
	for k, a := range arrs {
		if a == nil || a.DataType().ID() == arrow.NULL {
			isNull[k] = true
			continue
		}
		valids[k] = validBits(a)
	}
	vb, vbs := newBitmap(mem, n)
	for i, c := range choice {
		if c >= 0 && !isNull[c] && (valids[c] == nil || bitutil.BitIsSet(valids[c], i)) {
			bitutil.SetBit(vbs, i)
		}
	}
	switch kindOf(typ) {
	case kInt, kFloat, kTS, kDur:
		db, out := allocI64(mem, n)
		vals := make([][]int64, len(arrs))
		for k, a := range arrs {
			if !isNull[k] {
				vals[k] = i64s(a)
			}
		}
		for i, c := range choice {
			if c >= 0 && !isNull[c] {
				out[i] = vals[c][i]
			} else {
				out[i] = 0
			}
		}
		return makeArray(typ, n, vb, db), nil
	case kDate:
		db, out := allocI32(mem, n)
		vals := make([][]int32, len(arrs))
		for k, a := range arrs {
			if !isNull[k] {
				vals[k] = i32s(a)
			}
		}
		for i, c := range choice {
			if c >= 0 && !isNull[c] {
				out[i] = vals[c][i]
			} else {
				out[i] = 0
			}
		}
		return makeArray(typ, n, vb, db), nil
	case kBool:
		db, out := newBitmap(mem, n)
		vals := make([][]byte, len(arrs))
		for k, a := range arrs {
			if !isNull[k] {
				vals[k] = boolBits(a)
			}
		}
		for i, c := range choice {
			if c >= 0 && !isNull[c] && bitutil.BitIsSet(vals[c], i) {
				bitutil.SetBit(out, i)
			}
		}
		return makeArray(typ, n, vb, db), nil
	case kString, kBinary:
		vb.Release()
		return selectBytes(mem, typ, choice, arrs, isNull, valids), nil
	}
	vb.Release()
	// Nested types: concatenate the branches and take.
	var parts []arrow.Array
	base := make([]int32, len(arrs))
	total := 0
	for k, a := range arrs {
		if isNull[k] {
			continue
		}
		base[k] = int32(total)
		total += a.Len()
		parts = append(parts, a)
	}
	if len(parts) == 0 {
		return nullArray(mem, typ, n), nil
	}
	all, err := array.Concatenate(parts, mem)
	if err != nil {
		return nil, err
	}
	defer all.Release()
	idx := make([]int32, n)
	for i, c := range choice {
		if c >= 0 && !isNull[c] {
			idx[i] = base[c] + int32(i)
		} else {
			idx[i] = -1
		}
	}
	return takeRows(ctx, all, idx)
}

func selectBytes(mem memory.Allocator, typ arrow.DataType, choice []int32, arrs []arrow.Array, isNull []bool, valids [][]byte) arrow.Array {
	n := len(choice)
	gs := make([]func(int) string, len(arrs))
	size := 0
	for k, a := range arrs {
		if !isNull[k] {
			gs[k] = strGetter(a)
		}
	}
	for i, c := range choice {
		if c >= 0 && !isNull[c] {
			size += len(gs[c](i))
		}
	}
	vb, vbs := newBitmap(mem, n)
	ob, offs := allocI32(mem, n+1)
	db := newBuf(mem, size)
	data := db.Bytes()
	pos := 0
	for i, c := range choice {
		offs[i] = int32(pos)
		if c < 0 || isNull[c] || valids[c] != nil && !bitutil.BitIsSet(valids[c], i) {
			continue
		}
		bitutil.SetBit(vbs, i)
		pos += copy(data[pos:], gs[c](i))
	}
	offs[n] = int32(pos)
	return makeArray(typ, n, vb, ob, db)
}

// strGetter returns a function reading row i of a string or binary array
// as a string, without copying.
func strGetter(a arrow.Array) func(int) string {
	switch a := a.(type) {
	case *array.String:
		return a.Value
	case *array.Binary:
		return func(i int) string {
			b := a.Value(i)
			return unsafe.String(unsafe.SliceData(b), len(b))
		}
	}
	return func(int) string { return "" }
}
