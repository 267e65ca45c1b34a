package table

import (
	"context"
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
)

// Selection says which part of a column [Table.ReadSelected] reads: nil
// reads nothing (the column comes back all null), All the whole column, and
// Fields the listed fields of a struct column (by field index), each with
// its own Selection.
type Selection struct {
	All    bool
	Fields map[int]*Selection
}

// Add marks the path fields (struct field indices, outermost first) under
// s as read; an empty path marks all of s. It returns s, allocated if nil.
func (s *Selection) Add(fields []int) *Selection {
	if s == nil {
		s = &Selection{}
	}
	if s.All {
		return s
	}
	if len(fields) == 0 {
		s.All, s.Fields = true, nil
		return s
	}
	if s.Fields == nil {
		s.Fields = map[int]*Selection{}
	}
	s.Fields[fields[0]] = s.Fields[fields[0]].Add(fields[1:])
	return s
}

// Merge adds everything o selects to s and returns s (allocated if nil).
func (s *Selection) Merge(o *Selection) *Selection {
	if o == nil {
		return s
	}
	if o.All {
		return s.Add(nil)
	}
	if s == nil {
		s = &Selection{}
	}
	if s.All {
		return s
	}
	for i, f := range o.Fields {
		if s.Fields == nil {
			s.Fields = map[int]*Selection{}
		}
		s.Fields[i] = s.Fields[i].Merge(f)
	}
	return s
}

// ReadSelected is [Table.ReadFiles] over all columns, reading from the
// Parquet files only what sel selects (one entry per column of
// [Table.ArrowSchema]; shorter means the rest are not read): the batches
// have the table's full schema, with unread columns and struct fields all
// null. Queries that use a few fields of a wide struct read a fraction of
// the bytes.
func (t *Table) ReadSelected(ctx context.Context, files []ChangedFile, sel []*Selection) (array.RecordReader, error) {
	full := make([]*Selection, t.schema.NumFields())
	copy(full, sel)
	return &fileReader{ctx: ctx, table: t.name.String(), files: files, schema: t.schema, sel: full, refs: 1}, nil
}

// selectedLeaves appends the Parquet leaf indices that sel selects under f.
func selectedLeaves(dst []int, f *pqarrow.SchemaField, sel *Selection) []int {
	if sel == nil {
		return dst
	}
	if sel.All || len(f.Children) == 0 || f.Field.Type.ID() != arrow.STRUCT {
		return AppendLeaves(dst, f)
	}
	for i := range f.Children {
		dst = selectedLeaves(dst, &f.Children[i], sel.Fields[i])
	}
	return dst
}

// expand rebuilds a column read with sel to the full type: unread fields
// become all-null arrays. a is released by the caller.
func expand(mem memory.Allocator, a arrow.Array, full arrow.DataType, sel *Selection) (arrow.Array, error) {
	st, ok := full.(*arrow.StructType)
	if sel == nil || sel.All || !ok {
		if !arrow.TypeEqual(stripMeta(a.DataType()), full) {
			return nil, fmt.Errorf("a column is %s in the file, %s in the table", a.DataType(), full)
		}
		a.Retain()
		return a, nil
	}
	sa, ok := a.(*array.Struct)
	if !ok {
		return nil, fmt.Errorf("a struct column was read as %s", a.DataType())
	}
	if sa.Data().Offset() != 0 {
		// Rebuilding keeps the parent's validity buffer as is, which
		// needs offset 0: copy.
		c, err := array.Concatenate([]arrow.Array{sa}, mem)
		if err != nil {
			return nil, err
		}
		defer c.Release()
		sa = c.(*array.Struct)
	}
	got := sa.DataType().(*arrow.StructType)
	n := sa.Len()
	children := make([]arrow.ArrayData, st.NumFields())
	defer func() {
		for _, c := range children {
			if c != nil {
				c.Release()
			}
		}
	}()
	for i, f := range st.Fields() {
		j, found := got.FieldIdx(f.Name)
		if sel.Fields[i] == nil || !found {
			na := array.MakeArrayOfNull(mem, f.Type, n)
			children[i] = na.Data()
			children[i].Retain()
			na.Release()
			continue
		}
		c, err := expand(mem, sa.Field(j), f.Type, sel.Fields[i])
		if err != nil {
			return nil, err
		}
		children[i] = c.Data()
		children[i].Retain()
		c.Release()
	}
	data := array.NewData(full, n, []*memory.Buffer{sa.Data().Buffers()[0]}, children, sa.NullN(), 0)
	defer data.Release()
	return array.MakeFromData(data), nil
}
