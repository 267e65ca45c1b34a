package expr

import (
	"fmt"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/sluice-dev/sluice/internal/sql"
)

// The canonical types: every operator and function computes in these, and
// reads of columns and struct fields widen narrower Arrow types to them
// (see widenType).
var (
	tNull   arrow.DataType = arrow.Null
	tBool   arrow.DataType = arrow.FixedWidthTypes.Boolean
	tInt    arrow.DataType = arrow.PrimitiveTypes.Int64
	tFloat  arrow.DataType = arrow.PrimitiveTypes.Float64
	tString arrow.DataType = arrow.BinaryTypes.String
	tBinary arrow.DataType = arrow.BinaryTypes.Binary
	tTS     arrow.DataType = &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}
	tDate   arrow.DataType = arrow.FixedWidthTypes.Date32
	tDur    arrow.DataType = arrow.FixedWidthTypes.Duration_us
	tMonths arrow.DataType = arrow.FixedWidthTypes.MonthDayNanoInterval
)

// TimestampType is the type of every timestamp an expression computes:
// microseconds since the Unix epoch, UTC, as Spark's TIMESTAMP.
var TimestampType = tTS

// kind classifies a type for binding.
type kind uint8

const (
	kOther kind = iota
	kNull
	kBool
	kInt
	kFloat
	kString
	kBinary
	kTS
	kDate
	kDur
	kMonths
	kStruct
	kList
	kMap
)

func kindOf(t arrow.DataType) kind {
	switch t.ID() {
	case arrow.NULL:
		return kNull
	case arrow.BOOL:
		return kBool
	case arrow.INT8, arrow.INT16, arrow.INT32, arrow.INT64, arrow.UINT8, arrow.UINT16, arrow.UINT32, arrow.UINT64:
		return kInt
	case arrow.FLOAT16, arrow.FLOAT32, arrow.FLOAT64, arrow.DECIMAL128, arrow.DECIMAL256, arrow.DECIMAL32, arrow.DECIMAL64:
		return kFloat
	case arrow.STRING, arrow.LARGE_STRING, arrow.STRING_VIEW:
		return kString
	case arrow.BINARY, arrow.LARGE_BINARY, arrow.BINARY_VIEW, arrow.FIXED_SIZE_BINARY:
		return kBinary
	case arrow.TIMESTAMP:
		return kTS
	case arrow.DATE32, arrow.DATE64:
		return kDate
	case arrow.DURATION:
		return kDur
	case arrow.INTERVAL_MONTH_DAY_NANO:
		return kMonths
	case arrow.STRUCT:
		return kStruct
	case arrow.LIST, arrow.LARGE_LIST, arrow.FIXED_SIZE_LIST:
		return kList
	case arrow.MAP:
		return kMap
	}
	return kOther
}

func isNumeric(t arrow.DataType) bool { k := kindOf(t); return k == kInt || k == kFloat }

// widenType is the type a read of a column or field of type t yields:
// narrower integers become int64, floats and decimals float64, large and
// view strings string, timestamps of any unit or zone timestamp[us, UTC],
// date64 date32, durations duration[us]. Nested types keep their shape
// (their fields widen when read).
func widenType(t arrow.DataType) arrow.DataType {
	switch kindOf(t) {
	case kInt:
		return tInt
	case kFloat:
		return tFloat
	case kString:
		return tString
	case kBinary:
		return tBinary
	case kTS:
		return tTS
	case kDate:
		return tDate
	case kDur:
		return tDur
	}
	return t
}

// isCanonical reports whether t is one of the types operators compute in.
func isCanonical(t arrow.DataType) bool {
	switch kindOf(t) {
	case kStruct, kList, kMap, kNull, kBool, kMonths:
		return true
	case kOther:
		return false
	}
	return arrow.TypeEqual(t, widenType(t))
}

// typeName spells t the way Spark SQL does, for messages and String.
func typeName(t arrow.DataType) string {
	switch t.ID() {
	case arrow.NULL:
		return "VOID"
	case arrow.BOOL:
		return "BOOLEAN"
	case arrow.INT8:
		return "TINYINT"
	case arrow.INT16:
		return "SMALLINT"
	case arrow.INT32:
		return "INT"
	case arrow.INT64:
		return "BIGINT"
	case arrow.UINT8, arrow.UINT16, arrow.UINT32, arrow.UINT64:
		return strings.ToUpper(t.Name())
	case arrow.FLOAT16, arrow.FLOAT32:
		return "FLOAT"
	case arrow.FLOAT64:
		return "DOUBLE"
	case arrow.DECIMAL128, arrow.DECIMAL256, arrow.DECIMAL32, arrow.DECIMAL64:
		d := t.(arrow.DecimalType)
		return fmt.Sprintf("DECIMAL(%d,%d)", d.GetPrecision(), d.GetScale())
	case arrow.STRING, arrow.LARGE_STRING, arrow.STRING_VIEW:
		return "STRING"
	case arrow.BINARY, arrow.LARGE_BINARY, arrow.BINARY_VIEW, arrow.FIXED_SIZE_BINARY:
		return "BINARY"
	case arrow.TIMESTAMP:
		return "TIMESTAMP"
	case arrow.DATE32, arrow.DATE64:
		return "DATE"
	case arrow.DURATION:
		return "INTERVAL DAY TO SECOND"
	case arrow.INTERVAL_MONTH_DAY_NANO:
		return "INTERVAL"
	case arrow.STRUCT:
		st := t.(*arrow.StructType)
		var b strings.Builder
		b.WriteString("STRUCT<")
		for i, f := range st.Fields() {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(quoteIdent(f.Name))
			b.WriteString(": ")
			b.WriteString(typeName(f.Type))
		}
		b.WriteString(">")
		return b.String()
	case arrow.LIST, arrow.LARGE_LIST, arrow.FIXED_SIZE_LIST:
		return "ARRAY<" + typeName(t.(arrow.ListLikeType).Elem()) + ">"
	case arrow.MAP:
		m := t.(*arrow.MapType)
		return "MAP<" + typeName(m.KeyType()) + ", " + typeName(m.ItemType()) + ">"
	}
	return strings.ToUpper(t.String())
}

// quoteIdent back-quotes a name unless it is a plain lower-case word.
func quoteIdent(s string) string {
	plain := s != ""
	for i, r := range s {
		if !(r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || i > 0 && r >= '0' && r <= '9') {
			plain = false
			break
		}
	}
	if plain {
		return s
	}
	return "`" + strings.ReplaceAll(s, "`", "``") + "`"
}

// ArrowType converts a SQL type to the Arrow type that CAST and from_json
// produce: TINYINT int8, SMALLINT int16, INT int32, BIGINT int64, FLOAT
// float32, DOUBLE float64, DECIMAL float64 (there is no decimal arithmetic:
// DECIMAL is read and computed as DOUBLE), STRING string, BINARY binary,
// BOOLEAN bool, DATE date32, TIMESTAMP and TIMESTAMP_NTZ timestamp[us, UTC],
// ARRAY list, MAP map and STRUCT struct, all nullable.
func ArrowType(t sql.DataType) (arrow.DataType, error) {
	switch t := t.(type) {
	case *sql.PrimitiveType:
		switch t.Kind {
		case sql.TypeString:
			return tString, nil
		case sql.TypeBinary:
			return tBinary, nil
		case sql.TypeBoolean:
			return tBool, nil
		case sql.TypeTinyInt:
			return arrow.PrimitiveTypes.Int8, nil
		case sql.TypeSmallInt:
			return arrow.PrimitiveTypes.Int16, nil
		case sql.TypeInt:
			return arrow.PrimitiveTypes.Int32, nil
		case sql.TypeBigInt:
			return tInt, nil
		case sql.TypeFloat:
			return arrow.PrimitiveTypes.Float32, nil
		case sql.TypeDouble:
			return tFloat, nil
		case sql.TypeDate:
			return tDate, nil
		case sql.TypeTimestamp, sql.TypeTimestampNTZ:
			return tTS, nil
		}
	case *sql.DecimalType:
		return tFloat, nil
	case *sql.ArrayType:
		e, err := ArrowType(t.Elem)
		if err != nil {
			return nil, err
		}
		return arrow.ListOf(e), nil
	case *sql.MapType:
		k, err := ArrowType(t.Key)
		if err != nil {
			return nil, err
		}
		v, err := ArrowType(t.Value)
		if err != nil {
			return nil, err
		}
		return arrow.MapOf(k, v), nil
	case *sql.StructType:
		fields := make([]arrow.Field, len(t.Fields))
		for i, f := range t.Fields {
			ft, err := ArrowType(f.Type)
			if err != nil {
				return nil, err
			}
			fields[i] = arrow.Field{Name: f.Name.Name, Type: ft, Nullable: true}
		}
		return arrow.StructOf(fields...), nil
	}
	return nil, &Error{Pos: t.Pos(), Msg: fmt.Sprintf("unsupported type %s", sql.Format(t))}
}

// commonType is the type two operands are converted to before they are
// compared (compare) or combined into one result (CASE, coalesce, IN).
// ok is false if they have none.
func commonType(a, b arrow.DataType, compare bool) (arrow.DataType, bool) {
	a, b = widenType(a), widenType(b)
	ka, kb := kindOf(a), kindOf(b)
	switch {
	case arrow.TypeEqual(a, b):
		return a, true
	case ka == kNull:
		return b, true
	case kb == kNull:
		return a, true
	case ka == kInt && kb == kFloat || ka == kFloat && kb == kInt:
		return tFloat, true
	case ka == kTS && kb == kDate || ka == kDate && kb == kTS:
		return tTS, true
	case ka == kString && (kb == kTS || kb == kDate) || kb == kString && (ka == kTS || ka == kDate):
		if compare {
			if ka == kString {
				return b, true
			}
			return a, true
		}
		return tString, true
	case ka == kString && (kb == kInt || kb == kFloat) || kb == kString && (ka == kInt || ka == kFloat):
		if compare {
			return tFloat, true
		}
		return tString, true
	case ka == kString && kb == kBinary || ka == kBinary && kb == kString:
		return tBinary, true
	case ka == kString && kb == kBool || ka == kBool && kb == kString:
		if compare {
			return tBool, true
		}
		return tString, true
	}
	return nil, false
}
