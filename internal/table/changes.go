package table

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/apache/iceberg-go"
	iceio "github.com/apache/iceberg-go/io"
	ictable "github.com/apache/iceberg-go/table"
)

// ErrRewritten is returned by [Table.Changes] when a snapshot after the
// reader's position deleted or overwrote rows: the table is no longer
// append-only from the reader's point of view (a full refresh or a DELETE).
var ErrRewritten = errors.New("table: rows were deleted or overwritten")

// ErrHistoryExpired is returned by [Table.Changes] when the reader's
// position is a snapshot that snapshot expiry has removed, so the rows
// appended since then can no longer be told apart from older ones.
var ErrHistoryExpired = errors.New("table: snapshot history expired")

// Changes is a range of rows appended to a table: the data files that the
// append snapshots after From and up to To added, in commit order.
type Changes struct {
	From int64 // exclusive; 0 means "the beginning of the table"
	To   int64 // inclusive: the position to resume from next time; equals From when nothing is new
	// ToTime is when snapshot To was committed (zero when To is 0).
	ToTime time.Time
	Files  []ChangedFile
	Rows   int64
}

// ChangedFile is one data file of a [Changes].
type ChangedFile struct {
	Path     string // absolute local path
	Snapshot int64  // the snapshot that added it
	// Seq is the data sequence number of the commit that added it: it
	// grows with every commit, so (Seq, position among the files of the
	// same Seq, row) orders every row a reader sees.
	Seq  int64
	Rows int64
}

// ChangesOptions bounds the size of one [Table.Changes] range. Bounds apply
// at snapshot boundaries (a snapshot's files are never split), so a range
// holds at least one snapshot's files whatever the bounds, and the same
// history always yields the same ranges.
type ChangesOptions struct {
	MaxFiles int   // 0: no bound
	MaxRows  int64 // 0: no bound
}

// Changes returns the rows appended after snapshot from (0: everything the
// current snapshot holds), as of the handle's current snapshot.
//
// Compaction snapshots (operation "replace", as [Table.Optimize] makes) hold
// no new rows and are skipped. A snapshot that deleted or overwrote rows
// makes Changes fail with [ErrRewritten]; a from that is no longer in the
// current snapshot's history fails with [ErrHistoryExpired]. Both mean the
// reader must start again from 0 (a full refresh).
func (t *Table) Changes(ctx context.Context, from int64, o ChangesOptions) (Changes, error) {
	ch := Changes{From: from, To: from}
	cur := t.tbl.CurrentSnapshot()
	if cur != nil && cur.SnapshotID == from {
		ch.ToTime = time.UnixMilli(cur.TimestampMs)
	}
	if cur == nil || cur.SnapshotID == from {
		if cur == nil && from != 0 {
			return ch, fmt.Errorf("%w: %s has no snapshot %d", ErrHistoryExpired, t.name, from)
		}
		return ch, nil
	}
	if from == 0 {
		return t.allFiles(ctx, cur)
	}

	// Walk back from the current snapshot to from, then forward.
	chain, err := t.since(cur, from)
	if err != nil {
		return ch, err
	}
	fs, err := t.tbl.FS(ctx)
	if err != nil {
		return ch, fmt.Errorf("table: reading changes of %s: %w", t.name, err)
	}
	for i := len(chain) - 1; i >= 0; i-- {
		s := chain[i]
		if len(ch.Files) > 0 && ((o.MaxFiles > 0 && len(ch.Files) >= o.MaxFiles) || (o.MaxRows > 0 && ch.Rows >= o.MaxRows)) {
			break
		}
		op := ictable.OpAppend
		if s.Summary != nil {
			op = s.Summary.Operation
		}
		switch op {
		case ictable.OpReplace:
		case ictable.OpAppend:
			files, err := addedFiles(fs, s)
			if err != nil {
				return ch, fmt.Errorf("table: reading changes of %s at snapshot %d: %w", t.name, s.SnapshotID, err)
			}
			for _, f := range files {
				ch.Files = append(ch.Files, f)
				ch.Rows += f.Rows
			}
		default:
			return ch, fmt.Errorf("%w: snapshot %d of %s is a %s", ErrRewritten, s.SnapshotID, t.name, op)
		}
		ch.To, ch.ToTime = s.SnapshotID, time.UnixMilli(s.TimestampMs)
	}
	return ch, nil
}

// allFiles is Changes from 0: every live data file of s.
func (t *Table) allFiles(ctx context.Context, s *ictable.Snapshot) (Changes, error) {
	ch := Changes{To: s.SnapshotID, ToTime: time.UnixMilli(s.TimestampMs)}
	tasks, err := t.tbl.Scan(ictable.WithSnapshotID(s.SnapshotID)).PlanFiles(ctx)
	if err != nil {
		return ch, fmt.Errorf("table: planning files of %s: %w", t.name, err)
	}
	// In commit order, as a streaming reader would have seen them
	// (compacted files take the place of their newest input).
	seq := func(t ictable.FileScanTask) int64 {
		if t.DataSequenceNumber != nil {
			return *t.DataSequenceNumber
		}
		return 0
	}
	slices.SortStableFunc(tasks, func(a, b ictable.FileScanTask) int { return cmp.Compare(seq(a), seq(b)) })
	for _, task := range tasks {
		if len(task.DeleteFiles) > 0 {
			return ch, fmt.Errorf("table: %s has row-level deletes, which streaming reads do not support", t.name)
		}
		ch.Files = append(ch.Files, ChangedFile{Path: localPath(task.File.FilePath()), Seq: seq(task), Rows: task.File.Count()})
		ch.Rows += task.File.Count()
	}
	return ch, nil
}

// addedFiles returns the data files snapshot s added, in manifest order.
func addedFiles(fio iceio.IO, s *ictable.Snapshot) ([]ChangedFile, error) {
	manifests, err := s.Manifests(fio)
	if err != nil {
		return nil, err
	}
	var out []ChangedFile
	for _, m := range manifests {
		// Only a manifest this snapshot wrote can hold files it added.
		if m.SnapshotID() != s.SnapshotID || m.ManifestContent() != iceberg.ManifestContentData {
			continue
		}
		entries, err := m.FetchEntries(fio, true)
		if err != nil {
			return nil, err
		}
		for _, e := range entries {
			if e.Status() != iceberg.EntryStatusADDED || e.SnapshotID() != s.SnapshotID {
				continue
			}
			df := e.DataFile()
			if df.ContentType() != iceberg.EntryContentData {
				continue
			}
			out = append(out, ChangedFile{Path: localPath(df.FilePath()), Snapshot: s.SnapshotID, Seq: s.SequenceNumber, Rows: df.Count()})
		}
	}
	return out, nil
}

// ReadFiles reads the given data files of this table, in order, as record
// batches of the table's current schema ([Table.ArrowSchema]) projected to
// columns (nil: all). Files are opened one at a time; the reader holds at
// most one file's row group in memory. The caller releases the reader.
func (t *Table) ReadFiles(ctx context.Context, files []ChangedFile, columns []string) (array.RecordReader, error) {
	sc := t.schema
	if len(columns) > 0 {
		fields := make([]arrow.Field, 0, len(columns))
		for _, c := range columns {
			idx := sc.FieldIndices(c)
			if len(idx) == 0 {
				return nil, fmt.Errorf("table: %s has no column %q", t.name, c)
			}
			fields = append(fields, sc.Field(idx[0]))
		}
		sc = arrow.NewSchema(fields, nil)
	}
	return &fileReader{ctx: ctx, table: t.name.String(), files: files, schema: sc, refs: 1}, nil
}

// fileReader is the array.RecordReader of [Table.ReadFiles].
type fileReader struct {
	ctx    context.Context
	table  string
	files  []ChangedFile
	schema *arrow.Schema
	sel    []*Selection // ReadSelected: per column of schema; nil: ReadFiles
	refs   int64

	f    *os.File
	rr   pqarrow.RecordReader
	cols []int // column indices to read, in output order
	cur  arrow.RecordBatch
	err  error
}

func (r *fileReader) Retain()               { r.refs++ }
func (r *fileReader) Schema() *arrow.Schema { return r.schema }
func (r *fileReader) Err() error            { return r.err }
func (r *fileReader) Record() arrow.RecordBatch {
	return r.cur
}
func (r *fileReader) RecordBatch() arrow.RecordBatch { return r.cur }

func (r *fileReader) Release() {
	if r.refs--; r.refs > 0 {
		return
	}
	r.closeFile()
	if r.cur != nil {
		r.cur.Release()
		r.cur = nil
	}
}

func (r *fileReader) closeFile() {
	if r.rr != nil {
		r.rr.Release()
		r.rr = nil
	}
	if r.f != nil {
		r.f.Close()
		r.f = nil
	}
}

func (r *fileReader) Next() bool {
	if r.cur != nil {
		r.cur.Release()
		r.cur = nil
	}
	for r.err == nil {
		if err := r.ctx.Err(); err != nil {
			r.err = err
			return false
		}
		if r.rr == nil {
			if len(r.files) == 0 {
				return false
			}
			if err := r.open(r.files[0].Path); err != nil {
				r.err = fmt.Errorf("table: reading %s of %s: %w", r.files[0].Path, r.table, err)
				return false
			}
			r.files = r.files[1:]
		}
		if r.rr.Next() {
			rec := r.rr.RecordBatch()
			if r.sel != nil {
				if r.cur, r.err = r.expandSelected(rec); r.err != nil {
					return false
				}
				return true
			}
			cols := make([]arrow.Array, len(r.cols))
			for i, c := range r.cols {
				cols[i] = rec.Column(c)
			}
			r.cur = array.NewRecordBatch(r.schema, cols, rec.NumRows())
			return true
		}
		if err := r.rr.Err(); err != nil && !errors.Is(err, io.EOF) {
			r.err = fmt.Errorf("table: reading a data file of %s: %w", r.table, err)
			return false
		}
		r.closeFile()
	}
	return false
}

func (r *fileReader) open(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	fail := func(err error) error { f.Close(); return err }
	pf, err := file.NewParquetReader(f, file.WithReadProps(ReaderProperties()))
	if err != nil {
		return fail(err)
	}
	fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{BatchSize: 64 << 10}, memory.DefaultAllocator)
	if err != nil {
		return fail(err)
	}
	fsc, err := fr.Schema()
	if err != nil {
		return fail(err)
	}
	if r.sel != nil {
		return r.openSelected(f, fr, fsc, fail)
	}
	// Read only the leaves of the wanted top-level columns, and check
	// their types: sluice writes every file with the table's schema.
	var leaves []int
	for _, fld := range r.schema.Fields() {
		idx := fsc.FieldIndices(fld.Name)
		if len(idx) == 0 {
			return fail(fmt.Errorf("the file has no column %q", fld.Name))
		}
		if ft := stripMeta(fsc.Field(idx[0]).Type); !arrow.TypeEqual(ft, fld.Type) {
			return fail(fmt.Errorf("column %q is %s in the file, %s in the table", fld.Name, ft, fld.Type))
		}
		leaves = AppendLeaves(leaves, &fr.Manifest.Fields[idx[0]])
	}
	rr, err := fr.GetRecordReader(r.ctx, leaves, nil)
	if err != nil {
		return fail(err)
	}
	// The reader yields the selected columns in file order.
	rsc := rr.Schema()
	r.cols = r.cols[:0]
	for _, fld := range r.schema.Fields() {
		idx := rsc.FieldIndices(fld.Name)
		if len(idx) == 0 {
			rr.Release()
			return fail(fmt.Errorf("the file reader did not return column %q", fld.Name))
		}
		r.cols = append(r.cols, idx[0])
	}
	r.f, r.rr = f, rr
	return nil
}

// ReaderProperties are the Parquet reader properties for local data
// files: column chunks are read through a 1 MiB buffer as they are
// decoded, not loaded whole, so a reader's memory does not grow with its
// row groups (a local read is cheap; fresh memory is not).
func ReaderProperties() *parquet.ReaderProperties {
	p := parquet.NewReaderProperties(memory.DefaultAllocator)
	p.BufferedStreamEnabled = true
	p.BufferSize = 1 << 20
	return p
}

// AppendLeaves appends the Parquet leaf column indices of f, a field of a
// file's schema manifest, to dst: what pqarrow's readers take to read f.
func AppendLeaves(dst []int, f *pqarrow.SchemaField) []int {
	if len(f.Children) == 0 {
		return append(dst, f.ColIndex)
	}
	for i := range f.Children {
		dst = AppendLeaves(dst, &f.Children[i])
	}
	return dst
}

// stripMeta returns t without field metadata (Parquet field ids) in nested
// fields, so that it compares equal to the table's Arrow type.
func stripMeta(t arrow.DataType) arrow.DataType {
	switch t := t.(type) {
	case *arrow.StructType:
		fields := make([]arrow.Field, t.NumFields())
		for i, f := range t.Fields() {
			fields[i] = arrow.Field{Name: f.Name, Type: stripMeta(f.Type), Nullable: f.Nullable}
		}
		return arrow.StructOf(fields...)
	case *arrow.ListType:
		e := t.ElemField()
		return arrow.ListOfField(arrow.Field{Name: e.Name, Type: stripMeta(e.Type), Nullable: e.Nullable})
	}
	return t
}

// openSelected sets up reading the leaves r.sel selects.
func (r *fileReader) openSelected(f *os.File, fr *pqarrow.FileReader, fsc *arrow.Schema, fail func(error) error) error {
	var leaves []int
	for i, fld := range r.schema.Fields() {
		if r.sel[i] == nil {
			continue
		}
		idx := fsc.FieldIndices(fld.Name)
		if len(idx) == 0 {
			return fail(fmt.Errorf("the file has no column %q", fld.Name))
		}
		leaves = selectedLeaves(leaves, &fr.Manifest.Fields[idx[0]], r.sel[i])
	}
	if len(leaves) == 0 {
		// Nothing is needed but the row count: read the narrowest leaf.
		leaves = []int{0}
	}
	rr, err := fr.GetRecordReader(r.ctx, leaves, nil)
	if err != nil {
		return fail(err)
	}
	r.f, r.rr = f, rr
	return nil
}

// expandSelected turns a batch read by openSelected into the table's full
// schema.
func (r *fileReader) expandSelected(rec arrow.RecordBatch) (arrow.RecordBatch, error) {
	n := int(rec.NumRows())
	rsc := rec.Schema()
	cols := make([]arrow.Array, r.schema.NumFields())
	defer func() {
		for _, c := range cols {
			if c != nil {
				c.Release()
			}
		}
	}()
	for i, fld := range r.schema.Fields() {
		idx := rsc.FieldIndices(fld.Name)
		if r.sel[i] == nil || len(idx) == 0 {
			cols[i] = array.MakeArrayOfNull(memory.DefaultAllocator, fld.Type, n)
			continue
		}
		c, err := expand(memory.DefaultAllocator, rec.Column(idx[0]), fld.Type, r.sel[i])
		if err != nil {
			return nil, fmt.Errorf("table: reading column %s of %s: %w", fld.Name, r.table, err)
		}
		cols[i] = c
	}
	return array.NewRecordBatch(r.schema, cols, int64(n)), nil
}

// since returns the snapshots after from up to cur, newest first: all of
// cur's history when from is 0, [ErrHistoryExpired] when from is not in it.
func (t *Table) since(cur *ictable.Snapshot, from int64) ([]*ictable.Snapshot, error) {
	var chain []*ictable.Snapshot
	for s := cur; s != nil && s.SnapshotID != from; {
		chain = append(chain, s)
		if s.ParentSnapshotID == nil && from == 0 {
			break
		}
		if s.ParentSnapshotID == nil {
			return nil, fmt.Errorf("%w: %s no longer holds snapshot %d", ErrHistoryExpired, t.name, from)
		}
		if s = t.tbl.SnapshotByID(*s.ParentSnapshotID); s == nil {
			return nil, fmt.Errorf("%w: %s no longer holds snapshot %d", ErrHistoryExpired, t.name, from)
		}
	}
	return chain, nil
}

// Rewrites returns the summary properties of the snapshots after from, up
// to the handle's current one, that deleted or overwrote rows (those that
// make [Table.Changes] fail with [ErrRewritten]), oldest first. A from
// that is no longer in the current snapshot's history fails with
// [ErrHistoryExpired].
func (t *Table) Rewrites(from int64) ([]map[string]string, error) {
	chain, err := t.since(t.tbl.CurrentSnapshot(), from)
	if err != nil {
		return nil, err
	}
	var out []map[string]string
	for i := len(chain) - 1; i >= 0; i-- {
		if s := chain[i]; s.Summary != nil && s.Summary.Operation != ictable.OpAppend && s.Summary.Operation != ictable.OpReplace {
			out = append(out, maps.Clone(map[string]string(s.Summary.Properties)))
		}
	}
	return out, nil
}
