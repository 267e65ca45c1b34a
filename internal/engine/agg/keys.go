package agg

import (
	"encoding/binary"
	"fmt"
	"math"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
)

// valKind is how values of a type are held in state: integers (int64,
// int32, bool, timestamp, date32) as int64, floats as float64, strings as
// string.
type valKind uint8

const (
	vNone valKind = iota
	vInt
	vFloat
	vStr
)

func valKindOf(t arrow.DataType) valKind {
	if t == nil {
		return vNone
	}
	switch t.ID() {
	case arrow.INT64, arrow.INT32, arrow.BOOL, arrow.TIMESTAMP, arrow.DATE32:
		return vInt
	case arrow.FLOAT64:
		return vFloat
	case arrow.STRING:
		return vStr
	}
	return vNone
}

// keyKind selects the group-key representation: one integer-like key
// (map[int64]), one string key (map[string]), or anything else as an
// order-preserving byte encoding of the whole tuple (map[string]).
type keyKind uint8

const (
	keyInt keyKind = iota + 1
	keyStr
	keyGen
)

func keyKindOf(keys []arrow.Field) keyKind {
	if len(keys) == 1 {
		switch valKindOf(keys[0].Type) {
		case vInt:
			return keyInt
		case vStr:
			return keyStr
		}
	}
	return keyGen
}

// keyIndex maps a group key to an int32 (a slot, or a session list).
type keyIndex struct {
	ints map[int64]int32
	strs map[string]int32
	null int32 // the null key's value (keyInt, keyStr); -1 if absent
	n    int
}

func newKeyIndex() keyIndex {
	return keyIndex{ints: map[int64]int32{}, strs: map[string]int32{}, null: -1}
}

// batchKeys is one Add call's key columns, prepared for lookups.
type batchKeys struct {
	kind  keyKind
	ints  []int64 // keyInt
	nulls arrow.Array
	str   *array.String // keyStr
	gen   []byte        // keyGen: row r's key is gen[off[r]:off[r+1]]
	off   []int32
	ibuf  []int64
}

func (b *batchKeys) prepare(kind keyKind, cols []arrow.Array, n int) {
	b.kind = kind
	b.nulls = nil
	switch kind {
	case keyInt:
		b.ints = intValues(cols[0], &b.ibuf)
		if cols[0].NullN() > 0 {
			b.nulls = cols[0]
		}
	case keyStr:
		b.str = cols[0].(*array.String)
		if cols[0].NullN() > 0 {
			b.nulls = cols[0]
		}
	case keyGen:
		b.gen = b.gen[:0]
		b.off = append(b.off[:0], 0)
		for r := 0; r < n; r++ {
			for _, c := range cols {
				b.gen = appendKeyValue(b.gen, c, r)
			}
			b.off = append(b.off, int32(len(b.gen)))
		}
	}
}

func (b *batchKeys) genKey(r int) []byte { return b.gen[b.off[r]:b.off[r+1]] }

// get returns the value stored for row r's key.
func (b *batchKeys) get(x *keyIndex, r int) (int32, bool) {
	switch b.kind {
	case keyInt:
		if b.nulls != nil && b.nulls.IsNull(r) {
			return x.null, x.null >= 0
		}
		v, ok := x.ints[b.ints[r]]
		return v, ok
	case keyStr:
		if b.nulls != nil && b.nulls.IsNull(r) {
			return x.null, x.null >= 0
		}
		v, ok := x.strs[b.str.Value(r)]
		return v, ok
	default:
		v, ok := x.strs[string(b.genKey(r))]
		return v, ok
	}
}

// intValues returns the values of an integer-like array as int64s, using
// buf for conversion when needed. Values under nulls are unspecified.
func intValues(a arrow.Array, buf *[]int64) []int64 {
	switch a := a.(type) {
	case *array.Int64:
		return a.Int64Values()
	case *array.Int32:
		out := grow(buf, a.Len())
		for i, v := range a.Int32Values() {
			out[i] = int64(v)
		}
		return out
	case *array.Timestamp:
		out := grow(buf, a.Len())
		for i, v := range a.TimestampValues() {
			out[i] = int64(v)
		}
		return out
	case *array.Date32:
		out := grow(buf, a.Len())
		for i, v := range a.Date32Values() {
			out[i] = int64(v)
		}
		return out
	case *array.Boolean:
		out := grow(buf, a.Len())
		for i := range out {
			out[i] = 0
			if a.Value(i) {
				out[i] = 1
			}
		}
		return out
	}
	panic(fmt.Sprintf("agg: intValues of %T", a)) // unreachable: types are checked in Add
}

func grow[T any](buf *[]T, n int) []T {
	if cap(*buf) < n {
		*buf = make([]T, n)
	}
	*buf = (*buf)[:n]
	return *buf
}

// Key encoding: a tuple of values as bytes whose lexicographic order is the
// output order (nulls first). Per value: 0x00 for null, else 0x01 and
//   - integers: 8 bytes big-endian of v XOR 1<<63;
//   - float64: 8 bytes big-endian of the order-preserving bit transform,
//     with -0 folded into 0 and every NaN into one NaN, as Spark's grouping
//     normalises them;
//   - string: the bytes with 0x00 escaped as 0x00 0xFF, then 0x00 0x01.
const (
	encNull    = 0x00
	encPresent = 0x01
)

func appendKeyValue(dst []byte, c arrow.Array, r int) []byte {
	if c.IsNull(r) {
		return append(dst, encNull)
	}
	dst = append(dst, encPresent)
	switch c := c.(type) {
	case *array.Int64:
		return appendEncInt(dst, c.Value(r))
	case *array.Int32:
		return appendEncInt(dst, int64(c.Value(r)))
	case *array.Timestamp:
		return appendEncInt(dst, int64(c.Value(r)))
	case *array.Date32:
		return appendEncInt(dst, int64(c.Value(r)))
	case *array.Boolean:
		v := int64(0)
		if c.Value(r) {
			v = 1
		}
		return appendEncInt(dst, v)
	case *array.Float64:
		return appendEncFloat(dst, c.Value(r))
	case *array.String:
		return appendEncString(dst, c.Value(r))
	}
	panic(fmt.Sprintf("agg: key of %T", c)) // unreachable: types are checked in Add
}

func appendEncInt(dst []byte, v int64) []byte {
	return binary.BigEndian.AppendUint64(dst, uint64(v)^(1<<63))
}

func normFloat(f float64) float64 {
	if f == 0 {
		return 0
	}
	if f != f {
		return math.NaN()
	}
	return f
}

func appendEncFloat(dst []byte, f float64) []byte {
	b := math.Float64bits(normFloat(f))
	if b&(1<<63) != 0 {
		b = ^b
	} else {
		b |= 1 << 63
	}
	return binary.BigEndian.AppendUint64(dst, b)
}

func appendEncString(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if s[i] == 0 {
			dst = append(dst, 0, 0xFF)
		} else {
			dst = append(dst, s[i])
		}
	}
	return append(dst, 0, 1)
}

// keyValue is one decoded key value.
type keyValue struct {
	null bool
	i    int64
	f    float64
	s    string
}

// decodeKey decodes an encoded key tuple of the given kinds into out. It
// returns an error (never panics) for malformed input.
func decodeKey(enc string, kinds []valKind, out []keyValue) error {
	p := 0
	for k, vk := range kinds {
		if p >= len(enc) {
			return fmt.Errorf("key truncated")
		}
		tag := enc[p]
		p++
		if tag == encNull {
			out[k] = keyValue{null: true}
			continue
		}
		if tag != encPresent {
			return fmt.Errorf("bad key tag %#x", tag)
		}
		switch vk {
		case vInt, vFloat:
			if len(enc)-p < 8 {
				return fmt.Errorf("key truncated")
			}
			u := binary.BigEndian.Uint64([]byte(enc[p : p+8]))
			p += 8
			if vk == vInt {
				out[k] = keyValue{i: int64(u ^ (1 << 63))}
			} else {
				if u&(1<<63) != 0 {
					u &^= 1 << 63
				} else {
					u = ^u
				}
				out[k] = keyValue{f: math.Float64frombits(u)}
			}
		case vStr:
			var sb strings.Builder
			for {
				if p >= len(enc) {
					return fmt.Errorf("key string unterminated")
				}
				c := enc[p]
				p++
				if c != 0 {
					sb.WriteByte(c)
					continue
				}
				if p >= len(enc) {
					return fmt.Errorf("key string unterminated")
				}
				e := enc[p]
				p++
				if e == 0xFF {
					sb.WriteByte(0)
				} else if e == 1 {
					break
				} else {
					return fmt.Errorf("bad key string escape %#x", e)
				}
			}
			out[k] = keyValue{s: sb.String()}
		default:
			return fmt.Errorf("bad key kind")
		}
	}
	if p != len(enc) {
		return fmt.Errorf("key has %d trailing bytes", len(enc)-p)
	}
	return nil
}

// encodeKeyValues is the inverse of decodeKey.
func encodeKeyValues(dst []byte, kinds []valKind, vals []keyValue) []byte {
	for k, vk := range kinds {
		v := vals[k]
		if v.null {
			dst = append(dst, encNull)
			continue
		}
		dst = append(dst, encPresent)
		switch vk {
		case vInt:
			dst = appendEncInt(dst, v.i)
		case vFloat:
			dst = appendEncFloat(dst, v.f)
		case vStr:
			dst = appendEncString(dst, v.s)
		}
	}
	return dst
}
