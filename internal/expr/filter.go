package expr

import (
	"context"
	"fmt"
	"math/bits"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/bitutil"
	"github.com/apache/arrow-go/v18/arrow/compute"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// Filter returns the rows of batch where mask (a boolean array of
// batch.NumRows() rows) is true; a null in mask drops the row. The caller
// must Release the result (which may be batch itself, retained, when every
// row passes). Flat columns (numbers, booleans, timestamps, strings) are
// gathered here; nested ones through arrow/compute. A nil mem means
// memory.DefaultAllocator.
func Filter(mem memory.Allocator, batch arrow.RecordBatch, mask arrow.Array) (arrow.RecordBatch, error) {
	if mem == nil {
		mem = memory.DefaultAllocator
	}
	n := int(batch.NumRows())
	if mask.Len() != n {
		return nil, fmt.Errorf("filtering a batch of %d rows with a mask of %d", n, mask.Len())
	}
	if mask.DataType().ID() == arrow.NULL {
		return batch.NewSlice(0, 0), nil
	}
	if mask.DataType().ID() != arrow.BOOL {
		return nil, fmt.Errorf("filtering with a mask of type %s, not BOOLEAN", typeName(mask.DataType()))
	}
	sel := selectedBits(mask)
	idx := make([]int32, 0, n)
	for i, b := range sel[:bitutil.BytesForBits(int64(n))] {
		for b != 0 {
			j := i*8 + bits.TrailingZeros8(b)
			if j >= n {
				break
			}
			idx = append(idx, int32(j))
			b &= b - 1
		}
	}
	if len(idx) == n {
		batch.Retain()
		return batch, nil
	}
	if len(idx) == 0 {
		return batch.NewSlice(0, 0), nil
	}
	cols := make([]arrow.Array, batch.NumCols())
	defer func() {
		for _, c := range cols {
			if c != nil {
				c.Release()
			}
		}
	}()
	var maskArr arrow.Array
	for k := range cols {
		c, err := gather(mem, batch.Column(k), idx)
		if err != nil {
			return nil, err
		}
		if c == nil { // nested: use compute
			if maskArr == nil {
				maskArr = makeArray(tBool, n, nil, memory.NewBufferBytes(sel))
				defer maskArr.Release()
			}
			ctx := compute.WithAllocator(context.Background(), mem)
			if c, err = compute.FilterArray(ctx, batch.Column(k), maskArr, *compute.DefaultFilterOptions()); err != nil {
				return nil, fmt.Errorf("filtering column %s: %w", batch.ColumnName(k), err)
			}
		}
		cols[k] = c
	}
	return array.NewRecordBatch(batch.Schema(), cols, int64(len(idx))), nil
}

// selectedBits is value AND validity of a boolean mask, at offset 0, with
// padding to a whole byte.
func selectedBits(mask arrow.Array) []byte {
	n := mask.Len()
	out := make([]byte, bitutil.BytesForBits(int64(n)))
	d := mask.Data()
	bitutil.CopyBitmap(d.Buffers()[1].Bytes(), d.Offset(), n, out, 0)
	if bm, off := validity(mask); bm != nil {
		bitutil.BitmapAnd(out, bm, 0, int64(off), out, 0, int64(n))
	}
	return out
}

// gather returns the rows idx of a; a negative index yields a null. Flat
// types are copied here, structs, lists and maps recursively; other types
// return nil.
func gather(mem memory.Allocator, a arrow.Array, idx []int32) (arrow.Array, error) {
	n := len(idx)
	if a.Len() == 0 { // every index is negative
		return nullArray(mem, a.DataType(), n), nil
	}
	var vb *memory.Buffer
	bm, off := validity(a)
	hasNeg := false
	for _, j := range idx {
		if j < 0 {
			hasNeg = true
			break
		}
	}
	if bm != nil || hasNeg {
		var vbs []byte
		vb, vbs = newBitmap(mem, n)
		for i, j := range idx {
			if j >= 0 && (bm == nil || bitutil.BitIsSet(bm, off+int(j))) {
				bitutil.SetBit(vbs, i)
			}
		}
	}
	at := func(j int32) int32 { return max(j, 0) }
	t := a.DataType()
	switch t.ID() {
	case arrow.NULL:
		if vb != nil {
			vb.Release()
		}
		return array.NewNull(n), nil
	case arrow.BOOL:
		db, out := newBitmap(mem, n)
		d := a.Data()
		src, off := d.Buffers()[1].Bytes(), d.Offset()
		for i, j := range idx {
			if j >= 0 && bitutil.BitIsSet(src, off+int(j)) {
				bitutil.SetBit(out, i)
			}
		}
		return makeArray(t, n, vb, db), nil
	case arrow.STRING, arrow.BINARY:
		d := a.Data()
		offs := arrow.Int32Traits.CastFromBytes(d.Buffers()[1].Bytes())[d.Offset():]
		var data []byte
		if b := d.Buffers()[2]; b != nil {
			data = b.Bytes()
		}
		size := 0
		for _, j := range idx {
			if j >= 0 {
				size += int(offs[j+1] - offs[j])
			}
		}
		ob, os := allocI32(mem, n+1)
		db := newBuf(mem, size)
		dst := db.Bytes()
		pos := int32(0)
		for i, j := range idx {
			os[i] = pos
			if j >= 0 {
				pos += int32(copy(dst[pos:], data[offs[j]:offs[j+1]]))
			}
		}
		os[n] = pos
		return makeArray(t, n, vb, ob, db), nil
	case arrow.STRUCT:
		st := a.(*array.Struct)
		children := make([]arrow.ArrayData, st.NumField())
		for k := range children {
			c, err := gather(mem, st.Field(k), idx)
			if err != nil || c == nil {
				releaseData(children)
				if vb != nil {
					vb.Release()
				}
				return nil, err
			}
			children[k] = c.Data()
			children[k].Retain()
			c.Release()
		}
		return nestedArray(t, n, vb, nil, children), nil
	case arrow.LIST, arrow.MAP:
		d := a.Data()
		offs := arrow.Int32Traits.CastFromBytes(d.Buffers()[1].Bytes())[d.Offset():]
		ob, os := allocI32(mem, n+1)
		var cidx []int32
		for i, j := range idx {
			os[i] = int32(len(cidx))
			if j >= 0 && (bm == nil || bitutil.BitIsSet(bm, off+int(j))) {
				for k := offs[j]; k < offs[j+1]; k++ {
					cidx = append(cidx, k)
				}
			}
		}
		os[n] = int32(len(cidx))
		child := array.MakeFromData(d.Children()[0])
		defer child.Release()
		c, err := gather(mem, child, cidx)
		if err != nil || c == nil {
			ob.Release()
			if vb != nil {
				vb.Release()
			}
			return nil, err
		}
		cd := c.Data()
		cd.Retain()
		c.Release()
		return nestedArray(t, n, vb, ob, []arrow.ArrayData{cd}), nil
	}
	fw, ok := t.(arrow.FixedWidthDataType)
	if !ok || len(a.Data().Buffers()) != 2 || fw.BitWidth()%8 != 0 {
		if vb != nil {
			vb.Release()
		}
		return nil, nil
	}
	switch fw.BitWidth() {
	case 64:
		db, out := allocI64(mem, n)
		src := i64s(a)
		for i, j := range idx {
			out[i] = src[at(j)]
		}
		return makeArray(t, n, vb, db), nil
	case 32:
		db, out := allocI32(mem, n)
		src := i32s(a)
		for i, j := range idx {
			out[i] = src[at(j)]
		}
		return makeArray(t, n, vb, db), nil
	}
	w := fw.BitWidth() / 8
	d := a.Data()
	src := d.Buffers()[1].Bytes()[d.Offset()*w:]
	db := newBuf(mem, n*w)
	dst := db.Bytes()
	for i, j := range idx {
		j = at(j)
		copy(dst[i*w:(i+1)*w], src[int(j)*w:(int(j)+1)*w])
	}
	return makeArray(t, n, vb, db), nil
}

// nestedArray assembles a struct (offsets nil) or list/map array, taking
// over the references to vb, offsets and children.
func nestedArray(t arrow.DataType, n int, vb, offsets *memory.Buffer, children []arrow.ArrayData) arrow.Array {
	nulls := 0
	if vb != nil {
		nulls = array.UnknownNullCount
	}
	bufs := []*memory.Buffer{vb}
	if offsets != nil {
		bufs = append(bufs, offsets)
	}
	d := array.NewData(t, n, bufs, children, nulls, 0)
	out := array.MakeFromData(d)
	d.Release()
	for _, b := range bufs {
		if b != nil {
			b.Release()
		}
	}
	releaseData(children)
	return out
}

func releaseData(ds []arrow.ArrayData) {
	for _, d := range ds {
		if d != nil {
			d.Release()
		}
	}
}
