package table

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"iter"
	"os"
	"slices"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/iceberg-go"
	ictable "github.com/apache/iceberg-go/table"
)

// This file holds what a merge into a live table needs (the backfill merge
// of package ingest): column bounds from statistics, scans of chosen data
// files in a fixed order, and data files written first and committed later,
// so that the commit itself is short and can be retried on a conflict
// without writing the data again.

// TimestampRange returns the least and greatest non-null value of the
// timestamp column col in the handle's current snapshot. It reads the data
// files' column statistics from the manifests and reads the column itself
// only from files that lack them. ok is false when the column holds no
// non-null value (or the table no snapshot).
func (t *Table) TimestampRange(ctx context.Context, col string) (lo, hi time.Time, ok bool, err error) {
	if t.tbl.CurrentSnapshot() == nil {
		return time.Time{}, time.Time{}, false, nil
	}
	f, found := t.tbl.Schema().FindFieldByName(col)
	if !found {
		return time.Time{}, time.Time{}, false, fmt.Errorf("table: %s has no column %s", t.name, col)
	}
	var unit time.Duration
	switch f.Type.(type) {
	case iceberg.TimestampType, iceberg.TimestampTzType:
		unit = time.Microsecond
	default:
		return time.Time{}, time.Time{}, false, fmt.Errorf("table: column %s of %s is %s, not a timestamp", col, t.name, f.Type)
	}
	tasks, err := t.tbl.Scan().PlanFiles(ctx)
	if err != nil {
		return time.Time{}, time.Time{}, false, fmt.Errorf("table: planning files of %s: %w", t.name, err)
	}
	var loV, hiV int64
	var unread []ictable.FileScanTask
	see := func(v int64) {
		if !ok || v < loV {
			loV = v
		}
		if !ok || v > hiV {
			hiV = v
		}
		ok = true
	}
	for _, task := range tasks {
		df := task.File
		if len(task.DeleteFiles) > 0 || len(task.EqualityDeleteFiles) > 0 {
			unread = append(unread, task) // deleted rows may hold the bounds
			continue
		}
		if n, has := df.NullValueCounts()[f.ID]; has && n == df.Count() {
			continue // only nulls
		}
		l, lok := df.LowerBoundValues()[f.ID]
		u, uok := df.UpperBoundValues()[f.ID]
		if !lok || !uok || len(l) != 8 || len(u) != 8 {
			unread = append(unread, task)
			continue
		}
		see(int64(binary.LittleEndian.Uint64(l)))
		see(int64(binary.LittleEndian.Uint64(u)))
	}
	if len(unread) > 0 {
		_, it, err := t.tbl.Scan(ictable.WithSelectedFields(col)).ReadTasks(ctx, unread)
		if err != nil {
			return time.Time{}, time.Time{}, false, fmt.Errorf("table: reading %s.%s: %w", t.name, col, err)
		}
		for rec, err := range it {
			if err != nil {
				return time.Time{}, time.Time{}, false, fmt.Errorf("table: reading %s.%s: %w", t.name, col, err)
			}
			if ts, isTS := rec.Column(0).(*array.Timestamp); isTS {
				for i := range ts.Len() {
					if ts.IsValid(i) {
						see(int64(ts.Value(i)))
					}
				}
			}
			rec.Release()
		}
	}
	if !ok {
		return time.Time{}, time.Time{}, false, nil
	}
	return time.Unix(0, loV*int64(unit)).UTC(), time.Unix(0, hiV*int64(unit)).UTC(), true, nil
}

// ScanFiles reads the given live data files of the handle's current
// snapshot (local paths as [Table.DataFiles] returns them), in the order
// given, projected to columns (top-level names or dotted paths to nested
// fields; nil means all). Applying the same files to the same snapshot
// yields the same rows in the same order, which a caller that numbers rows
// across two passes relies on. A path that is not a live data file is an
// error. Ownership is as for [Table.Scan].
func (t *Table) ScanFiles(ctx context.Context, files []string, columns []string) (array.RecordReader, error) {
	// One file at a time: a worker holds the decoded batches of a whole
	// file while the iterator catches up, so more workers cost memory.
	so := []ictable.ScanOption{ictable.WithMaxConcurrency(1)}
	if len(columns) > 0 {
		so = append(so, ictable.WithSelectedFields(columns...))
	}
	scan := t.tbl.Scan(so...)
	var tasks []ictable.FileScanTask
	if t.tbl.CurrentSnapshot() != nil && len(files) > 0 {
		planned, err := scan.PlanFiles(ctx)
		if err != nil {
			return nil, fmt.Errorf("table: planning files of %s: %w", t.name, err)
		}
		byPath := make(map[string][]ictable.FileScanTask, len(planned))
		for _, task := range planned {
			p := localPath(task.File.FilePath())
			byPath[p] = append(byPath[p], task)
		}
		for _, f := range files {
			ts, ok := byPath[f]
			if !ok {
				return nil, fmt.Errorf("table: %s is not a live data file of %s", f, t.name)
			}
			slices.SortFunc(ts, func(a, b ictable.FileScanTask) int { return int(a.Start - b.Start) })
			tasks = append(tasks, ts...)
		}
	}
	sc, it, err := scan.ReadTasks(ctx, tasks)
	if err != nil {
		return nil, fmt.Errorf("table: scanning %s: %w", t.name, err)
	}
	return array.ReaderFromIter(sc, it), nil
}

// PendingFiles are data files written by [Table.WriteFiles] and not
// committed yet. Until [Table.CommitFiles] succeeds they are orphans: a
// crash leaves them for [Table.RemoveOrphans], and [Table.DiscardFiles]
// deletes them at once.
type PendingFiles struct {
	files []iceberg.DataFile
	rows  int64
}

// Rows returns the number of rows in the files.
func (p *PendingFiles) Rows() int64 { return p.rows }

// Paths returns the files' local paths.
func (p *PendingFiles) Paths() []string {
	out := make([]string, len(p.files))
	for i, f := range p.files {
		out[i] = localPath(f.FilePath())
	}
	return out
}

// writeFilesRowGroupRows caps the Parquet row groups [Table.WriteFiles]
// writes: a row group is buffered in memory until it is complete.
const writeFilesRowGroupRows = 128 << 10

// WriteFiles writes recs (whose schema is sc, matching [Table.ArrowSchema]
// by name) as new Parquet data files of the table without committing them.
// It streams: at most a few batches and one Parquet row group (128Ki rows)
// are buffered at a time. WriteFiles
// releases every batch recs yields. On error, files already written are
// deleted.
func (t *Table) WriteFiles(ctx context.Context, sc *arrow.Schema, recs iter.Seq2[arrow.RecordBatch, error]) (*PendingFiles, error) {
	p := &PendingFiles{}
	for df, err := range ictable.WriteRecords(ctx, t.tbl, sc, recs,
		ictable.WithRecordBatchBufferSize(4), ictable.WithParquetRowGroupLimit(writeFilesRowGroupRows)) {
		if err != nil {
			_ = t.DiscardFiles(p)
			return nil, fmt.Errorf("table: writing data files of %s: %w", t.name, err)
		}
		p.files = append(p.files, df)
		p.rows += df.Count()
	}
	return p, nil
}

// CommitFiles commits p's files to the table in one append snapshot whose
// summary carries props, on top of the state this handle last loaded or
// committed. Files are committed at most once: after success p is empty.
// Conflicts behave as for [Table.Append]: nothing is committed, the error
// wraps [ErrConflict] and the handle is refreshed, so the caller can look
// at the new state and call CommitFiles again with the same files. With no
// files, an empty snapshot still records props.
func (t *Table) CommitFiles(ctx context.Context, p *PendingFiles, props map[string]string) error {
	if len(p.files) == 0 {
		return t.Append(ctx, nil, props)
	}
	base := t.tbl.MetadataLocation()
	txn := t.tbl.NewTransaction()
	if err := txn.AddDataFiles(ctx, p.files, iceberg.Properties(props), ictable.WithoutDuplicateCheck()); err != nil {
		return t.failed(ctx, err, base, "commit files")
	}
	if err := t.commit(ctx, txn, base, "commit files"); err != nil {
		return err
	}
	p.files, p.rows = nil, 0
	return nil
}

// DiscardFiles deletes p's files, which must not have been committed.
func (t *Table) DiscardFiles(p *PendingFiles) error {
	var errs []error
	for _, f := range p.Paths() {
		if err := os.Remove(f); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	p.files, p.rows = nil, 0
	return errors.Join(errs...)
}
