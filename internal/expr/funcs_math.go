package expr

import (
	"math"
	"math/rand/v2"
	"sync"

	"github.com/apache/arrow-go/v18/arrow"
)

// Math functions.

func init() {
	register("abs", 1, 1, bindAbs)
	register("round", 1, 2, bindRound)
	register("floor", 1, 1, func(f *fcall) (Expr, error) { return bindFloorCeil(f, math.Floor) })
	register("ceil ceiling", 1, 1, func(f *fcall) (Expr, error) { return bindFloorCeil(f, math.Ceil) })
	register("sqrt", 1, 1, floatMap(math.Sqrt, func(x float64) bool { return x >= 0 }))
	register("exp", 1, 1, floatMap(math.Exp, nil))
	register("ln", 1, 1, floatMap(math.Log, func(x float64) bool { return x > 0 }))
	register("log10", 1, 1, floatMap(math.Log10, func(x float64) bool { return x > 0 }))
	register("log2", 1, 1, floatMap(math.Log2, func(x float64) bool { return x > 0 }))
	register("sign signum", 1, 1, floatMap(func(x float64) float64 {
		switch {
		case x > 0:
			return 1
		case x < 0:
			return -1
		}
		return x
	}, nil))
	register("pow power", 2, 2, func(f *fcall) (Expr, error) {
		if err := f.coerceAll(0, tFloat); err != nil {
			return nil, err
		}
		return f.done(tFloat, func(ctx *Ctx, n int, as []arrow.Array) (arrow.Array, error) {
			x, y := f64s(as[0]), f64s(as[1])
			return buildF64(ctx.mem(), n, func(i int) (float64, bool) { return math.Pow(x[i], y[i]), true }, as...), nil
		})
	})
	register("rand random", 0, 1, func(f *fcall) (Expr, error) {
		var r *rand.Rand
		var mu sync.Mutex // r is shared by concurrent Evals
		if len(f.args) == 1 {
			seed, _, err := f.constInt(0, "the seed")
			if err != nil {
				return nil, err
			}
			r = rand.New(rand.NewPCG(uint64(seed), 0))
		}
		return f.volatile(tFloat, func(ctx *Ctx, n int, _ []arrow.Array) (arrow.Array, error) {
			db, out := allocF64(ctx.mem(), n)
			if r != nil {
				mu.Lock()
				defer mu.Unlock()
			}
			for i := range out {
				if r != nil {
					out[i] = r.Float64()
				} else {
					out[i] = rand.Float64()
				}
			}
			return makeArray(tFloat, n, nil, db), nil
		})
	})
}

// numArg checks that argument i is a number (or NULL, made DOUBLE).
func (f *fcall) numArg(i int) error {
	switch kindOf(f.args[i].Type()) {
	case kInt, kFloat:
		return nil
	case kNull:
		return f.coerce(i, tFloat)
	}
	return f.errorf(i, "needs a number, got %s %s", typeName(f.args[i].Type()), f.args[i].String())
}

func floatMap(fn func(float64) float64, domain func(float64) bool) func(f *fcall) (Expr, error) {
	return func(f *fcall) (Expr, error) {
		if err := f.numArg(0); err != nil {
			return nil, err
		}
		if err := f.coerce(0, tFloat); err != nil {
			return nil, err
		}
		return f.done(tFloat, func(ctx *Ctx, n int, as []arrow.Array) (arrow.Array, error) {
			x := f64s(as[0])
			return buildF64(ctx.mem(), n, func(i int) (float64, bool) {
				if domain != nil && !domain(x[i]) {
					return 0, false
				}
				return fn(x[i]), true
			}, as[0]), nil
		})
	}
}

func bindAbs(f *fcall) (Expr, error) {
	if err := f.numArg(0); err != nil {
		return nil, err
	}
	t := f.args[0].Type()
	return f.done(t, func(ctx *Ctx, n int, as []arrow.Array) (arrow.Array, error) {
		if kindOf(t) == kInt {
			x := i64s(as[0])
			return buildI64(ctx.mem(), tInt, n, func(i int) (int64, bool) {
				if x[i] < 0 {
					return -x[i], true
				}
				return x[i], true
			}, as[0]), nil
		}
		x := f64s(as[0])
		return buildF64(ctx.mem(), n, func(i int) (float64, bool) { return math.Abs(x[i]), true }, as[0]), nil
	})
}

// roundHalfUp rounds to d decimal places, halves away from zero (Spark's
// HALF_UP).
func roundHalfUp(x float64, d int64) float64 {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return x
	}
	if d > 300 {
		return x
	}
	if d < -300 {
		return 0
	}
	p := math.Pow(10, float64(d))
	r := math.Round(x * p)
	if math.IsInf(x*p, 0) {
		return x
	}
	return r / p
}

func bindRound(f *fcall) (Expr, error) {
	if err := f.numArg(0); err != nil {
		return nil, err
	}
	var d int64
	if len(f.args) == 2 {
		var ok bool
		var err error
		if d, ok, err = f.constInt(1, "the scale"); err != nil {
			return nil, err
		} else if !ok {
			return nullResult(f.args[0].Type())
		}
	}
	t := f.args[0].Type()
	return f.done(t, func(ctx *Ctx, n int, as []arrow.Array) (arrow.Array, error) {
		if kindOf(t) == kInt {
			x := i64s(as[0])
			return buildI64(ctx.mem(), tInt, n, func(i int) (int64, bool) {
				if d >= 0 {
					return x[i], true
				}
				if d < -18 {
					return 0, true
				}
				p := int64(math.Pow10(int(-d)))
				q, r := x[i]/p, x[i]%p
				if r*2 >= p {
					q++
				} else if r*2 <= -p {
					q--
				}
				return q * p, true
			}, as[0]), nil
		}
		x := f64s(as[0])
		return buildF64(ctx.mem(), n, func(i int) (float64, bool) { return roundHalfUp(x[i], d), true }, as[0]), nil
	})
}

func bindFloorCeil(f *fcall, fn func(float64) float64) (Expr, error) {
	if err := f.numArg(0); err != nil {
		return nil, err
	}
	if kindOf(f.args[0].Type()) == kInt {
		return f.args[0], nil
	}
	return f.done(tInt, func(ctx *Ctx, n int, as []arrow.Array) (arrow.Array, error) {
		x := f64s(as[0])
		return buildI64(ctx.mem(), tInt, n, func(i int) (int64, bool) { return floatToInt(fn(x[i])), true }, as[0]), nil
	})
}
