package expr

import (
	"encoding/hex"
	"math"
	"strconv"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
)

// FormatValue prints row i of a as a SQL literal: NULL, TRUE, 42, 1.5,
// 'text', TIMESTAMP '2024-01-02 03:04:05', DATE '2024-01-02',
// INTERVAL '5 minutes', [1, 2] for arrays, {a: 1, b: 'x'} for structs
// and {'k': 1} for maps. It is what the docs' examples show.
func FormatValue(a arrow.Array, i int) string { return formatValue(a, i, true) }

func formatValue(a arrow.Array, i int, quote bool) string {
	if a.IsNull(i) {
		return "NULL"
	}
	switch a := a.(type) {
	case *array.List:
		start, end := a.ValueOffsets(i)
		var b strings.Builder
		b.WriteByte('[')
		for j := start; j < end; j++ {
			if j > start {
				b.WriteString(", ")
			}
			b.WriteString(formatValue(a.ListValues(), int(j), true))
		}
		b.WriteByte(']')
		return b.String()
	case *array.Map:
		start, end := a.ValueOffsets(i)
		var b strings.Builder
		b.WriteByte('{')
		for j := start; j < end; j++ {
			if j > start {
				b.WriteString(", ")
			}
			b.WriteString(formatValue(a.Keys(), int(j), true))
			b.WriteString(": ")
			b.WriteString(formatValue(a.Items(), int(j), true))
		}
		b.WriteByte('}')
		return b.String()
	case *array.Struct:
		st := a.DataType().(*arrow.StructType)
		var b strings.Builder
		b.WriteByte('{')
		for k := range st.NumFields() {
			if k > 0 {
				b.WriteString(", ")
			}
			b.WriteString(quoteIdent(st.Field(k).Name))
			b.WriteString(": ")
			b.WriteString(formatValue(a.Field(k), i, true))
		}
		b.WriteByte('}')
		return b.String()
	}
	return formatScalar(widenType(a.DataType()), scalarAt(a, i), quote)
}

// scalarAt returns row i of a (non-null) as the Go value a constExpr of
// the widened type holds.
func scalarAt(a arrow.Array, i int) any {
	if a.IsNull(i) {
		return nil
	}
	switch a := a.(type) {
	case *array.Boolean:
		return a.Value(i)
	case *array.Int8:
		return int64(a.Value(i))
	case *array.Int16:
		return int64(a.Value(i))
	case *array.Int32:
		return int64(a.Value(i))
	case *array.Int64:
		return a.Value(i)
	case *array.Uint8:
		return int64(a.Value(i))
	case *array.Uint16:
		return int64(a.Value(i))
	case *array.Uint32:
		return int64(a.Value(i))
	case *array.Uint64:
		return int64(a.Value(i))
	case *array.Float16:
		return float64(a.Value(i).Float32())
	case *array.Float32:
		return float64(a.Value(i))
	case *array.Float64:
		return a.Value(i)
	case *array.Decimal128:
		return a.Value(i).ToFloat64(a.DataType().(*arrow.Decimal128Type).Scale)
	case *array.String:
		return a.Value(i)
	case *array.LargeString:
		return a.Value(i)
	case *array.StringView:
		return a.Value(i)
	case *array.Binary:
		return append([]byte(nil), a.Value(i)...)
	case *array.LargeBinary:
		return append([]byte(nil), a.Value(i)...)
	case *array.Timestamp:
		return tsToMicros(int64(a.Value(i)), a.DataType().(*arrow.TimestampType).Unit)
	case *array.Date32:
		return int32(a.Value(i))
	case *array.Date64:
		return int32(floorDiv(int64(a.Value(i)), 86400000))
	case *array.Duration:
		return tsToMicros(int64(a.Value(i)), a.DataType().(*arrow.DurationType).Unit)
	case *array.MonthDayNanoInterval:
		return a.Value(i)
	}
	return nil
}

func tsToMicros(v int64, u arrow.TimeUnit) int64 {
	switch u {
	case arrow.Second:
		return v * usPerSec
	case arrow.Millisecond:
		return v * 1000
	case arrow.Nanosecond:
		return floorDiv(v, 1000)
	}
	return v
}

// formatScalar prints a constant of type t; quote selects SQL literal
// syntax (quoted strings, TIMESTAMP '...') over plain text.
func formatScalar(t arrow.DataType, v any, quote bool) string {
	if v == nil {
		return "NULL"
	}
	switch v := v.(type) {
	case bool:
		if v {
			return "TRUE"
		}
		return "FALSE"
	case int64:
		switch kindOf(t) {
		case kTS:
			s := string(appendTimestamp(nil, v))
			if quote {
				return "TIMESTAMP '" + s + "'"
			}
			return s
		case kDur:
			s := formatInterval(0, v)
			if quote {
				return "INTERVAL '" + s + "'"
			}
			return s
		}
		return strconv.FormatInt(v, 10)
	case float64:
		s := string(appendFloat(nil, v))
		if quote && (math.IsNaN(v) || math.IsInf(v, 0)) {
			return "CAST('" + s + "' AS DOUBLE)"
		}
		return s
	case string:
		if quote {
			return "'" + strings.ReplaceAll(v, "'", "''") + "'"
		}
		return v
	case []byte:
		if quote {
			return "unhex('" + strings.ToUpper(hex.EncodeToString(v)) + "')"
		}
		return string(v)
	case int32:
		s := string(appendDate(nil, v))
		if quote {
			return "DATE '" + s + "'"
		}
		return s
	case arrow.MonthDayNanoInterval:
		s := formatInterval(int64(v.Months), int64(v.Days)*usPerDay+v.Nanoseconds/1000)
		if quote {
			return "INTERVAL '" + s + "'"
		}
		return s
	}
	return "?"
}

// appendFloat formats a DOUBLE as Spark (Java) does: 1.0, 0.5, 1.0E10,
// 1.0E-5, NaN, Infinity.
func appendFloat(dst []byte, f float64) []byte {
	switch {
	case math.IsNaN(f):
		return append(dst, "NaN"...)
	case math.IsInf(f, 1):
		return append(dst, "Infinity"...)
	case math.IsInf(f, -1):
		return append(dst, "-Infinity"...)
	}
	abs := math.Abs(f)
	if abs == 0 || abs >= 1e-3 && abs < 1e7 {
		start := len(dst)
		dst = strconv.AppendFloat(dst, f, 'f', -1, 64)
		for _, c := range dst[start:] {
			if c == '.' {
				return dst
			}
		}
		return append(dst, ".0"...)
	}
	var buf [32]byte
	s := strconv.AppendFloat(buf[:0], f, 'E', -1, 64) // 1.5E+20
	e := 0
	for e < len(s) && s[e] != 'E' {
		e++
	}
	mant, exp := s[:e], s[e+1:]
	dst = append(dst, mant...)
	hasDot := false
	for _, c := range mant {
		if c == '.' {
			hasDot = true
		}
	}
	if !hasDot {
		dst = append(dst, ".0"...)
	}
	dst = append(dst, 'E')
	if exp[0] == '-' {
		dst = append(dst, '-')
	}
	exp = exp[1:]
	for len(exp) > 1 && exp[0] == '0' {
		exp = exp[1:]
	}
	return append(dst, exp...)
}
