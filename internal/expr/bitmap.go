package expr

import (
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/bitutil"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// Low-level helpers shared by the kernels: buffers, validity bitmaps and
// typed views of array data. Kernels write into buffers they allocate and
// wrap them with makeArray; they never go through a builder row by row.

func (c *Ctx) mem() memory.Allocator {
	if c == nil || c.Mem == nil {
		return memory.DefaultAllocator
	}
	return c.Mem
}

// newBuf returns a buffer of nbytes bytes (contents unspecified).
func newBuf(mem memory.Allocator, nbytes int) *memory.Buffer {
	b := memory.NewResizableBuffer(mem)
	b.Resize(nbytes)
	return b
}

// newBitmap returns a zeroed bitmap buffer for n bits.
func newBitmap(mem memory.Allocator, n int) (*memory.Buffer, []byte) {
	b := newBuf(mem, int(bitutil.BytesForBits(int64(n))))
	bs := b.Bytes()
	clear(bs)
	return b, bs
}

// newOnes returns a bitmap buffer of n set bits.
func newOnes(mem memory.Allocator, n int) (*memory.Buffer, []byte) {
	b := newBuf(mem, int(bitutil.BytesForBits(int64(n))))
	bs := b.Bytes()
	for i := range bs {
		bs[i] = 0xff
	}
	return b, bs
}

// makeArray wraps buffers as an array of type t and n rows, taking over
// the caller's references to the buffers (nil ones are allowed).
func makeArray(t arrow.DataType, n int, bufs ...*memory.Buffer) arrow.Array {
	nulls := 0
	if bufs[0] != nil {
		nulls = array.UnknownNullCount
	}
	d := array.NewData(t, n, bufs, nil, nulls, 0)
	a := array.MakeFromData(d)
	d.Release()
	for _, b := range bufs {
		if b != nil {
			b.Release()
		}
	}
	return a
}

// validity returns a's validity bitmap and its bit offset, or nil when a
// has no nulls.
func validity(a arrow.Array) ([]byte, int) {
	if a.NullN() == 0 {
		return nil, 0
	}
	if a.DataType().ID() == arrow.NULL {
		return allZero(a.Len()), 0
	}
	return a.NullBitmapBytes(), a.Data().Offset()
}

var zeroBits = make([]byte, 1024)

func allZero(n int) []byte {
	nb := int(bitutil.BytesForBits(int64(n)))
	if nb <= len(zeroBits) {
		return zeroBits[:nb]
	}
	return make([]byte, nb)
}

// andValidity is the validity of a result that is null where any of arrs
// is: nil if none has nulls, else a buffer the caller owns.
func andValidity(mem memory.Allocator, n int, arrs ...arrow.Array) *memory.Buffer {
	var out *memory.Buffer
	var ob []byte
	for _, a := range arrs {
		bits, off := validity(a)
		if bits == nil {
			continue
		}
		if out == nil {
			if off == 0 && a.DataType().ID() != arrow.NULL {
				// Share the input's bitmap when it needs no shifting.
				if b := a.Data().Buffers()[0]; b != nil && b.Len()*8 >= n {
					b.Retain()
					out = b
					continue
				}
			}
			out, ob = newBitmap(mem, n)
			bitutil.CopyBitmap(bits, off, n, ob, 0)
			continue
		}
		if ob == nil { // out is shared: copy before writing
			nb, nbs := newBitmap(mem, n)
			bitutil.CopyBitmap(out.Bytes(), 0, n, nbs, 0)
			out.Release()
			out, ob = nb, nbs
		}
		bitutil.BitmapAnd(ob, bits, 0, int64(off), ob, 0, int64(n))
	}
	return out
}

// ownedValidity is like andValidity but always returns a buffer the caller
// may write to (all ones when no input has nulls).
func ownedValidity(mem memory.Allocator, n int, arrs ...arrow.Array) (*memory.Buffer, []byte) {
	var ob []byte
	var out *memory.Buffer
	for _, a := range arrs {
		bits, off := validity(a)
		if bits == nil {
			continue
		}
		if out == nil {
			out, ob = newBitmap(mem, n)
			bitutil.CopyBitmap(bits, off, n, ob, 0)
			continue
		}
		bitutil.BitmapAnd(ob, bits, 0, int64(off), ob, 0, int64(n))
	}
	if out == nil {
		out, ob = newOnes(mem, n)
	}
	return out, ob
}

// boolBits returns a boolean array's value bits realigned to offset 0.
func boolBits(a arrow.Array) []byte {
	d := a.Data()
	bits := d.Buffers()[1].Bytes()
	off := d.Offset()
	if off == 0 {
		return bits
	}
	if off%8 == 0 {
		return bits[off/8:]
	}
	out := make([]byte, bitutil.BytesForBits(int64(a.Len())))
	bitutil.CopyBitmap(bits, off, a.Len(), out, 0)
	return out
}

// validBits returns a's validity realigned to offset 0, or nil.
func validBits(a arrow.Array) []byte {
	bits, off := validity(a)
	if bits == nil || off == 0 {
		return bits
	}
	if off%8 == 0 {
		return bits[off/8:]
	}
	out := make([]byte, bitutil.BytesForBits(int64(a.Len())))
	bitutil.CopyBitmap(bits, off, a.Len(), out, 0)
	return out
}

func isValid(bits []byte, off, i int) bool {
	return bits == nil || bitutil.BitIsSet(bits, off+i)
}

// i64s views the values of an array of an 8-byte fixed-width type (int64,
// float64 bits, timestamp, duration) as int64s.
func i64s(a arrow.Array) []int64 {
	d := a.Data()
	b := d.Buffers()[1]
	if b == nil || b.Len() == 0 {
		return nil
	}
	vs := unsafe.Slice((*int64)(unsafe.Pointer(&b.Bytes()[0])), b.Len()/8)
	return vs[d.Offset() : d.Offset()+d.Len()]
}

func f64s(a arrow.Array) []float64 {
	d := a.Data()
	b := d.Buffers()[1]
	if b == nil || b.Len() == 0 {
		return nil
	}
	vs := unsafe.Slice((*float64)(unsafe.Pointer(&b.Bytes()[0])), b.Len()/8)
	return vs[d.Offset() : d.Offset()+d.Len()]
}

func i32s(a arrow.Array) []int32 {
	d := a.Data()
	b := d.Buffers()[1]
	if b == nil || b.Len() == 0 {
		return nil
	}
	vs := unsafe.Slice((*int32)(unsafe.Pointer(&b.Bytes()[0])), b.Len()/4)
	return vs[d.Offset() : d.Offset()+d.Len()]
}

// allocI64 returns a new buffer of n int64s.
func allocI64(mem memory.Allocator, n int) (*memory.Buffer, []int64) {
	b := newBuf(mem, n*8)
	if n == 0 {
		return b, nil
	}
	return b, unsafe.Slice((*int64)(unsafe.Pointer(&b.Bytes()[0])), n)
}

func allocF64(mem memory.Allocator, n int) (*memory.Buffer, []float64) {
	b := newBuf(mem, n*8)
	if n == 0 {
		return b, nil
	}
	return b, unsafe.Slice((*float64)(unsafe.Pointer(&b.Bytes()[0])), n)
}

func allocI32(mem memory.Allocator, n int) (*memory.Buffer, []int32) {
	b := newBuf(mem, n*4)
	if n == 0 {
		return b, nil
	}
	return b, unsafe.Slice((*int32)(unsafe.Pointer(&b.Bytes()[0])), n)
}

// nullArray is an all-null array of type t.
func nullArray(mem memory.Allocator, t arrow.DataType, n int) arrow.Array {
	return array.MakeArrayOfNull(mem, t, n)
}

// retain returns a after retaining it, for results that reuse an input.
func retain(a arrow.Array) arrow.Array { a.Retain(); return a }

// setBitsFromBools packs b into a bitmap.
func b2u(b bool) byte {
	if b {
		return 1
	}
	return 0
}
