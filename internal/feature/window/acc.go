package window

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/sluice-dev/sluice/internal/online"
)

// acc is the partial aggregate of one feature over some events: a tile's,
// or a window's as tiles are combined. Which fields are used depends on
// the function.
type acc struct {
	n   int64        // count, avg, count_distinct (unused)
	f   float64      // avg's sum
	v   online.Value // sum (null until a value), min, max, last
	ts  int64        // last: the chosen value's event time
	set []string     // count_distinct: the encoded distinct values, sorted
}

// add folds one event's input into a.
func (a *acc) add(fn string, in online.Value, ts int64) {
	if in.IsNull() {
		return
	}
	switch fn {
	case "count":
		a.n++
	case "sum":
		a.v = addValues(a.v, in)
	case "avg":
		a.f += toFloat(in)
		a.n++
	case "min":
		if a.v.IsNull() || compareValues(in, a.v) < 0 {
			a.v = in
		}
	case "max":
		if a.v.IsNull() || compareValues(in, a.v) > 0 {
			a.v = in
		}
	case "count_distinct":
		k := string(online.AppendValue(nil, in))
		if i, found := slices.BinarySearch(a.set, k); !found {
			a.set = slices.Insert(a.set, i, k)
		}
	case "last":
		if a.v.IsNull() || laterLast(ts, in, a.ts, a.v) {
			a.v, a.ts = in, ts
		}
	}
}

// merge folds b (another set of events) into a.
func (a *acc) merge(fn string, b *acc) {
	switch fn {
	case "count":
		a.n += b.n
	case "avg":
		a.f += b.f
		a.n += b.n
	case "count_distinct":
		if len(b.set) == 0 {
			return
		}
		if len(a.set) == 0 {
			a.set = append([]string(nil), b.set...)
			return
		}
		merged := make([]string, 0, len(a.set)+len(b.set))
		i, j := 0, 0
		for i < len(a.set) && j < len(b.set) {
			switch c := strings.Compare(a.set[i], b.set[j]); {
			case c < 0:
				merged = append(merged, a.set[i])
				i++
			case c > 0:
				merged = append(merged, b.set[j])
				j++
			default:
				merged = append(merged, a.set[i])
				i, j = i+1, j+1
			}
		}
		merged = append(merged, a.set[i:]...)
		a.set = append(merged, b.set[j:]...)
	default: // sum, min, max, last: a value folded in like one event
		a.add(fn, b.v, b.ts)
	}
}

// result is the feature's value over the events folded into a.
func (a *acc) result(fn string) online.Value {
	switch fn {
	case "count":
		return online.Int64(a.n)
	case "avg":
		if a.n == 0 {
			return online.Null()
		}
		return online.Float64(a.f / float64(a.n))
	case "count_distinct":
		return online.Int64(int64(len(a.set)))
	}
	return a.v
}

// laterLast reports whether (ts, v) replaces (ots, ov) as the last value:
// the later event wins, and on equal times the larger value, so that the
// result does not depend on the order events are read in.
func laterLast(ts int64, v online.Value, ots int64, ov online.Value) bool {
	if ts != ots {
		return ts > ots
	}
	return compareValues(v, ov) > 0
}

func toFloat(v online.Value) float64 {
	switch v.Kind() {
	case online.KindInt64, online.KindTimestamp:
		return float64(v.Int64())
	case online.KindFloat64:
		return v.Float64()
	case online.KindBool:
		if v.Bool() {
			return 1
		}
	}
	return 0
}

func addValues(a, b online.Value) online.Value {
	switch {
	case a.IsNull():
		if b.Kind() == online.KindBool {
			return online.Int64(int64(toFloat(b)))
		}
		return b
	case a.Kind() == online.KindInt64 && (b.Kind() == online.KindInt64 || b.Kind() == online.KindBool):
		return online.Int64(a.Int64() + int64(toFloat(b)))
	}
	return online.Float64(toFloat(a) + toFloat(b))
}

// compareValues orders two non-null values of one column (so of one
// kind); values of different kinds order by kind.
func compareValues(a, b online.Value) int {
	if a.Kind() != b.Kind() {
		return cmp.Compare(a.Kind(), b.Kind())
	}
	switch a.Kind() {
	case online.KindInt64, online.KindTimestamp:
		return cmp.Compare(a.Int64(), b.Int64())
	case online.KindFloat64:
		return cmp.Compare(a.Float64(), b.Float64())
	case online.KindString:
		return strings.Compare(a.Str(), b.Str())
	case online.KindBool:
		return cmp.Compare(toFloat(a), toFloat(b))
	}
	return 0
}

var errCorrupt = errors.New("window: corrupt tile blob")

// appendAcc appends the stored form of a for function fn.
func appendAcc(dst []byte, fn string, a *acc) []byte {
	switch fn {
	case "count":
		return binary.AppendUvarint(dst, uint64(a.n))
	case "avg":
		dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(a.f))
		return binary.AppendUvarint(dst, uint64(a.n))
	case "count_distinct":
		dst = binary.AppendUvarint(dst, uint64(len(a.set)))
		for _, s := range a.set {
			dst = binary.AppendUvarint(dst, uint64(len(s)))
			dst = append(dst, s...)
		}
		return dst
	case "last":
		dst = binary.AppendVarint(dst, a.ts)
	}
	return online.AppendValue(dst, a.v)
}

// decodeAcc reads what appendAcc wrote.
func decodeAcc(b []byte, fn string, a *acc) ([]byte, error) {
	var err error
	switch fn {
	case "count":
		var n uint64
		n, b, err = uvarint(b)
		a.n = int64(n)
		return b, err
	case "avg":
		if len(b) < 8 {
			return nil, errCorrupt
		}
		a.f = math.Float64frombits(binary.LittleEndian.Uint64(b))
		var n uint64
		n, b, err = uvarint(b[8:])
		a.n = int64(n)
		return b, err
	case "count_distinct":
		var k uint64
		if k, b, err = uvarint(b); err != nil {
			return nil, err
		}
		if k > uint64(len(b)) {
			return nil, errCorrupt
		}
		a.set = make([]string, 0, k)
		for range k {
			var l uint64
			if l, b, err = uvarint(b); err != nil {
				return nil, err
			}
			if l > uint64(len(b)) {
				return nil, errCorrupt
			}
			a.set = append(a.set, string(b[:l]))
			b = b[l:]
		}
		return b, nil
	case "last":
		ts, n := binary.Varint(b)
		if n <= 0 {
			return nil, errCorrupt
		}
		a.ts, b = ts, b[n:]
	}
	a.v, b, err = online.DecodeValue(b)
	return b, err
}

func uvarint(b []byte) (uint64, []byte, error) {
	x, n := binary.Uvarint(b)
	if n <= 0 {
		return 0, nil, fmt.Errorf("%w: bad varint", errCorrupt)
	}
	return x, b[n:], nil
}
