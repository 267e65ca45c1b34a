package expr

import (
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
)

// Date and time functions. Every timestamp is UTC.

const defaultTSPattern = "yyyy-MM-dd HH:mm:ss"

func init() {
	now := func(f *fcall) (Expr, error) {
		return f.volatile(tTS, func(ctx *Ctx, n int, _ []arrow.Array) (arrow.Array, error) {
			return constArray(ctx.mem(), tTS, ctx.Now.UnixMicro(), n), nil
		})
	}
	register("current_timestamp now localtimestamp", 0, 0, now)
	register("current_date curdate", 0, 0, func(f *fcall) (Expr, error) {
		return f.volatile(tDate, func(ctx *Ctx, n int, _ []arrow.Array) (arrow.Array, error) {
			return constArray(ctx.mem(), tDate, tsToDate(ctx.Now.UnixMicro()), n), nil
		})
	})
	register("to_timestamp", 1, 2, bindToTimestamp)
	register("to_date", 1, 2, bindToDate)
	register("date_trunc", 2, 2, bindDateTrunc)
	register("date_format", 2, 2, bindDateFormat)
	part := func(fn func(t time.Time) int) func(f *fcall) (Expr, error) {
		return func(f *fcall) (Expr, error) {
			if err := f.tsArg(0); err != nil {
				return nil, err
			}
			return f.done(tInt, func(ctx *Ctx, n int, as []arrow.Array) (arrow.Array, error) {
				x := i64s(as[0])
				return buildI64(ctx.mem(), tInt, n, func(i int) (int64, bool) { return int64(fn(usTime(x[i]))), true }, as[0]), nil
			})
		}
	}
	register("year", 1, 1, part(func(t time.Time) int { return t.Year() }))
	register("quarter", 1, 1, part(func(t time.Time) int { return (int(t.Month())-1)/3 + 1 }))
	register("month", 1, 1, part(func(t time.Time) int { return int(t.Month()) }))
	register("day dayofmonth", 1, 1, part(func(t time.Time) int { return t.Day() }))
	register("dayofyear", 1, 1, part(func(t time.Time) int { return t.YearDay() }))
	register("hour", 1, 1, part(func(t time.Time) int { return t.Hour() }))
	register("minute", 1, 1, part(func(t time.Time) int { return t.Minute() }))
	register("second", 1, 1, part(func(t time.Time) int { return t.Second() }))
	register("dayofweek", 1, 1, part(func(t time.Time) int { return int(t.Weekday()) + 1 }))
	register("weekday", 1, 1, part(func(t time.Time) int { return (int(t.Weekday()) + 6) % 7 }))
	register("weekofyear", 1, 1, part(func(t time.Time) int { _, w := t.ISOWeek(); return w }))
	register("unix_timestamp", 0, 2, bindUnixTimestamp)
	register("from_unixtime", 1, 2, bindFromUnixtime)
	register("timestamp_seconds", 1, 1, func(f *fcall) (Expr, error) { return bindTSFrom(f, usPerSec) })
	register("timestamp_millis", 1, 1, func(f *fcall) (Expr, error) { return bindTSFrom(f, 1000) })
	register("timestamp_micros", 1, 1, func(f *fcall) (Expr, error) { return bindTSFrom(f, 1) })
	register("unix_seconds", 1, 1, func(f *fcall) (Expr, error) { return bindUnixOf(f, usPerSec) })
	register("unix_millis", 1, 1, func(f *fcall) (Expr, error) { return bindUnixOf(f, 1000) })
	register("unix_micros", 1, 1, func(f *fcall) (Expr, error) { return bindUnixOf(f, 1) })
	register("date_add dateadd", 2, 2, func(f *fcall) (Expr, error) { return bindDateAdd(f, 1) })
	register("date_sub", 2, 2, func(f *fcall) (Expr, error) { return bindDateAdd(f, -1) })
	register("datediff", 2, 2, bindDatediff)
}

// tsArg converts argument i to TIMESTAMP (from DATE, or text).
func (f *fcall) tsArg(i int) error {
	switch kindOf(f.args[i].Type()) {
	case kString: // text that is not a timestamp is NULL, as in Spark
		f.args[i] = fold(&castExpr{x: f.args[i], to: tTS})
		return nil
	case kTS, kDate, kNull:
		return f.coerce(i, tTS)
	}
	return f.errorf(i, "needs a TIMESTAMP, got %s %s", typeName(f.args[i].Type()), f.args[i].String())
}

func (f *fcall) dateArg(i int) error {
	switch kindOf(f.args[i].Type()) {
	case kString:
		f.args[i] = fold(&castExpr{x: f.args[i], to: tDate})
		return nil
	case kTS, kDate, kNull:
		return f.coerce(i, tDate)
	}
	return f.errorf(i, "needs a DATE, got %s %s", typeName(f.args[i].Type()), f.args[i].String())
}

// constPattern compiles constant argument i as a datetime pattern.
func (f *fcall) constPattern(i int) ([]patTok, bool, error) {
	p, ok, err := f.constString(i, "a datetime pattern")
	if err != nil || !ok {
		return nil, ok, err
	}
	toks, err := compilePattern(p)
	if err != nil {
		return nil, false, f.errorf(i, "%v", err)
	}
	return toks, true, nil
}

func bindToTimestamp(f *fcall) (Expr, error) {
	if len(f.args) == 1 {
		if err := f.tsArg(0); err != nil {
			return nil, err
		}
		return f.args[0], nil
	}
	if err := f.coerce(0, tString); err != nil {
		return nil, err
	}
	toks, ok, err := f.constPattern(1)
	if err != nil || !ok {
		return &constExpr{typ: tTS}, err
	}
	return f.done(tTS, func(ctx *Ctx, n int, as []arrow.Array) (arrow.Array, error) {
		s := as[0].(*array.String)
		return buildI64(ctx.mem(), tTS, n, func(i int) (int64, bool) { return parsePattern(toks, s.Value(i)) }, as[0]), nil
	})
}

func bindToDate(f *fcall) (Expr, error) {
	if len(f.args) == 1 {
		if err := f.dateArg(0); err != nil {
			return nil, err
		}
		return f.args[0], nil
	}
	if err := f.coerce(0, tString); err != nil {
		return nil, err
	}
	toks, ok, err := f.constPattern(1)
	if err != nil || !ok {
		return &constExpr{typ: tDate}, err
	}
	return f.done(tDate, func(ctx *Ctx, n int, as []arrow.Array) (arrow.Array, error) {
		s := as[0].(*array.String)
		return buildI32(ctx.mem(), tDate, n, func(i int) (int32, bool) {
			us, ok := parsePattern(toks, s.Value(i))
			return tsToDate(us), ok
		}, as[0]), nil
	})
}

func bindDateTrunc(f *fcall) (Expr, error) {
	u, ok, err := f.constString(0, "the unit")
	if err != nil {
		return nil, err
	}
	if err := f.tsArg(1); err != nil {
		return nil, err
	}
	if !ok {
		return &constExpr{typ: tTS}, nil
	}
	unit, ok := truncUnit(u)
	if !ok {
		return nil, f.errorf(0, "unknown unit %q; use year, quarter, month, week, day, hour, minute, second, millisecond or microsecond", u)
	}
	return f.done(tTS, func(ctx *Ctx, n int, as []arrow.Array) (arrow.Array, error) {
		x := i64s(as[1])
		return buildI64(ctx.mem(), tTS, n, func(i int) (int64, bool) { return truncTimestamp(unit, x[i]), true }, as[1]), nil
	})
}

func bindDateFormat(f *fcall) (Expr, error) {
	if err := f.tsArg(0); err != nil {
		return nil, err
	}
	toks, ok, err := f.constPattern(1)
	if err != nil || !ok {
		return &constExpr{typ: tString}, err
	}
	return f.done(tString, formatWith(toks, 0))
}

func formatWith(toks []patTok, arg int) evalFn {
	return func(ctx *Ctx, n int, as []arrow.Array) (arrow.Array, error) {
		x := i64s(as[arg])
		return buildBytes(ctx.mem(), tString, n, func(i int, dst []byte) ([]byte, bool) {
			return formatPattern(dst, toks, x[i]), true
		}, as[arg]), nil
	}
}

func bindUnixTimestamp(f *fcall) (Expr, error) {
	if len(f.args) == 0 {
		return f.volatile(tInt, func(ctx *Ctx, n int, _ []arrow.Array) (arrow.Array, error) {
			return constArray(ctx.mem(), tInt, ctx.Now.Unix(), n), nil
		})
	}
	if kindOf(f.args[0].Type()) == kString {
		pat := defaultTSPattern
		if len(f.args) == 2 {
			p, ok, err := f.constString(1, "a datetime pattern")
			if err != nil || !ok {
				return &constExpr{typ: tInt}, err
			}
			pat = p
		}
		toks, err := compilePattern(pat)
		if err != nil {
			return nil, f.errorf(1, "%v", err)
		}
		return f.done(tInt, func(ctx *Ctx, n int, as []arrow.Array) (arrow.Array, error) {
			s := as[0].(*array.String)
			return buildI64(ctx.mem(), tInt, n, func(i int) (int64, bool) {
				us, ok := parsePattern(toks, s.Value(i))
				return floorDiv(us, usPerSec), ok
			}, as[0]), nil
		})
	}
	if err := f.tsArg(0); err != nil {
		return nil, err
	}
	return f.done(tInt, func(ctx *Ctx, n int, as []arrow.Array) (arrow.Array, error) {
		x := i64s(as[0])
		return buildI64(ctx.mem(), tInt, n, func(i int) (int64, bool) { return floorDiv(x[i], usPerSec), true }, as[0]), nil
	})
}

func bindFromUnixtime(f *fcall) (Expr, error) {
	if err := f.coerce(0, tInt); err != nil {
		return nil, err
	}
	pat := defaultTSPattern
	if len(f.args) == 2 {
		p, ok, err := f.constString(1, "a datetime pattern")
		if err != nil || !ok {
			return &constExpr{typ: tString}, err
		}
		pat = p
	}
	toks, err := compilePattern(pat)
	if err != nil {
		return nil, f.errorf(1, "%v", err)
	}
	return f.done(tString, func(ctx *Ctx, n int, as []arrow.Array) (arrow.Array, error) {
		x := i64s(as[0])
		return buildBytes(ctx.mem(), tString, n, func(i int, dst []byte) ([]byte, bool) {
			if x[i] > 1<<40 || x[i] < -(1<<40) {
				return dst, false
			}
			return formatPattern(dst, toks, x[i]*usPerSec), true
		}, as[0]), nil
	})
}

func bindTSFrom(f *fcall, unit int64) (Expr, error) {
	if err := f.numArg(0); err != nil {
		return nil, err
	}
	if kindOf(f.args[0].Type()) == kFloat {
		return f.done(tTS, func(ctx *Ctx, n int, as []arrow.Array) (arrow.Array, error) {
			x := f64s(as[0])
			return buildI64(ctx.mem(), tTS, n, func(i int) (int64, bool) {
				v := x[i] * float64(unit)
				if v != v || v > 9e18 || v < -9e18 {
					return 0, false
				}
				return int64(v), true
			}, as[0]), nil
		})
	}
	return f.done(tTS, func(ctx *Ctx, n int, as []arrow.Array) (arrow.Array, error) {
		x := i64s(as[0])
		return buildI64(ctx.mem(), tTS, n, func(i int) (int64, bool) {
			if x[i] > (1<<62)/unit || x[i] < -(1<<62)/unit {
				return 0, false
			}
			return x[i] * unit, true
		}, as[0]), nil
	})
}

func bindUnixOf(f *fcall, unit int64) (Expr, error) {
	if err := f.tsArg(0); err != nil {
		return nil, err
	}
	return f.done(tInt, func(ctx *Ctx, n int, as []arrow.Array) (arrow.Array, error) {
		x := i64s(as[0])
		return buildI64(ctx.mem(), tInt, n, func(i int) (int64, bool) { return floorDiv(x[i], unit), true }, as[0]), nil
	})
}

func bindDateAdd(f *fcall, sign int32) (Expr, error) {
	if err := f.dateArg(0); err != nil {
		return nil, err
	}
	if err := f.coerce(1, tInt); err != nil {
		return nil, err
	}
	return f.done(tDate, func(ctx *Ctx, n int, as []arrow.Array) (arrow.Array, error) {
		d, k := i32s(as[0]), i64s(as[1])
		return buildI32(ctx.mem(), tDate, n, func(i int) (int32, bool) { return d[i] + sign*int32(k[i]), true }, as...), nil
	})
}

func bindDatediff(f *fcall) (Expr, error) {
	if err := f.dateArg(0); err != nil {
		return nil, err
	}
	if err := f.dateArg(1); err != nil {
		return nil, err
	}
	return f.done(tInt, func(ctx *Ctx, n int, as []arrow.Array) (arrow.Array, error) {
		a, b := i32s(as[0]), i32s(as[1])
		return buildI64(ctx.mem(), tInt, n, func(i int) (int64, bool) { return int64(a[i]) - int64(b[i]), true }, as...), nil
	})
}
