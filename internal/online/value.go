package online

import (
	"fmt"
	"math"
	"strconv"
	"time"
)

// Kind is the type of a [Value]. Its numeric values are part of the stored
// format (see the package documentation) and never change.
type Kind uint8

// The kinds of value a feature or an entity key column holds.
const (
	KindNull      Kind = 0
	KindBool      Kind = 1
	KindInt64     Kind = 2
	KindFloat64   Kind = 3
	KindString    Kind = 4
	KindTimestamp Kind = 5

	numKinds = 6
)

var kindNames = [numKinds]string{"null", "bool", "int64", "float64", "string", "timestamp"}

func (k Kind) String() string {
	if k < numKinds {
		return kindNames[k]
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// Value is one feature value or one entity key column: null, a bool, an
// int64, a float64, a string or a timestamp (nanoseconds since the Unix
// epoch, UTC). The zero Value is null. Values are immutable and small (32
// bytes); pass them by value.
type Value struct {
	kind Kind
	num  uint64 // bool (0/1), int64, float64 bits, timestamp nanoseconds
	str  string
}

// Null returns the null value.
func Null() Value { return Value{} }

// Bool returns a bool value.
func Bool(b bool) Value {
	v := Value{kind: KindBool}
	if b {
		v.num = 1
	}
	return v
}

// Int64 returns an int64 value.
func Int64(i int64) Value { return Value{kind: KindInt64, num: uint64(i)} }

// Float64 returns a float64 value. The bits are kept exactly (NaN payloads
// and -0 included) in feature values; entity keys canonicalise them (see
// [AppendKey]).
func Float64(f float64) Value { return Value{kind: KindFloat64, num: math.Float64bits(f)} }

// String returns a string value.
func String(s string) Value { return Value{kind: KindString, str: s} }

// Timestamp returns a timestamp value with nanosecond precision. Times
// outside the int64 nanosecond range (years 1678 to 2262) are clamped by
// [time.Time.UnixNano]'s rules (the result is undefined), so callers keep
// timestamps inside it.
func Timestamp(t time.Time) Value { return Value{kind: KindTimestamp, num: uint64(t.UnixNano())} }

// TimestampNanos returns a timestamp value of ns nanoseconds since the Unix
// epoch.
func TimestampNanos(ns int64) Value { return Value{kind: KindTimestamp, num: uint64(ns)} }

// Kind returns v's kind.
func (v Value) Kind() Kind { return v.kind }

// IsNull reports whether v is null.
func (v Value) IsNull() bool { return v.kind == KindNull }

// Bool returns v's bool; false unless v is a bool.
func (v Value) Bool() bool { return v.kind == KindBool && v.num != 0 }

// Int64 returns v's int64; 0 unless v is an int64.
func (v Value) Int64() int64 {
	if v.kind != KindInt64 {
		return 0
	}
	return int64(v.num)
}

// Float64 returns v's float64; 0 unless v is a float64.
func (v Value) Float64() float64 {
	if v.kind != KindFloat64 {
		return 0
	}
	return math.Float64frombits(v.num)
}

// Str returns v's string; "" unless v is a string. (String formats any
// value for humans.)
func (v Value) Str() string { return v.str }

// TimeNanos returns v's timestamp in nanoseconds since the Unix epoch; 0
// unless v is a timestamp.
func (v Value) TimeNanos() int64 {
	if v.kind != KindTimestamp {
		return 0
	}
	return int64(v.num)
}

// Time returns v's timestamp in UTC; the zero Time unless v is a timestamp.
func (v Value) Time() time.Time {
	if v.kind != KindTimestamp {
		return time.Time{}
	}
	return time.Unix(0, int64(v.num)).UTC()
}

// Equal reports whether v and w have the same kind and the same bits (so
// NaN equals the same NaN, and -0 does not equal 0).
func (v Value) Equal(w Value) bool { return v == w }

// String formats v for humans and test failures: null, true, 42, 1.5,
// "text" (quoted), or an RFC 3339 timestamp.
func (v Value) String() string {
	switch v.kind {
	case KindNull:
		return "null"
	case KindBool:
		return strconv.FormatBool(v.Bool())
	case KindInt64:
		return strconv.FormatInt(v.Int64(), 10)
	case KindFloat64:
		return strconv.FormatFloat(v.Float64(), 'g', -1, 64)
	case KindString:
		return strconv.Quote(v.str)
	case KindTimestamp:
		return v.Time().Format(time.RFC3339Nano)
	}
	return v.kind.String()
}

// Key is an entity key: the values of a feature table's primary-key
// columns, in the table's key order. Callers must use each column's
// declared kind consistently: Int64(5) and String("5") are different keys.
type Key []Value

// Row is one feature-table row to write: the entity's key, its feature
// values and the row's event time. Names[i] names Values[i]; the rows of a
// batch usually share one Names slice.
//
// A row is written whole: when it wins (see [Store.Write]) it replaces the
// stored row, and a feature absent from it reads as NOT_FOUND afterwards.
type Row struct {
	Key    Key
	Names  []string
	Values []Value
	// EventTime orders writes of one entity: a row never replaces a stored
	// row with a later EventTime. It must lie within the int64 nanosecond
	// range (years 1678 to 2262).
	EventTime time.Time
	// Version breaks ties between rows with equal EventTime: the larger
	// Version wins, and with equal versions the last write wins. Writers
	// that replay (for example after a crash) set it to something that
	// increases with the source's order, such as a commit sequence number,
	// so that a replayed old row never replaces a newer one with the same
	// EventTime. Zero is fine when ties cannot happen or do not matter.
	Version uint64
}

// Status is the status of one feature of one entity in a [Result]. The
// numeric values and names are Feast's FieldStatus.
type Status uint8

// Feature statuses, as in Feast's serving.FieldStatus.
const (
	// StatusInvalid is the zero Status; a Store never returns it.
	StatusInvalid Status = 0
	// Present: the entity's row holds a non-null value for the feature and
	// the row is within the table's TTL.
	Present Status = 1
	// NullValue: the row holds the feature, and its value is null.
	NullValue Status = 2
	// NotFound: the entity has no row, or its row does not hold the
	// feature (an unknown feature name included).
	NotFound Status = 3
	// OutsideMaxAge: the row holds the feature but is older than the
	// table's TTL at the read time. The value is returned as null.
	OutsideMaxAge Status = 4
)

var statusNames = [...]string{"INVALID", "PRESENT", "NULL_VALUE", "NOT_FOUND", "OUTSIDE_MAX_AGE"}

// String returns Feast's name for s, e.g. "PRESENT".
func (s Status) String() string {
	if int(s) < len(statusNames) {
		return statusNames[s]
	}
	return fmt.Sprintf("Status(%d)", uint8(s))
}

// Result is what [Store.Get] returns for one entity key. Values[i] and
// Statuses[i] belong to the i-th requested feature.
type Result struct {
	// Found reports whether the entity has a row (expired or not).
	Found bool
	// EventTime and Version are the stored row's; zero when !Found.
	EventTime time.Time
	Version   uint64
	// Values holds the feature values; null unless the status is Present.
	Values []Value
	// Statuses holds each feature's status.
	Statuses []Status
}
