package pqwrite

import (
	"encoding/binary"
	"fmt"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/bitutil"
)

// chain returns the arrays of rec along l's path, from the top column to
// the leaf: row i of each is row i of rec (struct children come sliced to
// their parent).
func (s *encoder) chain(rec arrow.RecordBatch, l *leaf) ([]arrow.Array, error) {
	a := rec.Column(l.path[0])
	s.arrs = append(s.arrs[:0], a)
	for _, i := range l.path[1:] {
		st, ok := a.(*array.Struct)
		if !ok {
			return nil, fmt.Errorf("pqwrite: column %s: %s where the schema has a struct", l.name, a.DataType())
		}
		a = st.Field(i)
		s.arrs = append(s.arrs, a)
	}
	for _, a := range s.arrs {
		if a.Len() != int(rec.NumRows()) {
			return nil, fmt.Errorf("pqwrite: column %s: %d values in a batch of %d rows", l.name, a.Len(), rec.NumRows())
		}
	}
	return s.arrs, nil
}

// encode appends rows lo.. of arrs, up to hi, to the page being built,
// stopping early once the page's values reach pageSize bytes, and returns
// the first row it did not take. A null in a level that is not nullable
// is an error, unless a nullable level above it is null too (Arrow allows
// a non-nullable child to hold anything under a null parent).
func (s *encoder) encode(l *leaf, arrs []arrow.Array, lo, hi, pageSize int) (int, error) {
	leafArr := arrs[len(arrs)-1]
	nulls := false
	for _, a := range arrs {
		if a.NullN() > 0 {
			nulls = true
			break
		}
	}
	if !nulls {
		end := s.present(l, leafArr, lo, hi, pageSize)
		if l.maxDef > 0 {
			for range end - lo {
				s.defs = append(s.defs, l.maxDef)
			}
		}
		s.pageRows += end - lo
		return end, nil
	}
	i := lo
	for ; i < hi && len(s.vals) < pageSize; i++ {
		d := uint8(0)
		present := true
		for j, a := range arrs {
			if a.IsNull(i) {
				if !l.optional[j] {
					return i, fmt.Errorf("pqwrite: column %s is not nullable but row %d is null", l.name, i)
				}
				present = false
				break
			}
			if l.optional[j] {
				d++
			}
		}
		s.defs = append(s.defs, d)
		if present {
			s.present(l, leafArr, i, i+1, pageSize)
		} else {
			s.stats.nulls++
		}
	}
	s.pageRows += i - lo
	return i, nil
}

// present appends the values of rows lo.. of a, all present, up to hi,
// stopping once the page's values reach pageSize bytes (after at least one
// value), and returns the first row it did not take.
func (s *encoder) present(l *leaf, a arrow.Array, lo, hi, pageSize int) int {
	d := a.Data()
	base := d.Offset()
	switch l.kind {
	case kindBytes:
		offs := arrow.Int32Traits.CastFromBytes(d.Buffers()[1].Bytes())
		var data []byte
		if b := d.Buffers()[2]; b != nil {
			data = b.Bytes()
		}
		i := lo
		for ; i < hi; i++ {
			v := data[offs[base+i]:offs[base+i+1]]
			s.vals = binary.LittleEndian.AppendUint32(s.vals, uint32(len(v)))
			s.vals = append(s.vals, v...)
			if l.stats {
				s.stats.bytes(v)
			}
			if len(s.vals) >= pageSize {
				return i + 1
			}
		}
		return i
	case kindBool:
		bm := d.Buffers()[1].Bytes()
		end := min(hi, lo+max(1, (pageSize-len(s.vals))*8))
		for i := lo; i < end; i++ {
			v := bitutil.BitIsSet(bm, base+i)
			if s.bools%8 == 0 {
				s.vals = append(s.vals, 0)
			}
			if v {
				s.vals[len(s.vals)-1] |= 1 << (s.bools % 8)
			}
			s.bools++
			if l.stats {
				s.stats.int(int64(b2i(v)))
			}
		}
		return end
	}
	w := l.kind.width()
	end := min(hi, lo+max(1, (pageSize-len(s.vals)+w-1)/w))
	raw := d.Buffers()[1].Bytes()[(base+lo)*w : (base+end)*w]
	s.vals = append(s.vals, raw...)
	if !l.stats {
		return end
	}
	p := unsafe.Pointer(unsafe.SliceData(raw))
	n := end - lo
	switch l.kind {
	case kindInt32:
		for _, v := range unsafe.Slice((*int32)(p), n) {
			s.stats.int(int64(v))
		}
	case kindInt64:
		for _, v := range unsafe.Slice((*int64)(p), n) {
			s.stats.int(v)
		}
	case kindFloat32:
		for _, v := range unsafe.Slice((*float32)(p), n) {
			s.stats.float(float64(v))
		}
	case kindFloat64:
		for _, v := range unsafe.Slice((*float64)(p), n) {
			s.stats.float(v)
		}
	}
	return end
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// encodePage appends the page built in s to chunk c, and empties s.
func (w *Writer) encodePage(s *encoder, c *chunk, l *leaf) {
	p := pageDesc{rows: int32(s.pageRows), nulls: int32(s.stats.nulls), v1: w.v1, compressedVals: l.enc != nil, off: len(c.buf)}
	s.lvls = s.lvls[:0]
	if l.maxDef > 0 {
		if p.nulls == 0 {
			s.lvls = appendRun(s.lvls, len(s.defs), l.maxDef)
		} else {
			s.lvls = appendLevels(s.lvls, s.defs, l.defWidth)
		}
	}
	if l.stats {
		p.stats = s.stats.encode(l.kind, l.signed, l.maxStats, false)
	}
	c.stats.merge(&s.stats, l.kind)
	if w.v1 {
		s.page = s.page[:0]
		if l.maxDef > 0 {
			s.page = binary.LittleEndian.AppendUint32(s.page, uint32(len(s.lvls)))
			s.page = append(s.page, s.lvls...)
		}
		s.page = append(s.page, s.vals...)
		p.uncompressed = int32(len(s.page))
		c.buf = append(c.buf, s.compress(l, s.page)...)
	} else {
		p.lvlLen = int32(len(s.lvls))
		p.uncompressed = int32(len(s.lvls) + len(s.vals))
		c.buf = append(c.buf, s.lvls...)
		c.buf = append(c.buf, s.compress(l, s.vals)...)
	}
	p.end = len(c.buf)
	c.pages = append(c.pages, p)
	s.stats.reset()
	s.defs, s.vals, s.pageRows, s.bools = s.defs[:0], s.vals[:0], 0, 0
}

// compress returns src compressed with l's codec (src itself when l is
// uncompressed), in s's reusable buffer.
func (s *encoder) compress(l *leaf, src []byte) []byte {
	if l.enc == nil {
		return src
	}
	bound := int(l.enc.CompressBound(int64(len(src))))
	if cap(s.comp) < bound {
		s.comp = make([]byte, bound)
	}
	out := l.enc.EncodeLevel(s.comp[:bound], src, l.level)
	if cap(out) > cap(s.comp) {
		s.comp = out[:0]
	}
	return out
}
