package feature

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/sluice-dev/sluice/internal/ident"
	"github.com/sluice-dev/sluice/internal/table"
)

// openLabels reads the columns cols of the labels as lp recorded them,
// after checking that label files are unchanged. The reader's schema holds
// cols, in an order of its own: look them up by name.
func (s *Service) openLabels(ctx context.Context, lp LabelsPlan, cols []string) (array.RecordReader, error) {
	if lp.Table != "" {
		n, err := ident.Parse(lp.Table)
		if err != nil {
			return nil, err
		}
		t, err := s.tables.Load(ctx, n)
		if err != nil {
			return nil, fmt.Errorf("labels: %w", err)
		}
		if lp.Snapshot == 0 {
			return array.NewRecordReader(projectSchema(t.ArrowSchema(), cols), nil)
		}
		files, err := t.FilesAt(ctx, lp.Snapshot)
		switch {
		case errors.Is(err, table.ErrRowDeletes):
			return t.ScanAt(ctx, lp.Snapshot, table.ScanOptions{Columns: cols})
		case errors.Is(err, table.ErrHistoryExpired):
			return nil, fmt.Errorf("%w: labels: %w", ErrChanged, err)
		case err != nil:
			return nil, err
		}
		return t.ReadFiles(ctx, files, cols)
	}
	for _, f := range lp.Files {
		if err := checkLabelFile(f); err != nil {
			return nil, err
		}
	}
	if len(lp.Files) == 0 {
		return nil, fmt.Errorf("%w: no labels", ErrInvalid)
	}
	r := &parquetFiles{ctx: ctx, files: lp.Files, cols: cols}
	r.refs = 1
	if err := r.open(); err != nil {
		return nil, err
	}
	r.schema = r.rr.Schema()
	return r, nil
}

// parquetFiles reads Parquet files one after the other, with one schema.
type parquetFiles struct {
	ctx    context.Context
	files  []LabelFile
	cols   []string // read only these; nil: all
	schema *arrow.Schema
	refs   int64
	f      *os.File
	rr     pqarrow.RecordReader
	err    error
}

func (r *parquetFiles) open() error {
	path := r.files[0].Path
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("opening labels %s: %w", path, err)
	}
	pf, err := file.NewParquetReader(f, file.WithReadProps(table.ReaderProperties()))
	if err != nil {
		f.Close()
		return fmt.Errorf("reading labels %s: %w", path, err)
	}
	fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{BatchSize: BatchRows}, memory.DefaultAllocator)
	if err != nil {
		f.Close()
		return fmt.Errorf("reading labels %s: %w", path, err)
	}
	leaves, err := leafColumns(fr.Manifest, r.cols)
	if err != nil {
		f.Close()
		return fmt.Errorf("%w: labels %s: %w", ErrChanged, path, err)
	}
	rr, err := fr.GetRecordReader(r.ctx, leaves, nil)
	if err != nil {
		f.Close()
		return fmt.Errorf("reading labels %s: %w", path, err)
	}
	if r.schema != nil && !r.schema.Equal(rr.Schema()) {
		rr.Release()
		f.Close()
		return fmt.Errorf("%w: labels file %s has other columns than %s", ErrChanged, path, r.files[0].Path)
	}
	r.f, r.rr = f, rr
	r.files = r.files[1:]
	return nil
}

// leafColumns returns the Parquet leaf columns of the top-level fields
// named cols, in the file's order (nil when cols is nil: all).
func leafColumns(m *pqarrow.SchemaManifest, cols []string) ([]int, error) {
	if cols == nil {
		return nil, nil
	}
	var leaves []int
	found := 0
	for i := range m.Fields {
		if slices.Contains(cols, m.Fields[i].Field.Name) {
			leaves = table.AppendLeaves(leaves, &m.Fields[i])
			found++
		}
	}
	if found < len(cols) {
		for _, c := range cols {
			if !slices.ContainsFunc(m.Fields, func(f pqarrow.SchemaField) bool { return f.Field.Name == c }) {
				return nil, fmt.Errorf("no column %s", c)
			}
		}
	}
	return leaves, nil
}

// projectSchema returns sc's fields named in cols, in sc's order.
func projectSchema(sc *arrow.Schema, cols []string) *arrow.Schema {
	var fields []arrow.Field
	for _, f := range sc.Fields() {
		if slices.Contains(cols, f.Name) {
			fields = append(fields, f)
		}
	}
	return arrow.NewSchema(fields, nil)
}

func (r *parquetFiles) close() {
	if r.rr != nil {
		r.rr.Release()
		r.rr = nil
	}
	if r.f != nil {
		r.f.Close()
		r.f = nil
	}
}

func (r *parquetFiles) Schema() *arrow.Schema { return r.schema }
func (r *parquetFiles) Err() error            { return r.err }
func (r *parquetFiles) Retain()               { r.refs++ }
func (r *parquetFiles) Release() {
	if r.refs--; r.refs == 0 {
		r.close()
	}
}
func (r *parquetFiles) Record() arrow.RecordBatch { return r.RecordBatch() }
func (r *parquetFiles) RecordBatch() arrow.RecordBatch {
	if r.rr == nil {
		return nil
	}
	return r.rr.RecordBatch()
}

func (r *parquetFiles) Next() bool {
	for r.err == nil {
		if r.rr == nil {
			if len(r.files) == 0 {
				return false
			}
			if r.err = r.open(); r.err != nil {
				return false
			}
		}
		if r.rr.Next() {
			return true
		}
		if err := r.rr.Err(); err != nil && !errors.Is(err, io.EOF) {
			r.err = fmt.Errorf("reading labels: %w", err)
			return false
		}
		r.close()
	}
	return false
}

// splitter cuts a reader's batches of more than n rows into slices of n
// rows (the last may be shorter), without copying; smaller batches pass
// as they are.
type splitter struct {
	src  array.RecordReader
	n    int64
	big  arrow.RecordBatch // the source batch being cut, retained
	at   int64             // rows of big already returned
	cur  arrow.RecordBatch
	refs int64
}

func newSplitter(src array.RecordReader, n int) *splitter {
	return &splitter{src: src, n: int64(n), refs: 1}
}

func (s *splitter) Schema() *arrow.Schema          { return s.src.Schema() }
func (s *splitter) Err() error                     { return s.src.Err() }
func (s *splitter) Retain()                        { s.refs++ }
func (s *splitter) Record() arrow.RecordBatch      { return s.cur }
func (s *splitter) RecordBatch() arrow.RecordBatch { return s.cur }
func (s *splitter) Release() {
	if s.refs--; s.refs > 0 {
		return
	}
	s.drop()
	s.src.Release()
}

func (s *splitter) drop() {
	if s.cur != nil {
		s.cur.Release()
		s.cur = nil
	}
	if s.big != nil {
		s.big.Release()
		s.big = nil
	}
}

func (s *splitter) Next() bool {
	if s.cur != nil {
		s.cur.Release()
		s.cur = nil
	}
	for s.big == nil {
		if !s.src.Next() {
			return false
		}
		if b := s.src.RecordBatch(); b.NumRows() > 0 {
			b.Retain()
			s.big, s.at = b, 0
		}
	}
	end := min(s.at+s.n, s.big.NumRows())
	if s.at == 0 && end == s.big.NumRows() {
		s.cur, s.big = s.big, nil // small enough: as it is
		return true
	}
	s.cur = s.big.NewSlice(s.at, end)
	if s.at = end; s.at == s.big.NumRows() {
		s.big.Release()
		s.big = nil
	}
	return true
}

// rechunker re-cuts a reader's batches into batches of exactly n rows
// (the last may be shorter), whatever the source's batch boundaries.
type rechunker struct {
	src     array.RecordReader
	n       int64
	pending []arrow.RecordBatch
	rows    int64
	cur     arrow.RecordBatch
	err     error
	refs    int64
	srcDone bool
}

func newRechunker(src array.RecordReader, n int) *rechunker {
	return &rechunker{src: src, n: int64(n), refs: 1}
}

func (r *rechunker) Schema() *arrow.Schema          { return r.src.Schema() }
func (r *rechunker) Err() error                     { return r.err }
func (r *rechunker) Retain()                        { r.refs++ }
func (r *rechunker) Record() arrow.RecordBatch      { return r.cur }
func (r *rechunker) RecordBatch() arrow.RecordBatch { return r.cur }
func (r *rechunker) Release() {
	if r.refs--; r.refs > 0 {
		return
	}
	if r.cur != nil {
		r.cur.Release()
		r.cur = nil
	}
	for _, p := range r.pending {
		p.Release()
	}
	r.pending = nil
	r.src.Release()
}

func (r *rechunker) Next() bool {
	if r.cur != nil {
		r.cur.Release()
		r.cur = nil
	}
	for !r.srcDone && r.rows < r.n {
		if !r.src.Next() {
			r.srcDone = true
			if err := r.src.Err(); err != nil {
				r.err = err
				return false
			}
			break
		}
		b := r.src.RecordBatch()
		if b.NumRows() == 0 {
			continue
		}
		b.Retain()
		r.pending = append(r.pending, b)
		r.rows += b.NumRows()
	}
	if r.rows == 0 {
		return false
	}
	want := min(r.n, r.rows)
	if first := r.pending[0]; first.NumRows() == want {
		r.cur = first
		r.pending = r.pending[1:]
		r.rows -= want
		return true
	}
	// Take want rows from the front of pending.
	var pieces []arrow.RecordBatch
	var got int64
	for got < want {
		p := r.pending[0]
		take := min(p.NumRows(), want-got)
		if take == p.NumRows() {
			pieces = append(pieces, p)
			r.pending = r.pending[1:]
		} else {
			pieces = append(pieces, p.NewSlice(0, take))
			r.pending[0] = p.NewSlice(take, p.NumRows())
			p.Release()
		}
		got += take
	}
	r.rows -= want
	cols := make([]arrow.Array, r.src.Schema().NumFields())
	for j := range cols {
		parts := make([]arrow.Array, len(pieces))
		for i, p := range pieces {
			parts[i] = p.Column(j)
		}
		c, err := array.Concatenate(parts, memory.DefaultAllocator)
		if err != nil {
			r.err = err
			break
		}
		cols[j] = c
	}
	for _, p := range pieces {
		p.Release()
	}
	if r.err != nil {
		for _, c := range cols {
			if c != nil {
				c.Release()
			}
		}
		return false
	}
	r.cur = array.NewRecordBatch(r.src.Schema(), cols, want)
	for _, c := range cols {
		c.Release()
	}
	return true
}
