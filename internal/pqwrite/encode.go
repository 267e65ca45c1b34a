package pqwrite

import (
	"encoding/binary"
	"fmt"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/bitutil"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/metadata"
)

// chain returns the arrays of rec along l's path, from the top column to
// the leaf: row i of each is row i of rec (struct children come sliced to
// their parent).
func (s *scratch) chain(rec arrow.RecordBatch, l *leaf) ([]arrow.Array, error) {
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
func (s *scratch) encode(l *leaf, arrs []arrow.Array, lo, hi, pageSize int) (int, error) {
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
func (s *scratch) present(l *leaf, a arrow.Array, lo, hi, pageSize int) int {
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

// writePage writes the page built in s as the next data page of pager.
func (w *Writer) writePage(s *scratch, pager file.PageWriter, l *leaf) error {
	rows, nulls := int32(s.pageRows), int32(s.stats.nulls)
	s.lvls = s.lvls[:0]
	if l.maxDef > 0 {
		if nulls == 0 {
			s.lvls = appendRun(s.lvls, len(s.defs), l.maxDef)
		} else {
			s.lvls = appendLevels(s.lvls, s.defs, l.defWidth)
		}
	}
	var st metadata.EncodedStatistics
	if l.stats {
		st = s.stats.encode(l.kind, l.signed, l.maxStats, false)
	}
	s.chunk.merge(&s.stats, l.kind)
	s.stats.reset()
	s.bools = 0
	var page file.DataPage
	if w.v1 {
		s.page = s.page[:0]
		if l.maxDef > 0 {
			s.page = binary.LittleEndian.AppendUint32(s.page, uint32(len(s.lvls)))
			s.page = append(s.page, s.lvls...)
		}
		s.page = append(s.page, s.vals...)
		body := s.compress(l, s.page)
		page = file.NewDataPageV1WithStats(memory.NewBufferBytes(body), rows, parquet.Encodings.Plain,
			parquet.Encodings.RLE, parquet.Encodings.RLE, int32(len(s.page)), st)
	} else {
		vals := s.compress(l, s.vals)
		s.page = append(append(s.page[:0], s.lvls...), vals...)
		page = file.NewDataPageV2WithStats(memory.NewBufferBytes(s.page), rows, nulls, rows, parquet.Encodings.Plain,
			int32(len(s.lvls)), 0, int32(len(s.lvls)+len(s.vals)), l.enc != nil, st)
	}
	n, err := pager.WriteDataPage(page)
	s.written += n
	return err
}

// compress returns src compressed with l's codec (src itself when l is
// uncompressed), in s's reusable buffer.
func (s *scratch) compress(l *leaf, src []byte) []byte {
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
