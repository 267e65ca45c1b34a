package ingest

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/bitutil"
	"github.com/apache/arrow-go/v18/arrow/compute"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/sluice-dev/sluice/internal/stream"
)

// conformer turns record batches of a backfill source into rows of the
// ingestion table: columns matched by name (struct fields too), types
// widened where that loses nothing, absent optional columns null, and
// record_source set to "backfill". It is built once per source schema; a
// schema it cannot conform is refused when it is built, with an error that
// names the column. It is not goroutine-safe.
type conformer struct {
	dst   *arrow.Schema
	cols  []colConv // one per dst column but record_source
	src   []int     // index in the source schema, -1 when absent
	iSrc  int       // index of record_source in dst
	mem   memory.Allocator
	label string // the source, for errors
}

type colConv func(arrow.Array) (arrow.Array, error)

// sourceErr is a problem with the backfill source's schema.
func sourceErr(format string, args ...any) error {
	return &stream.FieldError{Field: "ingestion.backfill_source", Reason: fmt.Sprintf(format, args...)}
}

// utcZones are the time zones that mean UTC.
var utcZones = []string{"UTC", "utc", "Etc/UTC", "Z", "+00:00", "00:00"}

func newConformer(src, dst *arrow.Schema, label string) (*conformer, error) {
	return newProjConformer(src, dst, label, nil)
}

// newProjConformer is newConformer for a source read with only the columns
// cols (top-level names; nil means all): the result has only those of the
// ingestion table's columns, in its order, and record_source only if
// asked for. The source's schema is assumed checked by a full conformer.
func newProjConformer(src, dst *arrow.Schema, label string, cols []string) (*conformer, error) {
	if cols != nil {
		var fs []arrow.Field
		for _, f := range dst.Fields() {
			if slices.Contains(cols, f.Name) {
				fs = append(fs, f)
			}
		}
		dst = arrow.NewSchema(fs, nil)
	}
	c := &conformer{dst: dst, mem: memory.DefaultAllocator, label: label, iSrc: -1}
	known := map[string]bool{}
	for i, f := range dst.Fields() {
		known[f.Name] = true
		if f.Name == ColRecordSource {
			c.iSrc = i
			c.cols = append(c.cols, nil)
			c.src = append(c.src, -1)
			continue
		}
		idx := src.FieldIndices(f.Name)
		if len(idx) > 1 {
			return nil, sourceErr("%s: column %s appears %d times", label, f.Name, len(idx))
		}
		if len(idx) == 0 {
			switch f.Name {
			case ColTimestamp, ColValue:
				if cols != nil {
					break
				}
				return nil, sourceErr("%s has no column %s; a backfill source needs %s (timestamp, UTC) and %s", label, f.Name, ColTimestamp, ColValue)
			}
			c.cols = append(c.cols, nil)
			c.src = append(c.src, -1)
			continue
		}
		sf := src.Field(idx[0])
		if f.Name == ColTimestamp {
			ts, ok := sf.Type.(*arrow.TimestampType)
			if !ok || !slices.Contains(utcZones, ts.TimeZone) {
				return nil, sourceErr("%s: column %s has type %s; it must be a timestamp in UTC (Iceberg timestamptz, Parquet TIMESTAMP with isAdjustedToUTC)", label, ColTimestamp, sf.Type)
			}
		}
		conv, err := convFor(f.Name, sf.Type, f.Type)
		if err != nil {
			return nil, sourceErr("%s: %v", label, err)
		}
		c.cols = append(c.cols, conv)
		c.src = append(c.src, idx[0])
	}
	for _, f := range src.Fields() {
		if !known[f.Name] && cols == nil {
			return nil, sourceErr("%s: column %s is not an ingestion table column (key, value, %s, %s, %s, %s)",
				label, f.Name, ColTimestamp, ColTopic, ColPartition, ColOffset)
		}
	}
	return c, nil
}

// apply returns rec's rows as rows of the ingestion table. The caller owns
// the result; rec is not released.
func (c *conformer) apply(rec arrow.RecordBatch) (arrow.RecordBatch, error) {
	n := int(rec.NumRows())
	out := make([]arrow.Array, len(c.cols))
	defer func() {
		for _, a := range out {
			if a != nil {
				a.Release()
			}
		}
	}()
	for i, f := range c.dst.Fields() {
		switch {
		case i == c.iSrc:
			out[i] = constString(c.mem, RecordSourceBackfill, n)
		case c.src[i] < 0:
			out[i] = array.MakeArrayOfNull(c.mem, f.Type, n)
		default:
			a, err := c.cols[i](rec.Column(c.src[i]))
			if err != nil {
				return nil, fmt.Errorf("%s: column %s: %w", c.label, f.Name, err)
			}
			out[i] = a
		}
	}
	return array.NewRecordBatch(c.dst, out, int64(n)), nil
}

func constString(mem memory.Allocator, s string, n int) arrow.Array {
	b := array.NewStringBuilder(mem)
	defer b.Release()
	b.ReserveData(len(s) * n)
	b.Reserve(n)
	for range n {
		b.Append(s)
	}
	return b.NewArray()
}

func retain(a arrow.Array) (arrow.Array, error) { a.Retain(); return a, nil }

func castTo(dt arrow.DataType, safe bool) colConv {
	opts := compute.NewCastOptions(dt, safe)
	return func(a arrow.Array) (arrow.Array, error) {
		return compute.CastArray(context.Background(), a, opts)
	}
}

func isInt(t arrow.DataType) bool {
	switch t.ID() {
	case arrow.INT8, arrow.INT16, arrow.INT32, arrow.INT64, arrow.UINT8, arrow.UINT16, arrow.UINT32:
		return true
	}
	return false
}

// convFor returns the conversion of a source column (or nested field) at
// path from type src to the ingestion table's type dst, or an error naming
// path when there is none that keeps every value.
func convFor(path string, src, dst arrow.DataType) (colConv, error) {
	if arrow.TypeEqual(src, dst) {
		return retain, nil
	}
	mismatch := func() error {
		return fmt.Errorf("column %s has type %s; the stream's schema gives %s", path, src, dst)
	}
	switch d := dst.(type) {
	case *arrow.StructType:
		s, ok := src.(*arrow.StructType)
		if !ok {
			return nil, mismatch()
		}
		return structConv(path, s, d)
	case *arrow.ListType:
		s, ok := src.(*arrow.ListType)
		if !ok {
			return nil, mismatch()
		}
		elem, err := convFor(path+"[]", s.Elem(), d.Elem())
		if err != nil {
			return nil, err
		}
		return listConv(d, elem), nil
	case *arrow.TimestampType:
		s, ok := src.(*arrow.TimestampType)
		if !ok {
			return nil, mismatch()
		}
		if !slices.Contains(utcZones, s.TimeZone) {
			return nil, fmt.Errorf("column %s has type %s; timestamps must be in UTC (with a time zone), as the stream's schema gives %s", path, src, dst)
		}
		return castTo(dst, false), nil // a finer unit is truncated to µs, as ingestion does
	}
	switch dst.ID() {
	case arrow.STRING:
		if src.ID() == arrow.LARGE_STRING || src.ID() == arrow.BINARY || src.ID() == arrow.LARGE_BINARY || src.ID() == arrow.STRING_VIEW {
			return castTo(dst, true), nil // binary must hold UTF-8
		}
	case arrow.INT64:
		if isInt(src) {
			return castTo(dst, true), nil
		}
	case arrow.INT32:
		if isInt(src) || src.ID() == arrow.UINT64 {
			return castTo(dst, true), nil // values beyond int32 fail the merge
		}
	case arrow.FLOAT64:
		if isInt(src) || src.ID() == arrow.FLOAT32 {
			return castTo(dst, true), nil
		}
	case arrow.DATE32:
		if src.ID() == arrow.DATE64 {
			return castTo(dst, false), nil
		}
	}
	return nil, mismatch()
}

func structConv(path string, s, d *arrow.StructType) (colConv, error) {
	idx := make([]int, d.NumFields())
	convs := make([]colConv, d.NumFields())
	for i, f := range d.Fields() {
		j, ok := s.FieldIdx(f.Name)
		if !ok {
			idx[i] = -1 // absent: null, as a missing JSON property is
			continue
		}
		c, err := convFor(path+"."+f.Name, s.Field(j).Type, f.Type)
		if err != nil {
			return nil, err
		}
		idx[i], convs[i] = j, c
	}
	for _, f := range s.Fields() {
		if _, ok := d.FieldIdx(f.Name); !ok {
			names := make([]string, d.NumFields())
			for i, df := range d.Fields() {
				names[i] = df.Name
			}
			return nil, fmt.Errorf("column %s.%s is not in the stream's schema (%s has %s)", path, f.Name, path, strings.Join(names, ", "))
		}
	}
	return func(a arrow.Array) (arrow.Array, error) {
		st := a.(*array.Struct)
		n := st.Len()
		children := make([]arrow.Array, len(idx))
		defer func() {
			for _, c := range children {
				if c != nil {
					c.Release()
				}
			}
		}()
		for i, j := range idx {
			if j < 0 {
				children[i] = array.MakeArrayOfNull(memory.DefaultAllocator, d.Field(i).Type, n)
				continue
			}
			c, err := convs[i](st.Field(j))
			if err != nil {
				return nil, err
			}
			children[i] = c
		}
		var valid *memory.Buffer
		if st.NullN() > 0 {
			valid = memory.NewResizableBuffer(memory.DefaultAllocator)
			valid.Resize(int(bitutil.BytesForBits(int64(n))))
			bits := valid.Bytes()
			for i := range n {
				bitutil.SetBitTo(bits, i, st.IsValid(i))
			}
			defer valid.Release()
		}
		return array.NewStructArrayWithFieldsAndNulls(children, d.Fields(), valid, st.NullN(), 0)
	}, nil
}

func listConv(d *arrow.ListType, elem colConv) colConv {
	return func(a arrow.Array) (arrow.Array, error) {
		l := a.(*array.List)
		vals, err := elem(l.ListValues())
		if err != nil {
			return nil, err
		}
		defer vals.Release()
		data := l.Data()
		nd := array.NewData(d, data.Len(), data.Buffers(), []arrow.ArrayData{vals.Data()}, data.NullN(), data.Offset())
		defer nd.Release()
		return array.MakeFromData(nd), nil
	}
}
