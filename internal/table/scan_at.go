package table

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"
	ictable "github.com/apache/iceberg-go/table"
)

// ErrRowDeletes is returned by [Table.FilesAt] for a snapshot whose data
// files carry row-level delete files: reading the data files alone would
// return deleted rows. Use [Table.ScanAt], which applies the deletes.
var ErrRowDeletes = errors.New("table: snapshot has row-level deletes")

// FilesAt returns the live data files of snapshot snapshotID (0: the
// handle's current snapshot) in a stable order: by data sequence number
// (commit order), then by path. [Table.ReadFiles] over them yields the
// snapshot's rows in the same order every time, which readers that number
// rows across passes, or that must reproduce a read bit for bit, rely on.
// ChangedFile.Snapshot is left 0.
//
// A snapshot that expiry removed fails with [ErrHistoryExpired]; one with
// row-level deletes with [ErrRowDeletes]. A table without snapshots has no
// files.
func (t *Table) FilesAt(ctx context.Context, snapshotID int64) ([]ChangedFile, error) {
	if snapshotID == 0 {
		snapshotID = t.SnapshotID()
		if snapshotID == 0 {
			return nil, nil
		}
	}
	if t.tbl.Metadata().SnapshotByID(snapshotID) == nil {
		return nil, fmt.Errorf("%w: %s no longer holds snapshot %d", ErrHistoryExpired, t.name, snapshotID)
	}
	tasks, err := t.tbl.Scan(ictable.WithSnapshotID(snapshotID)).PlanFiles(ctx)
	if err != nil {
		return nil, fmt.Errorf("table: planning files of %s at snapshot %d: %w", t.name, snapshotID, err)
	}
	seq := func(t ictable.FileScanTask) int64 {
		if t.DataSequenceNumber != nil {
			return *t.DataSequenceNumber
		}
		return 0
	}
	slices.SortStableFunc(tasks, func(a, b ictable.FileScanTask) int {
		return cmp.Or(cmp.Compare(seq(a), seq(b)), cmp.Compare(a.File.FilePath(), b.File.FilePath()), cmp.Compare(a.Start, b.Start))
	})
	out := make([]ChangedFile, 0, len(tasks))
	for _, task := range tasks {
		if len(task.DeleteFiles) > 0 {
			return nil, fmt.Errorf("%w: %s at snapshot %d", ErrRowDeletes, t.name, snapshotID)
		}
		p := localPath(task.File.FilePath())
		if n := len(out); n > 0 && out[n-1].Path == p {
			continue // a file split into several tasks
		}
		out = append(out, ChangedFile{Path: p, Rows: task.File.Count()})
	}
	return out, nil
}

// ScanAt is [Table.Scan] of snapshot snapshotID (0: the handle's current
// snapshot) instead of the handle's current one: time travel. It applies
// row-level deletes, reads one file at a time and yields rows in a stable
// order for a given snapshot. A snapshot that expiry removed fails with
// [ErrHistoryExpired]. Ownership is as for [Table.Scan].
func (t *Table) ScanAt(ctx context.Context, snapshotID int64, opts ScanOptions) (array.RecordReader, error) {
	if snapshotID == 0 {
		return t.Scan(ctx, opts)
	}
	if t.tbl.Metadata().SnapshotByID(snapshotID) == nil {
		return nil, fmt.Errorf("%w: %s no longer holds snapshot %d", ErrHistoryExpired, t.name, snapshotID)
	}
	so := []ictable.ScanOption{ictable.WithSnapshotID(snapshotID), ictable.WithMaxConcurrency(1)}
	if len(opts.Columns) > 0 {
		so = append(so, ictable.WithSelectedFields(opts.Columns...))
	}
	if opts.Limit > 0 {
		so = append(so, ictable.WithLimit(opts.Limit))
	}
	sc, it, err := t.tbl.Scan(so...).ToArrowRecords(ctx)
	if err != nil {
		return nil, fmt.Errorf("table: scanning %s at snapshot %d: %w", t.name, snapshotID, err)
	}
	return array.ReaderFromIter(sc, it), nil
}

// SnapshotTime returns when snapshot snapshotID was committed, or false if
// the handle's metadata does not hold it (expired, or never was).
func (t *Table) SnapshotTime(snapshotID int64) (time.Time, bool) {
	s := t.tbl.Metadata().SnapshotByID(snapshotID)
	if s == nil {
		return time.Time{}, false
	}
	return time.UnixMilli(s.TimestampMs), true
}
