package feature

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
)

// keyClass groups the Arrow types that compare equal as join keys: every
// integer width is one class (a label's int32 user_id matches a feature
// table's int64 one), strings and binary are another.
type keyClass int

const (
	classNone keyClass = iota
	classInt
	classString
	classBool
	classTime
	classFloat
)

func (c keyClass) String() string {
	return [...]string{"unsupported", "integer", "string", "boolean", "timestamp", "floating point"}[c]
}

func classOf(t arrow.DataType) keyClass {
	switch t.ID() {
	case arrow.INT8, arrow.INT16, arrow.INT32, arrow.INT64, arrow.UINT8, arrow.UINT16, arrow.UINT32, arrow.UINT64:
		return classInt
	case arrow.STRING, arrow.LARGE_STRING, arrow.BINARY, arrow.LARGE_BINARY, arrow.STRING_VIEW, arrow.BINARY_VIEW:
		return classString
	case arrow.BOOL:
		return classBool
	case arrow.TIMESTAMP, arrow.DATE32, arrow.DATE64:
		return classTime
	case arrow.FLOAT32, arrow.FLOAT64:
		return classFloat
	}
	return classNone
}

// keyEncoder appends a row's key columns to a byte string that is equal for
// equal keys across the types of one keyClass. It is not goroutine-safe.
type keyEncoder struct {
	cols []arrow.Array
	buf  []byte
}

func (k *keyEncoder) reset(cols []arrow.Array) { k.cols = cols }

// encode returns the key of row i (valid until the next call), or false if
// any key column is null there (a null key matches nothing).
func (k *keyEncoder) encode(i int) ([]byte, bool) {
	b := k.buf[:0]
	single := len(k.cols) == 1
	for _, c := range k.cols {
		if c.IsNull(i) {
			return nil, false
		}
		switch a := c.(type) {
		case *array.Int64:
			b = binary.LittleEndian.AppendUint64(b, uint64(a.Value(i)))
		case *array.Int32:
			b = binary.LittleEndian.AppendUint64(b, uint64(int64(a.Value(i))))
		case *array.Int16:
			b = binary.LittleEndian.AppendUint64(b, uint64(int64(a.Value(i))))
		case *array.Int8:
			b = binary.LittleEndian.AppendUint64(b, uint64(int64(a.Value(i))))
		case *array.Uint64:
			b = binary.LittleEndian.AppendUint64(b, a.Value(i))
		case *array.Uint32:
			b = binary.LittleEndian.AppendUint64(b, uint64(a.Value(i)))
		case *array.Uint16:
			b = binary.LittleEndian.AppendUint64(b, uint64(a.Value(i)))
		case *array.Uint8:
			b = binary.LittleEndian.AppendUint64(b, uint64(a.Value(i)))
		case *array.String:
			b = appendBytes(b, a.Value(i), single)
		case *array.LargeString:
			b = appendBytes(b, a.Value(i), single)
		case *array.StringView:
			b = appendBytes(b, a.Value(i), single)
		case *array.Binary:
			b = appendRaw(b, a.Value(i), single)
		case *array.LargeBinary:
			b = appendRaw(b, a.Value(i), single)
		case *array.BinaryView:
			b = appendRaw(b, a.Value(i), single)
		case *array.Boolean:
			if a.Value(i) {
				b = append(b, 1)
			} else {
				b = append(b, 0)
			}
		case *array.Float64:
			b = binary.LittleEndian.AppendUint64(b, math.Float64bits(a.Value(i)))
		case *array.Float32:
			b = binary.LittleEndian.AppendUint64(b, math.Float64bits(float64(a.Value(i))))
		default:
			us, ok := timeMicros(c, i)
			if !ok {
				return nil, false
			}
			b = binary.LittleEndian.AppendUint64(b, uint64(us))
		}
	}
	k.buf = b
	return b, true
}

func appendBytes(b []byte, s string, single bool) []byte {
	if !single {
		b = binary.AppendUvarint(b, uint64(len(s)))
	}
	return append(b, s...)
}

func appendRaw(b []byte, s []byte, single bool) []byte {
	if !single {
		b = binary.AppendUvarint(b, uint64(len(s)))
	}
	return append(b, s...)
}

// timeMicros returns row i of a timestamp or date column as microseconds
// since the Unix epoch (time zones are ignored: a timestamp is an instant),
// or false if it is null or not a time column.
func timeMicros(c arrow.Array, i int) (int64, bool) {
	if c.IsNull(i) {
		return 0, false
	}
	switch a := c.(type) {
	case *array.Timestamp:
		v := int64(a.Value(i))
		switch a.DataType().(*arrow.TimestampType).Unit {
		case arrow.Second:
			return v * 1e6, true
		case arrow.Millisecond:
			return v * 1e3, true
		case arrow.Microsecond:
			return v, true
		default:
			return floorDiv(v, 1e3), true
		}
	case *array.Date32:
		return int64(a.Value(i)) * 86400e6, true
	case *array.Date64:
		return int64(a.Value(i)) * 1e3, true
	}
	return 0, false
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

// timesOf fills dst with column c as microseconds (timeMicros) and valid
// with whether each row is non-null.
func timesOf(c arrow.Array, dst []int64, valid []bool) {
	if ts, ok := c.(*array.Timestamp); ok && ts.DataType().(*arrow.TimestampType).Unit == arrow.Microsecond {
		vals := ts.TimestampValues()
		for i := range dst {
			dst[i], valid[i] = int64(vals[i]), ts.IsValid(i)
		}
		return
	}
	for i := range dst {
		dst[i], valid[i] = timeMicros(c, i)
	}
}

func checkTimeColumn(what string, t arrow.DataType) error {
	if classOf(t) != classTime {
		return fmt.Errorf("%w: %s is %s; want a timestamp or date column", ErrInvalid, what, t)
	}
	return nil
}
