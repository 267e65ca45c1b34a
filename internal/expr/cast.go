package expr

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// castExpr is CAST(x AS t), TRY_CAST or x::t, or an implicit conversion
// the binder inserted. Text that does not convert yields NULL (Spark with
// ANSI mode off), so CAST and TRY_CAST behave the same.
type castExpr struct {
	x   Expr
	to  arrow.DataType
	try bool
}

func (e *castExpr) Type() arrow.DataType { return e.to }
func (e *castExpr) children() []Expr     { return []Expr{e.x} }
func (e *castExpr) String() string {
	kw := "CAST"
	if e.try {
		kw = "TRY_CAST"
	}
	return kw + "(" + e.x.String() + " AS " + typeName(e.to) + ")"
}

func (e *castExpr) Eval(ctx *Ctx, in arrow.RecordBatch) (arrow.Array, error) {
	xa, err := e.x.Eval(ctx, in)
	if err != nil {
		return nil, err
	}
	defer xa.Release()
	return castArray(ctx, xa, e.to, e.try)
}

// canCast reports whether CAST from → to is supported.
func canCast(from, to arrow.DataType) bool {
	if arrow.TypeEqual(from, to) {
		return true
	}
	kf, kt := kindOf(from), kindOf(to)
	if kf == kNull {
		return true
	}
	if kt == kOther || kf == kOther {
		return false
	}
	switch kt {
	case kString:
		return kf != kStruct && kf != kList && kf != kMap
	case kBool, kInt, kFloat:
		return kf == kBool || kf == kInt || kf == kFloat || kf == kString || kt != kBool && kf == kTS
	case kTS:
		return kf == kInt || kf == kFloat || kf == kString || kf == kTS || kf == kDate
	case kDate:
		return kf == kString || kf == kTS || kf == kDate
	case kBinary:
		return kf == kString || kf == kBinary
	case kDur:
		return kf == kString || kf == kDur
	}
	return false
}

// CastTo converts e to type t as CAST does, or returns a *Error (without a
// position) if Spark cannot cast between the types.
func CastTo(e Expr, t arrow.DataType) (Expr, error) {
	if arrow.TypeEqual(e.Type(), t) {
		return e, nil
	}
	if !canCast(e.Type(), t) {
		return nil, &Error{Msg: fmt.Sprintf("cannot cast %s to %s", typeName(e.Type()), typeName(t))}
	}
	return fold(&castExpr{x: e, to: t}), nil
}

// castArray converts a to type to. Values that do not convert are null.
func castArray(ctx *Ctx, a arrow.Array, to arrow.DataType, try bool) (arrow.Array, error) {
	mem := ctx.mem()
	from := a.DataType()
	if arrow.TypeEqual(from, to) {
		return retain(a), nil
	}
	n := a.Len()
	if from.ID() == arrow.NULL {
		return nullArray(mem, to, n), nil
	}
	if !canCast(from, to) {
		return nil, fmt.Errorf("cannot cast %s to %s", typeName(from), typeName(to))
	}
	w, err := widenArray(mem, a)
	if err != nil {
		return nil, err
	}
	defer w.Release()
	ct := widenType(to)
	c, err := castCanonical(mem, w, ct)
	if err != nil {
		return nil, err
	}
	if arrow.TypeEqual(ct, to) {
		return c, nil
	}
	defer c.Release()
	return narrowArray(mem, c, to)
}

// widenArray converts a to its canonical type (widenType).
func widenArray(mem memory.Allocator, a arrow.Array) (arrow.Array, error) {
	t := a.DataType()
	ct := widenType(t)
	if arrow.TypeEqual(t, ct) {
		return retain(a), nil
	}
	n := a.Len()
	switch a := a.(type) {
	case *array.Int8:
		return widenInts(mem, a, a.Int8Values()), nil
	case *array.Int16:
		return widenInts(mem, a, a.Int16Values()), nil
	case *array.Int32:
		return widenInts(mem, a, a.Int32Values()), nil
	case *array.Uint8:
		return widenInts(mem, a, a.Uint8Values()), nil
	case *array.Uint16:
		return widenInts(mem, a, a.Uint16Values()), nil
	case *array.Uint32:
		return widenInts(mem, a, a.Uint32Values()), nil
	case *array.Uint64:
		return widenInts(mem, a, a.Uint64Values()), nil
	case *array.Float32:
		db, out := allocF64(mem, n)
		for i, v := range a.Float32Values() {
			out[i] = float64(v)
		}
		return makeArray(tFloat, n, andValidity(mem, n, a), db), nil
	case *array.Timestamp:
		unit := t.(*arrow.TimestampType).Unit
		if unit == arrow.Microsecond { // another zone: same instants
			return retype(a, tTS), nil
		}
		return buildI64(mem, tTS, n, func(i int) (int64, bool) { return tsToMicros(int64(a.Value(i)), unit), true }, a), nil
	case *array.Duration:
		unit := t.(*arrow.DurationType).Unit
		return buildI64(mem, tDur, n, func(i int) (int64, bool) { return tsToMicros(int64(a.Value(i)), unit), true }, a), nil
	case *array.Date64:
		return buildI32(mem, tDate, n, func(i int) (int32, bool) { return int32(floorDiv(int64(a.Value(i)), 86400000)), true }, a), nil
	case *array.LargeString, *array.StringView, *array.LargeBinary, *array.BinaryView, *array.FixedSizeBinary:
		g := a.(interface{ ValueStr(int) string })
		isStr := kindOf(t) == kString
		return buildBytes(mem, ct, n, func(i int, dst []byte) ([]byte, bool) {
			switch v := a.(type) {
			case *array.LargeString:
				return append(dst, v.Value(i)...), true
			case *array.StringView:
				return append(dst, v.Value(i)...), true
			case *array.LargeBinary:
				return append(dst, v.Value(i)...), true
			case *array.BinaryView:
				return append(dst, v.Value(i)...), true
			case *array.FixedSizeBinary:
				return append(dst, v.Value(i)...), true
			}
			_ = isStr
			return append(dst, g.ValueStr(i)...), true
		}, a), nil
	}
	if kindOf(t) == kFloat { // float16, decimals
		return buildF64(mem, n, func(i int) (float64, bool) {
			v, ok := scalarAt(a, i).(float64)
			return v, ok
		}, a), nil
	}
	return nil, fmt.Errorf("cannot read %s values", typeName(t))
}

// retype reinterprets a's buffers as type t (same layout).
func retype(a arrow.Array, t arrow.DataType) arrow.Array {
	d := a.Data()
	nd := array.NewData(t, d.Len(), d.Buffers(), d.Children(), d.NullN(), d.Offset())
	out := array.MakeFromData(nd)
	nd.Release()
	return out
}

type anyInt interface {
	~int8 | ~int16 | ~int32 | ~int64 | ~uint8 | ~uint16 | ~uint32 | ~uint64
}

func widenInts[T anyInt](mem memory.Allocator, a arrow.Array, vs []T) arrow.Array {
	n := a.Len()
	db, out := allocI64(mem, n)
	for i, v := range vs[:n] {
		out[i] = int64(v)
	}
	return makeArray(tInt, n, andValidity(mem, n, a), db)
}

// castCanonical converts between canonical types.
func castCanonical(mem memory.Allocator, a arrow.Array, to arrow.DataType) (arrow.Array, error) {
	from := a.DataType()
	if arrow.TypeEqual(from, to) {
		return retain(a), nil
	}
	n := a.Len()
	kf, kt := kindOf(from), kindOf(to)
	switch kt {
	case kString:
		return buildBytes(mem, tString, n, func(i int, dst []byte) ([]byte, bool) {
			return appendText(dst, a, i), true
		}, a), nil
	case kBinary:
		return buildBytes(mem, tBinary, n, func(i int, dst []byte) ([]byte, bool) {
			return append(dst, a.(*array.String).Value(i)...), true
		}, a), nil
	case kBool:
		switch kf {
		case kInt:
			vs := i64s(a)
			return buildBool(mem, n, func(i int) (bool, bool) { return vs[i] != 0, true }, a), nil
		case kFloat:
			vs := f64s(a)
			return buildBool(mem, n, func(i int) (bool, bool) { return vs[i] != 0, true }, a), nil
		case kString:
			s := a.(*array.String)
			return buildBool(mem, n, func(i int) (bool, bool) { return parseBool(s.Value(i)) }, a), nil
		}
	case kInt:
		switch kf {
		case kBool:
			b := a.(*array.Boolean)
			return buildI64(mem, tInt, n, func(i int) (int64, bool) { return int64(b2u(b.Value(i))), true }, a), nil
		case kFloat:
			vs := f64s(a)
			return buildI64(mem, tInt, n, func(i int) (int64, bool) { return floatToInt(vs[i]), true }, a), nil
		case kString:
			s := a.(*array.String)
			return buildI64(mem, tInt, n, func(i int) (int64, bool) { return parseInt(s.Value(i)) }, a), nil
		case kTS:
			vs := i64s(a)
			return buildI64(mem, tInt, n, func(i int) (int64, bool) { return floorDiv(vs[i], usPerSec), true }, a), nil
		}
	case kFloat:
		switch kf {
		case kBool:
			b := a.(*array.Boolean)
			return buildF64(mem, n, func(i int) (float64, bool) { return float64(b2u(b.Value(i))), true }, a), nil
		case kInt:
			db, out := allocF64(mem, n)
			for i, v := range i64s(a) {
				out[i] = float64(v)
			}
			return makeArray(tFloat, n, andValidity(mem, n, a), db), nil
		case kString:
			s := a.(*array.String)
			return buildF64(mem, n, func(i int) (float64, bool) { return parseFloat(s.Value(i)) }, a), nil
		case kTS:
			vs := i64s(a)
			return buildF64(mem, n, func(i int) (float64, bool) { return float64(vs[i]) / 1e6, true }, a), nil
		}
	case kTS:
		switch kf {
		case kInt:
			vs := i64s(a)
			return buildI64(mem, tTS, n, func(i int) (int64, bool) {
				v := vs[i]
				if v > math.MaxInt64/usPerSec || v < math.MinInt64/usPerSec {
					return 0, false
				}
				return v * usPerSec, true
			}, a), nil
		case kFloat:
			vs := f64s(a)
			return buildI64(mem, tTS, n, func(i int) (int64, bool) {
				v := vs[i] * 1e6
				if math.IsNaN(v) || math.Abs(v) > 9e18 {
					return 0, false
				}
				return int64(v), true
			}, a), nil
		case kString:
			s := a.(*array.String)
			return buildI64(mem, tTS, n, func(i int) (int64, bool) { return parseTimestamp(s.Value(i)) }, a), nil
		case kDate:
			vs := i32s(a)
			return buildI64(mem, tTS, n, func(i int) (int64, bool) { return dateToTS(vs[i]), true }, a), nil
		}
	case kDate:
		switch kf {
		case kString:
			s := a.(*array.String)
			return buildI32(mem, tDate, n, func(i int) (int32, bool) { return parseDate(s.Value(i)) }, a), nil
		case kTS:
			vs := i64s(a)
			return buildI32(mem, tDate, n, func(i int) (int32, bool) { return tsToDate(vs[i]), true }, a), nil
		}
	case kDur:
		if kf == kString {
			s := a.(*array.String)
			return buildI64(mem, tDur, n, func(i int) (int64, bool) {
				iv, err := parseIntervalText(s.Value(i))
				return iv.us, err == nil && iv.months == 0
			}, a), nil
		}
	}
	return nil, fmt.Errorf("cannot cast %s to %s", typeName(from), typeName(to))
}

// narrowArray converts a canonical array to a narrower integer or float
// type as Spark does: integers wrap, float32 rounds.
func narrowArray(mem memory.Allocator, a arrow.Array, to arrow.DataType) (arrow.Array, error) {
	n := a.Len()
	switch to.ID() {
	case arrow.INT8, arrow.INT16, arrow.INT32:
		vs := i64s(a)
		b := array.NewBuilder(mem, to)
		defer b.Release()
		b.Reserve(n)
		for i := range n {
			if a.IsNull(i) {
				b.AppendNull()
				continue
			}
			switch b := b.(type) {
			case *array.Int8Builder:
				b.Append(int8(vs[i]))
			case *array.Int16Builder:
				b.Append(int16(vs[i]))
			case *array.Int32Builder:
				b.Append(int32(vs[i]))
			}
		}
		return b.NewArray(), nil
	case arrow.FLOAT32:
		vs := f64s(a)
		b := array.NewFloat32Builder(mem)
		defer b.Release()
		b.Reserve(n)
		for i := range n {
			if a.IsNull(i) {
				b.AppendNull()
			} else {
				b.Append(float32(vs[i]))
			}
		}
		return b.NewArray(), nil
	}
	return nil, fmt.Errorf("cannot cast %s to %s", typeName(a.DataType()), typeName(to))
}

// floatToInt truncates toward zero and saturates, as Java's (long) cast.
func floatToInt(f float64) int64 {
	switch {
	case math.IsNaN(f):
		return 0
	case f >= math.MaxInt64:
		return math.MaxInt64
	case f <= math.MinInt64:
		return math.MinInt64
	}
	return int64(f)
}

func parseBool(s string) (bool, bool) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "t", "true", "y", "yes", "1":
		return true, true
	case "f", "false", "n", "no", "0":
		return false, true
	}
	return false, false
}

// parseInt parses text as CAST(... AS BIGINT): surrounding spaces are
// ignored and a fraction is truncated ('1.9' is 1).
func parseInt(s string) (int64, bool) {
	s = strings.TrimSpace(s)
	if v, err := strconv.ParseInt(s, 10, 64); err == nil {
		return v, true
	}
	if s == "" || !(s[0] >= '0' && s[0] <= '9' || s[0] == '-' || s[0] == '+' || s[0] == '.') {
		return 0, false
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || f >= 9.3e18 || f <= -9.3e18 {
		return 0, false
	}
	return int64(f), true
}

func parseFloat(s string) (float64, bool) {
	s = strings.TrimSpace(s)
	switch strings.ToLower(s) {
	case "nan":
		return math.NaN(), true
	case "infinity", "+infinity", "inf":
		return math.Inf(1), true
	case "-infinity", "-inf":
		return math.Inf(-1), true
	}
	if s == "" || !(s[0] >= '0' && s[0] <= '9' || s[0] == '-' || s[0] == '+' || s[0] == '.') {
		return 0, false
	}
	f, err := strconv.ParseFloat(strings.TrimRight(s, "dDfF"), 64)
	return f, err == nil
}

// appendText appends row i of a canonical array as CAST(... AS STRING)
// writes it.
func appendText(dst []byte, a arrow.Array, i int) []byte {
	switch a := a.(type) {
	case *array.String:
		return append(dst, a.Value(i)...)
	case *array.Binary:
		return append(dst, a.Value(i)...)
	case *array.Int64:
		return strconv.AppendInt(dst, a.Value(i), 10)
	case *array.Float64:
		return appendFloat(dst, a.Value(i))
	case *array.Boolean:
		if a.Value(i) {
			return append(dst, "true"...)
		}
		return append(dst, "false"...)
	case *array.Timestamp:
		return appendTimestamp(dst, int64(a.Value(i)))
	case *array.Date32:
		return appendDate(dst, int32(a.Value(i)))
	}
	return append(dst, formatValue(a, i, false)...)
}

// unsafeBytes views a string as bytes without copying; the bytes must not
// be modified.
func unsafeBytes(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }
