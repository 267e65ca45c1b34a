package expr

import (
	"github.com/sluice-dev/sluice/internal/sql"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/bitutil"
)

// Conditional functions: coalesce, nvl, ifnull, nvl2, if, iff, nullif,
// greatest, least.

func init() {
	register("coalesce", 1, -1, bindCoalesce)
	register("nvl ifnull", 2, 2, bindCoalesce)
	register("if iff", 3, 3, bindIf)
	register("nvl2", 3, 3, bindNvl2)
	register("nullif", 2, 2, bindNullif)
	register("greatest", 1, -1, func(f *fcall) (Expr, error) { return bindExtreme(f, 1) })
	register("least", 1, -1, func(f *fcall) (Expr, error) { return bindExtreme(f, -1) })
}

// unifyArgs converts arguments from..to-1 to their common type.
func (f *fcall) unifyArgs(from, to int) (arrow.DataType, error) {
	t, err := f.b.unify(f.args[from:to], f.pos[from:to], f.name)
	if err != nil {
		return nil, err
	}
	for i := from; i < to; i++ {
		if err := f.coerce(i, t); err != nil {
			return nil, err
		}
	}
	return t, nil
}

func bindCoalesce(f *fcall) (Expr, error) {
	t, err := f.unifyArgs(0, len(f.args))
	if err != nil {
		return nil, err
	}
	// Constants: a leading non-null constant is the result, NULLs drop out.
	var args []Expr
	for _, a := range f.args {
		if c, ok := a.(*constExpr); ok {
			if c.val == nil {
				continue
			}
			if len(args) == 0 {
				return c, nil
			}
			args = append(args, c)
			break
		}
		args = append(args, a)
	}
	if len(args) == 0 {
		return &constExpr{typ: t}, nil
	}
	if len(args) == 1 {
		return args[0], nil
	}
	f.args, f.skip = args, make([]bool, len(args))
	return f.done(t, func(ctx *Ctx, n int, as []arrow.Array) (arrow.Array, error) {
		choice := make([]int32, n)
		for i := range choice {
			choice[i] = -1
		}
		for k := len(as) - 1; k >= 0; k-- {
			v := validBits(as[k])
			isNull := as[k].DataType().ID() == arrow.NULL
			for i := range n {
				if !isNull && (v == nil || bitutil.BitIsSet(v, i)) {
					choice[i] = int32(k)
				}
			}
		}
		return selectRows(ctx, t, choice, as)
	})
}

func bindIf(f *fcall) (Expr, error) {
	if err := f.coerce(0, tBool); err != nil {
		return nil, err
	}
	t, err := f.unifyArgs(1, 3)
	if err != nil {
		return nil, err
	}
	if c, ok := f.args[0].(*constExpr); ok {
		if v, _ := c.val.(bool); v {
			return f.args[1], nil
		}
		return f.args[2], nil
	}
	return f.done(t, func(ctx *Ctx, n int, as []arrow.Array) (arrow.Array, error) {
		vals, valid := boolParts(as[0])
		choice := make([]int32, n)
		for i := range n {
			choice[i] = 2
			if bitutil.BitIsSet(vals, i) && (valid == nil || bitutil.BitIsSet(valid, i)) {
				choice[i] = 1
			}
		}
		return selectRows(ctx, t, choice, as)
	})
}

func bindNvl2(f *fcall) (Expr, error) {
	t, err := f.unifyArgs(1, 3)
	if err != nil {
		return nil, err
	}
	return f.done(t, func(ctx *Ctx, n int, as []arrow.Array) (arrow.Array, error) {
		v := validBits(as[0])
		isNull := as[0].DataType().ID() == arrow.NULL
		choice := make([]int32, n)
		for i := range n {
			choice[i] = 2
			if !isNull && (v == nil || bitutil.BitIsSet(v, i)) {
				choice[i] = 1
			}
		}
		return selectRows(ctx, t, choice, as)
	})
}

func bindNullif(f *fcall) (Expr, error) {
	t, ok := commonType(f.args[0].Type(), f.args[1].Type(), true)
	if !ok {
		return nil, f.errorf(1, "cannot compare %s with %s", typeName(f.args[0].Type()), typeName(f.args[1].Type()))
	}
	if kindOf(t) == kNull {
		return &constExpr{typ: tNull}, nil
	}
	rt := f.args[0].Type()
	if err := f.coerce(0, t); err != nil {
		return nil, err
	}
	if err := f.coerce(1, t); err != nil {
		return nil, err
	}
	_ = rt
	return f.done(t, func(ctx *Ctx, n int, as []arrow.Array) (arrow.Array, error) {
		eq, err := compareArrays(ctx.mem(), sql.OpEq, as[0], as[1])
		if err != nil {
			return nil, err
		}
		defer eq.Release()
		ev := eq.Bytes()
		v0, v1 := validBits(as[0]), validBits(as[1])
		choice := make([]int32, n)
		for i := range n {
			if (v0 == nil || bitutil.BitIsSet(v0, i)) && (v1 == nil || bitutil.BitIsSet(v1, i)) && bitutil.BitIsSet(ev, i) {
				choice[i] = -1
			}
		}
		return selectRows(ctx, t, choice, as[:1])
	})
}

// bindExtreme is greatest (sign 1) and least (sign -1): NULLs are skipped.
func bindExtreme(f *fcall, sign int) (Expr, error) {
	t, err := f.unifyArgs(0, len(f.args))
	if err != nil {
		return nil, err
	}
	switch kindOf(t) {
	case kStruct, kList, kMap, kMonths, kOther:
		return nil, f.errorf(0, "cannot compare values of type %s", typeName(t))
	}
	return f.done(t, func(ctx *Ctx, n int, as []arrow.Array) (arrow.Array, error) {
		choice := make([]int32, n)
		valids := make([][]byte, len(as))
		for k, a := range as {
			valids[k] = validBits(a)
			if a.DataType().ID() == arrow.NULL {
				valids[k] = allZero(n)
			}
		}
		for i := range n {
			best := int32(-1)
			for k, a := range as {
				if valids[k] != nil && !bitutil.BitIsSet(valids[k], i) {
					continue
				}
				if best < 0 || compareAt(a, i, as[best], i)*sign > 0 {
					best = int32(k)
				}
			}
			choice[i] = best
		}
		return selectRows(ctx, t, choice, as)
	})
}
