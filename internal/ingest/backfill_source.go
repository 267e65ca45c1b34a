package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/metadata"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/sluice-dev/sluice/internal/stream"
	"github.com/sluice-dev/sluice/internal/table"
)

// backfillBatchRows is the batch size of backfill reads.
const backfillBatchRows = 64 * 1024

// sourceSnapshot is a backfill source pinned at one moment: a table at one
// snapshot, or one list of Parquet files (each with its size and
// modification time). Reading it twice yields the same rows in the same
// order, which the merge relies on to number rows; a Parquet file that
// changes in between makes the second read fail instead.
type sourceSnapshot struct {
	label string
	dst   *arrow.Schema // the ingestion table's
	rows  int64
	// schemas are the distinct schemas of the source as read.
	schemas []*arrow.Schema

	// table sources
	tbl   *table.Table
	files []string
	conf  *conformer

	// Parquet sources
	pq []pqFile
}

type pqFile struct {
	path  string
	size  int64
	mtime time.Time
	rows  int64
	conf  *conformer
}

// openSource pins the backfill source b. dst is the ingestion table's
// schema; the source's schema must conform to it (the error is a
// *stream.FieldError naming the column otherwise).
func openSource(ctx context.Context, store *table.Store, b *stream.BackfillSource, dst *arrow.Schema) (*sourceSnapshot, error) {
	s := &sourceSnapshot{label: "backfill " + b.String(), dst: dst}
	if b.Table != "" {
		s.label = "backfill table " + b.Table
		tbl, err := store.Load(ctx, b.TableName())
		if errors.Is(err, table.ErrNotFound) {
			return nil, &stream.FieldError{Field: "ingestion.backfill_source", Reason: fmt.Sprintf("table %s does not exist", b.Table)}
		}
		if err != nil {
			return nil, err
		}
		if s.conf, err = newConformer(tbl.ArrowSchema(), dst, s.label); err != nil {
			return nil, err
		}
		s.schemas = []*arrow.Schema{tbl.ArrowSchema()}
		if s.files, err = tbl.DataFiles(ctx); err != nil {
			return nil, err
		}
		if s.rows, err = tbl.Count(ctx); err != nil {
			return nil, err
		}
		s.tbl = tbl
		return s, nil
	}
	paths, err := filepath.Glob(b.Parquet)
	if err != nil {
		return nil, &stream.FieldError{Field: "ingestion.backfill_source.parquet", Reason: err.Error()}
	}
	slices.Sort(paths)
	var prev *conformer
	var prevSchema *arrow.Schema
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("backfill file %s: %w", p, err)
		}
		if fi.IsDir() {
			continue
		}
		f := pqFile{path: p, size: fi.Size(), mtime: fi.ModTime()}
		sc, rows, err := parquetSchema(p)
		if err != nil {
			return nil, &stream.FieldError{Field: "ingestion.backfill_source.parquet", Reason: fmt.Sprintf("reading %s: %v", p, err)}
		}
		f.rows = rows
		if prevSchema != nil && prevSchema.Equal(sc) {
			f.conf = prev
		} else if f.conf, err = newConformer(sc, dst, "backfill file "+p); err != nil {
			return nil, err
		} else {
			s.schemas = append(s.schemas, sc)
		}
		prev, prevSchema = f.conf, sc
		s.pq = append(s.pq, f)
		s.rows += rows
	}
	if len(s.pq) == 0 {
		return nil, &stream.FieldError{Field: "ingestion.backfill_source.parquet", Reason: fmt.Sprintf("no file matches %s", b.Parquet)}
	}
	return s, nil
}

func parquetSchema(path string) (*arrow.Schema, int64, error) {
	rdr, err := file.OpenParquetFile(path, false)
	if err != nil {
		return nil, 0, err
	}
	defer rdr.Close()
	fr, err := pqarrow.NewFileReader(rdr, pqarrow.ArrowReadProperties{}, memory.DefaultAllocator)
	if err != nil {
		return nil, 0, err
	}
	sc, err := fr.Schema()
	return sc, rdr.NumRows(), err
}

// maxTimestamp returns the greatest stream_record_timestamp in the source,
// from statistics where they exist; ok is false for a source without rows.
func (s *sourceSnapshot) maxTimestamp(ctx context.Context) (max time.Time, ok bool, err error) {
	if s.tbl != nil {
		_, hi, ok, err := s.tbl.TimestampRange(ctx, ColTimestamp)
		return hi, ok, err
	}
	for _, f := range s.pq {
		hi, fok, err := parquetMaxTimestamp(ctx, f.path)
		if err != nil {
			return time.Time{}, false, fmt.Errorf("reading %s: %w", f.path, err)
		}
		if fok && (!ok || hi.After(max)) {
			max, ok = hi, true
		}
	}
	return max, ok, nil
}

func parquetMaxTimestamp(ctx context.Context, path string) (time.Time, bool, error) {
	rdr, err := file.OpenParquetFile(path, false)
	if err != nil {
		return time.Time{}, false, err
	}
	defer rdr.Close()
	fr, err := pqarrow.NewFileReader(rdr, pqarrow.ArrowReadProperties{BatchSize: backfillBatchRows}, memory.DefaultAllocator)
	if err != nil {
		return time.Time{}, false, err
	}
	sc, err := fr.Schema()
	if err != nil {
		return time.Time{}, false, err
	}
	idx := sc.FieldIndices(ColTimestamp)
	if len(idx) != 1 {
		return time.Time{}, false, fmt.Errorf("no column %s", ColTimestamp)
	}
	tt, isTS := sc.Field(idx[0]).Type.(*arrow.TimestampType)
	if !isTS {
		return time.Time{}, false, fmt.Errorf("column %s is %s, not a timestamp", ColTimestamp, sc.Field(idx[0]).Type)
	}
	leaf := rdr.MetaData().Schema.ColumnIndexByName(ColTimestamp)
	var best int64
	ok := false
	fromStats := leaf >= 0
	for g := 0; fromStats && g < rdr.NumRowGroups(); g++ {
		cc, err := rdr.MetaData().RowGroup(g).ColumnChunk(leaf)
		if err != nil {
			return time.Time{}, false, err
		}
		st, err := cc.Statistics()
		i64, isI64 := st.(*metadata.Int64Statistics)
		if err != nil || !isI64 {
			fromStats = false
			break
		}
		if !i64.HasMinMax() {
			if i64.HasNullCount() && i64.NullCount() == cc.NumValues() {
				continue // only nulls
			}
			fromStats = false
			break
		}
		if v := i64.Max(); !ok || v > best {
			best, ok = v, true
		}
	}
	if !fromStats {
		best, ok = 0, false
		rr, err := fr.GetRecordReader(ctx, []int{idx[0]}, nil)
		if err != nil {
			return time.Time{}, false, err
		}
		defer rr.Release()
		for rr.Next() {
			col := rr.RecordBatch().Column(0).(*array.Timestamp)
			for i := range col.Len() {
				if v := int64(col.Value(i)); col.IsValid(i) && (!ok || v > best) {
					best, ok = v, true
				}
			}
		}
		if err := rr.Err(); err != nil {
			return time.Time{}, false, err
		}
	}
	if !ok {
		return time.Time{}, false, nil
	}
	return arrow.Timestamp(best).ToTime(tt.Unit).UTC(), true, nil
}

// batches yields the source's rows as ingestion-table rows (record_source
// "backfill"), in the pinned order. With paths (dot paths, as deduplication
// columns), only what those paths need is read, and the batches hold only
// the top-level columns they start with. The consumer owns each batch and
// releases it.
func (s *sourceSnapshot) batches(ctx context.Context, paths []string) iter.Seq2[arrow.RecordBatch, error] {
	var roots []string
	for _, p := range paths {
		r, _, _ := strings.Cut(p, ".")
		if !slices.Contains(roots, r) {
			roots = append(roots, r)
		}
	}
	return func(yield func(arrow.RecordBatch, error) bool) {
		emit := func(rr array.RecordReader, conf *conformer) bool {
			if paths != nil {
				var err error
				if conf, err = newProjConformer(rr.Schema(), s.dst, s.label, roots); err != nil {
					yield(nil, err)
					return false
				}
			}
			for rr.Next() {
				out, err := conf.apply(rr.RecordBatch())
				if err != nil {
					yield(nil, err)
					return false
				}
				if !yield(out, nil) {
					return false
				}
			}
			if err := rr.Err(); err != nil && !errors.Is(err, io.EOF) {
				yield(nil, fmt.Errorf("reading %s: %w", s.label, err))
				return false
			}
			if ctx.Err() != nil {
				yield(nil, ctx.Err())
				return false
			}
			return true
		}
		if s.tbl != nil {
			if len(s.files) == 0 {
				return
			}
			var cols []string
			for _, p := range paths { // only what the source has (key is optional)
				if checkPath(s.tbl.ArrowSchema(), p) == nil {
					cols = append(cols, p)
				}
			}
			if paths != nil && len(cols) == 0 {
				cols = []string{ColTimestamp} // rows still count
			}
			rr, err := s.tbl.ScanFiles(ctx, s.files, cols)
			if err != nil {
				yield(nil, err)
				return
			}
			defer rr.Release()
			emit(rr, s.conf)
			return
		}
		for _, f := range s.pq {
			fi, err := os.Stat(f.path)
			if err != nil || fi.Size() != f.size || !fi.ModTime().Equal(f.mtime) {
				yield(nil, fmt.Errorf("%w: backfill file %s changed during the merge", errSourceChanged, f.path))
				return
			}
			ok := func() bool {
				rdr, err := file.OpenParquetFile(f.path, false)
				if err != nil {
					yield(nil, err)
					return false
				}
				defer rdr.Close()
				fr, err := pqarrow.NewFileReader(rdr, pqarrow.ArrowReadProperties{BatchSize: backfillBatchRows}, memory.DefaultAllocator)
				if err != nil {
					yield(nil, err)
					return false
				}
				var leaves []int
				if paths != nil {
					for _, sf := range fr.Manifest.Fields {
						if slices.Contains(roots, sf.Field.Name) || sf.Field.Name == ColTimestamp {
							leaves = appendLeaves(leaves, sf)
						}
					}
				}
				rr, err := fr.GetRecordReader(ctx, leaves, nil)
				if err != nil {
					yield(nil, err)
					return false
				}
				defer rr.Release()
				return emit(rr, f.conf)
			}()
			if !ok {
				return
			}
		}
	}
}

func appendLeaves(out []int, f pqarrow.SchemaField) []int {
	if f.IsLeaf() {
		return append(out, f.ColIndex)
	}
	for _, c := range f.Children {
		out = appendLeaves(out, c)
	}
	return out
}

// errSourceChanged means a pinned Parquet file changed between two reads.
var errSourceChanged = errors.New("backfill source changed")
