package window

import (
	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/sluice-dev/sluice/internal/online"
)

// ArrowValue converts row i of a to an online value.
func ArrowValue(a arrow.Array, i int) online.Value {
	if a.IsNull(i) {
		return online.Null()
	}
	switch c := a.(type) {
	case *array.String:
		return online.String(c.Value(i))
	case *array.LargeString:
		return online.String(c.Value(i))
	case *array.Int64:
		return online.Int64(c.Value(i))
	case *array.Int32:
		return online.Int64(int64(c.Value(i)))
	case *array.Int16:
		return online.Int64(int64(c.Value(i)))
	case *array.Float64:
		return online.Float64(c.Value(i))
	case *array.Float32:
		return online.Float64(float64(c.Value(i)))
	case *array.Boolean:
		return online.Bool(c.Value(i))
	case *array.Timestamp:
		unit := c.DataType().(*arrow.TimestampType).Unit
		return online.Timestamp(c.Value(i).ToTime(unit))
	case *array.Date32:
		return online.Timestamp(c.Value(i).ToTime())
	}
	return online.String(a.ValueStr(i))
}

// ResultType is the type of a feature's values given its input column's
// type.
func ResultType(fn string, in arrow.DataType) arrow.DataType {
	switch fn {
	case "count", "count_distinct":
		return arrow.PrimitiveTypes.Int64
	case "avg":
		return arrow.PrimitiveTypes.Float64
	case "sum":
		switch in.ID() {
		case arrow.INT8, arrow.INT16, arrow.INT32, arrow.INT64, arrow.UINT8, arrow.UINT16, arrow.UINT32, arrow.BOOL:
			return arrow.PrimitiveTypes.Int64
		}
		return arrow.PrimitiveTypes.Float64
	}
	return in
}

// AppendValue appends v to b, a builder of a feature's ResultType.
func AppendValue(b array.Builder, v online.Value) {
	if v.IsNull() {
		b.AppendNull()
		return
	}
	switch b := b.(type) {
	case *array.Int64Builder:
		b.Append(v.Int64())
	case *array.Float64Builder:
		b.Append(v.Float64())
	case *array.StringBuilder:
		b.Append(v.Str())
	case *array.BooleanBuilder:
		b.Append(v.Bool())
	case *array.TimestampBuilder:
		unit := b.Type().(*arrow.TimestampType).Unit
		ns := v.TimeNanos()
		switch unit {
		case arrow.Second:
			b.Append(arrow.Timestamp(ns / 1e9))
		case arrow.Millisecond:
			b.Append(arrow.Timestamp(ns / 1e6))
		case arrow.Microsecond:
			b.Append(arrow.Timestamp(ns / 1e3))
		default:
			b.Append(arrow.Timestamp(ns))
		}
	case *array.Int32Builder:
		b.Append(int32(v.Int64()))
	case *array.Float32Builder:
		b.Append(float32(v.Float64()))
	default:
		b.AppendNull()
	}
}
