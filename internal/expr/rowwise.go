package expr

import (
	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/bitutil"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// Row-at-a-time result builders for functions that have no vector kernel.
// f is called for the rows where every src is valid and returns the value
// and false for a null. The result buffers are allocated once; f must not
// retain dst.

func buildI64(mem memory.Allocator, typ arrow.DataType, n int, f func(i int) (int64, bool), srcs ...arrow.Array) arrow.Array {
	db, out := allocI64(mem, n)
	vb, vbs := ownedValidity(mem, n, srcs...)
	for i := range n {
		out[i] = 0
		if bitutil.BitIsSet(vbs, i) {
			v, ok := f(i)
			if ok {
				out[i] = v
			} else {
				bitutil.ClearBit(vbs, i)
			}
		}
	}
	return makeArray(typ, n, vb, db)
}

func buildF64(mem memory.Allocator, n int, f func(i int) (float64, bool), srcs ...arrow.Array) arrow.Array {
	db, out := allocF64(mem, n)
	vb, vbs := ownedValidity(mem, n, srcs...)
	for i := range n {
		out[i] = 0
		if bitutil.BitIsSet(vbs, i) {
			v, ok := f(i)
			if ok {
				out[i] = v
			} else {
				bitutil.ClearBit(vbs, i)
			}
		}
	}
	return makeArray(tFloat, n, vb, db)
}

func buildI32(mem memory.Allocator, typ arrow.DataType, n int, f func(i int) (int32, bool), srcs ...arrow.Array) arrow.Array {
	db, out := allocI32(mem, n)
	vb, vbs := ownedValidity(mem, n, srcs...)
	for i := range n {
		out[i] = 0
		if bitutil.BitIsSet(vbs, i) {
			v, ok := f(i)
			if ok {
				out[i] = v
			} else {
				bitutil.ClearBit(vbs, i)
			}
		}
	}
	return makeArray(typ, n, vb, db)
}

func buildBool(mem memory.Allocator, n int, f func(i int) (bool, bool), srcs ...arrow.Array) arrow.Array {
	db, out := newBitmap(mem, n)
	vb, vbs := ownedValidity(mem, n, srcs...)
	for i := range n {
		if bitutil.BitIsSet(vbs, i) {
			v, ok := f(i)
			if !ok {
				bitutil.ClearBit(vbs, i)
			} else if v {
				bitutil.SetBit(out, i)
			}
		}
	}
	return makeArray(tBool, n, vb, db)
}

// buildBytes builds a string (or binary) array; f appends row i's value to
// dst and returns it.
func buildBytes(mem memory.Allocator, typ arrow.DataType, n int, f func(i int, dst []byte) ([]byte, bool), srcs ...arrow.Array) arrow.Array {
	ob, offs := allocI32(mem, n+1)
	vb, vbs := ownedValidity(mem, n, srcs...)
	data := make([]byte, 0, 16*n)
	for i := range n {
		offs[i] = int32(len(data))
		if bitutil.BitIsSet(vbs, i) {
			var ok bool
			start := len(data)
			data, ok = f(i, data)
			if !ok {
				data = data[:start]
				bitutil.ClearBit(vbs, i)
			}
		}
	}
	offs[n] = int32(len(data))
	db := newBuf(mem, len(data))
	copy(db.Bytes(), data)
	return makeArray(typ, n, vb, ob, db)
}
