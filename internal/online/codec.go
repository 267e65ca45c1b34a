package online

import (
	"encoding/binary"
	"fmt"
	"math"
	"time"
)

// The codecs below are the stored format; the package documentation draws
// them. Decoders are strict: they accept exactly what the encoders produce
// (minimal varints, 0/1 bools, no trailing bytes), so that decoding and
// re-encoding gives back the input, and they never panic on any input.

const (
	rowFormatV1 = 0x01
	orderLen    = 16 // event time (8) + version (8)
	rowHeadLen  = 1 + orderLen
)

// canonicalNaN is the bit pattern every NaN in an entity key encodes as.
const canonicalNaN = 0x7ff8000000000001

// AppendKey appends the canonical encoding of k to dst and returns the
// extended slice. Equal keys encode equally and different keys differently:
// float64 columns are canonicalised first (-0 as 0, every NaN as one NaN).
// The encoding is
//
//	key    := uvarint(len(k)) column...
//	column := kind(1 byte) payload
//	payload: null: none; bool: 0x00|0x01; int64 and timestamp: 8 bytes
//	         big-endian with the sign bit flipped; float64: 8 bytes
//	         big-endian IEEE 754 bits; string: uvarint(len) bytes
func AppendKey(dst []byte, k Key) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(k)))
	for _, v := range k {
		dst = append(dst, byte(v.kind))
		switch v.kind {
		case KindBool:
			dst = append(dst, byte(v.num))
		case KindInt64, KindTimestamp:
			dst = binary.BigEndian.AppendUint64(dst, v.num^(1<<63))
		case KindFloat64:
			dst = binary.BigEndian.AppendUint64(dst, canonicalFloatBits(v.num))
		case KindString:
			dst = binary.AppendUvarint(dst, uint64(len(v.str)))
			dst = append(dst, v.str...)
		}
	}
	return dst
}

func canonicalFloatBits(bits uint64) uint64 {
	f := math.Float64frombits(bits)
	switch {
	case f == 0:
		return 0
	case f != f:
		return canonicalNaN
	}
	return bits
}

// DecodeKey decodes an entity key encoded by [AppendKey]. Invariants (the
// fuzzer checks them): it never panics; it accepts only canonical encodings,
// so AppendKey(nil, k) equals b for every b it accepts; it accepts every
// key that AppendKey produces for a non-empty key. Errors wrap [ErrCorrupt].
func DecodeKey(b []byte) (Key, error) {
	n, b, err := uvarint(b)
	if err != nil {
		return nil, fmt.Errorf("decoding key length: %w", err)
	}
	if n == 0 || n > uint64(len(b)) { // every column takes at least one byte
		return nil, fmt.Errorf("%w: key of %d columns in %d bytes", ErrCorrupt, n, len(b))
	}
	k := make(Key, n)
	for i := range k {
		if len(b) == 0 {
			return nil, fmt.Errorf("%w: key column %d missing", ErrCorrupt, i)
		}
		kind := Kind(b[0])
		b = b[1:]
		v := Value{kind: kind}
		switch kind {
		case KindNull:
		case KindBool:
			if len(b) < 1 || b[0] > 1 {
				return nil, fmt.Errorf("%w: key column %d: bad bool", ErrCorrupt, i)
			}
			v.num, b = uint64(b[0]), b[1:]
		case KindInt64, KindTimestamp, KindFloat64:
			if len(b) < 8 {
				return nil, fmt.Errorf("%w: key column %d: short %s", ErrCorrupt, i, kind)
			}
			v.num, b = binary.BigEndian.Uint64(b), b[8:]
			if kind == KindFloat64 {
				if canonicalFloatBits(v.num) != v.num {
					return nil, fmt.Errorf("%w: key column %d: non-canonical float64", ErrCorrupt, i)
				}
			} else {
				v.num ^= 1 << 63
			}
		case KindString:
			var s []byte
			if s, b, err = lenPrefixed(b); err != nil {
				return nil, fmt.Errorf("key column %d: %w", i, err)
			}
			v.str = string(s)
		default:
			return nil, fmt.Errorf("%w: key column %d: unknown kind %d", ErrCorrupt, i, kind)
		}
		k[i] = v
	}
	if len(b) != 0 {
		return nil, fmt.Errorf("%w: %d bytes after key", ErrCorrupt, len(b))
	}
	return k, nil
}

// appendValue appends v's encoding:
//
//	value := kind(1 byte) payload
//	payload: null: none; bool: 0x00|0x01; int64 and timestamp: zigzag
//	         uvarint; float64: 8 bytes little-endian IEEE 754 bits;
//	         string: uvarint(len) bytes
func appendValue(dst []byte, v Value) []byte {
	dst = append(dst, byte(v.kind))
	switch v.kind {
	case KindBool:
		dst = append(dst, byte(v.num))
	case KindInt64, KindTimestamp:
		dst = binary.AppendVarint(dst, int64(v.num))
	case KindFloat64:
		dst = binary.LittleEndian.AppendUint64(dst, v.num)
	case KindString:
		dst = binary.AppendUvarint(dst, uint64(len(v.str)))
		dst = append(dst, v.str...)
	}
	return dst
}

// decodeValue decodes one value from the front of b and returns the rest.
func decodeValue(b []byte) (Value, []byte, error) {
	if len(b) == 0 {
		return Value{}, nil, fmt.Errorf("%w: value missing", ErrCorrupt)
	}
	v := Value{kind: Kind(b[0])}
	b = b[1:]
	switch v.kind {
	case KindNull:
	case KindBool:
		if len(b) < 1 || b[0] > 1 {
			return Value{}, nil, fmt.Errorf("%w: bad bool", ErrCorrupt)
		}
		v.num, b = uint64(b[0]), b[1:]
	case KindInt64, KindTimestamp:
		x, n := binary.Varint(b)
		if n <= 0 || n != varintLen(x) {
			return Value{}, nil, fmt.Errorf("%w: bad %s varint", ErrCorrupt, v.kind)
		}
		v.num, b = uint64(x), b[n:]
	case KindFloat64:
		if len(b) < 8 {
			return Value{}, nil, fmt.Errorf("%w: short float64", ErrCorrupt)
		}
		v.num, b = binary.LittleEndian.Uint64(b), b[8:]
	case KindString:
		s, rest, err := lenPrefixed(b)
		if err != nil {
			return Value{}, nil, err
		}
		v.str, b = string(s), rest
	default:
		return Value{}, nil, fmt.Errorf("%w: unknown kind %d", ErrCorrupt, v.kind)
	}
	return v, b, nil
}

// encodeOrder encodes the (event time, version) pair that orders writes as
// 16 bytes whose bytewise order is the pair's order: the event time's
// nanoseconds big-endian with the sign bit flipped, then the version
// big-endian.
func encodeOrder(dst []byte, eventNanos int64, version uint64) []byte {
	dst = binary.BigEndian.AppendUint64(dst, uint64(eventNanos)^(1<<63))
	return binary.BigEndian.AppendUint64(dst, version)
}

func decodeOrder(b []byte) (eventNanos int64, version uint64) {
	return int64(binary.BigEndian.Uint64(b) ^ (1 << 63)), binary.BigEndian.Uint64(b[8:])
}

// appendRow appends the stored form of r (validated by the caller):
//
//	row     := 0x01 order(16 bytes) uvarint(n) feature...
//	feature := uvarint(len(name)) name value
func appendRow(dst []byte, r *Row) []byte {
	dst = append(dst, rowFormatV1)
	dst = encodeOrder(dst, r.EventTime.UnixNano(), r.Version)
	dst = binary.AppendUvarint(dst, uint64(len(r.Names)))
	for i, name := range r.Names {
		dst = binary.AppendUvarint(dst, uint64(len(name)))
		dst = append(dst, name...)
		dst = appendValue(dst, r.Values[i])
	}
	return dst
}

// rowOrder returns the 16 order bytes of a stored row.
func rowOrder(b []byte) ([]byte, error) {
	if len(b) < rowHeadLen || b[0] != rowFormatV1 {
		return nil, fmt.Errorf("%w: bad row header", ErrCorrupt)
	}
	return b[1:rowHeadLen], nil
}

// decodeRow decodes a whole stored row; the entity key is left nil.
// Invariants (the fuzzer checks them): it never panics; appendRow of the
// result equals b for every b it accepts. Errors wrap [ErrCorrupt].
func decodeRow(b []byte) (Row, error) {
	var r Row
	err := scanRow(b, func(ts int64, version uint64, n int) {
		r.EventTime = time.Unix(0, ts).UTC()
		r.Version = version
		r.Names = make([]string, 0, n)
		r.Values = make([]Value, 0, n)
	}, func(name []byte, v Value) {
		r.Names = append(r.Names, string(name))
		r.Values = append(r.Values, v)
	})
	return r, err
}

// scanRow decodes a stored row, calling head once and then feature for
// each feature in stored order. name is only valid during the call.
func scanRow(b []byte, head func(ts int64, version uint64, n int), feature func(name []byte, v Value)) error {
	order, err := rowOrder(b)
	if err != nil {
		return err
	}
	ts, version := decodeOrder(order)
	b = b[rowHeadLen:]
	n, b, err := uvarint(b)
	if err != nil {
		return fmt.Errorf("decoding feature count: %w", err)
	}
	if n > uint64(len(b))/3 { // name length, >= 1 name byte, kind
		return fmt.Errorf("%w: %d features in %d bytes", ErrCorrupt, n, len(b))
	}
	head(ts, version, int(n))
	for i := 0; i < int(n); i++ {
		var name []byte
		if name, b, err = lenPrefixed(b); err != nil {
			return fmt.Errorf("feature %d name: %w", i, err)
		}
		if len(name) == 0 {
			return fmt.Errorf("%w: feature %d: empty name", ErrCorrupt, i)
		}
		var v Value
		if v, b, err = decodeValue(b); err != nil {
			return fmt.Errorf("feature %q: %w", name, err)
		}
		feature(name, v)
	}
	if len(b) != 0 {
		return fmt.Errorf("%w: %d bytes after row", ErrCorrupt, len(b))
	}
	return nil
}

func uvarint(b []byte) (uint64, []byte, error) {
	x, n := binary.Uvarint(b)
	if n <= 0 || n != uvarintLen(x) {
		return 0, nil, fmt.Errorf("%w: bad uvarint", ErrCorrupt)
	}
	return x, b[n:], nil
}

func lenPrefixed(b []byte) (s, rest []byte, err error) {
	n, b, err := uvarint(b)
	if err != nil {
		return nil, nil, err
	}
	if n > uint64(len(b)) {
		return nil, nil, fmt.Errorf("%w: %d-byte string in %d bytes", ErrCorrupt, n, len(b))
	}
	return b[:n], b[n:], nil
}

func uvarintLen(x uint64) int {
	n := 1
	for x >= 0x80 {
		x >>= 7
		n++
	}
	return n
}

func varintLen(x int64) int {
	ux := uint64(x) << 1
	if x < 0 {
		ux = ^ux
	}
	return uvarintLen(ux)
}
