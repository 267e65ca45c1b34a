package table

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/catalog"
	ictable "github.com/apache/iceberg-go/table"

	"github.com/sluice-dev/sluice/internal/ident"
)

// Table is a handle on one table at a point in time: the snapshot it last
// loaded, refreshed or committed. Reads ([Table.Scan], [Table.Count],
// [Table.DataFiles]) see that snapshot until [Table.Refresh] or a commit
// moves the handle.
//
// A Table is not goroutine-safe: one goroutine (typically the table's single
// writer) owns it. Other goroutines use their own handles from [Store.Load].
type Table struct {
	store  *Store
	name   ident.Name
	tbl    *ictable.Table
	schema *arrow.Schema // Arrow form of tbl.Schema(); rebuilt when the schema id changes
	sid    int
	writer *fileWriter // of WriteFiles; made again when the schema or properties change
}

func newTable(s *Store, name ident.Name, tbl *ictable.Table) (*Table, error) {
	t := &Table{store: s, name: name, tbl: tbl, sid: -1}
	if err := t.syncSchema(); err != nil {
		return nil, err
	}
	return t, nil
}

func (t *Table) syncSchema() error {
	sc := t.tbl.Schema()
	if t.schema != nil && sc.ID == t.sid {
		return nil
	}
	asc, err := ictable.SchemaToArrowSchema(sc, nil, false, false)
	if err != nil {
		return fmt.Errorf("table: converting schema of %s to arrow: %w", t.name, err)
	}
	t.schema, t.sid = asc, sc.ID
	return nil
}

// Name returns the table's name.
func (t *Table) Name() ident.Name { return t.name }

// Location returns the table's directory.
func (t *Table) Location() string { return localPath(t.tbl.Location()) }

// ArrowSchema returns the schema that [Table.Append] expects and
// [Table.Scan] returns (without column projection): plain Arrow without
// field-id metadata; lists have an element field named "element";
// timestamptz columns are timestamp[us, tz=UTC]. The caller must not modify
// it.
func (t *Table) ArrowSchema() *arrow.Schema { return t.schema }

// Properties returns a copy of the table properties.
func (t *Table) Properties() map[string]string { return maps.Clone(t.tbl.Properties()) }

// Refresh moves the handle to the table's current state. It returns
// [ErrNotFound] if the table was dropped.
func (t *Table) Refresh(ctx context.Context) error {
	if err := t.tbl.Refresh(ctx); err != nil {
		if errors.Is(err, catalog.ErrNoSuchTable) || errors.Is(err, catalog.ErrNoSuchNamespace) {
			return fmt.Errorf("%w: %s", ErrNotFound, t.name)
		}
		return fmt.Errorf("table: refreshing %s: %w", t.name, err)
	}
	return t.syncSchema()
}

// SnapshotProperties returns a copy of the summary properties of the
// handle's current snapshot, or nil if the table has no snapshot. Besides
// Iceberg's own keys (total-records, added-data-files, …) it holds the props
// given to the [Table.Append] that made the snapshot, or those carried
// forward by [Table.Optimize] (keys starting with "sluice.").
func (t *Table) SnapshotProperties() map[string]string {
	s := t.tbl.CurrentSnapshot()
	if s == nil || s.Summary == nil {
		return nil
	}
	out := maps.Clone(map[string]string(s.Summary.Properties))
	if out == nil {
		out = map[string]string{}
	}
	return out
}

// SnapshotID returns the id of the handle's current snapshot, or 0 if the
// table has no snapshot.
func (t *Table) SnapshotID() int64 {
	if s := t.tbl.CurrentSnapshot(); s != nil {
		return s.SnapshotID
	}
	return 0
}

// SnapshotCount returns the number of snapshots the table metadata retains.
func (t *Table) SnapshotCount() int { return len(t.tbl.Metadata().Snapshots()) }

// Append writes recs as new Parquet data files and commits them, in one
// snapshot whose summary carries props, to the state this handle last
// loaded or committed. recs must share one schema whose columns match
// [Table.ArrowSchema] by name (missing nullable columns are written as
// nulls); Append does not release them. Zero records commit an empty
// snapshot, which still records props.
//
// If the table changed since this handle last loaded or committed, nothing
// is committed and the error wraps [ErrConflict]; the handle is then
// refreshed to the current state so the caller can inspect
// [Table.SnapshotProperties] and retry. Any other error leaves the handle
// where it was. Data files written for a failed commit are orphans, deleted
// by [Table.RemoveOrphans] (which [Table.Optimize] calls). Cancelling ctx
// abandons the write; once the catalog commit has started it may still
// land, which the caller detects the same way, through ErrConflict or
// SnapshotProperties after a refresh.
func (t *Table) Append(ctx context.Context, recs []arrow.RecordBatch, props map[string]string) error {
	sc := t.schema
	if len(recs) > 0 {
		sc = recs[0].Schema()
	}
	rdr, err := array.NewRecordReader(sc, recs)
	if err != nil {
		return fmt.Errorf("table: appending to %s: %w", t.name, err)
	}
	defer rdr.Release()

	base := t.tbl.MetadataLocation()
	txn := t.tbl.NewTransaction()
	if err := txn.Append(ctx, rdr, iceberg.Properties(props)); err != nil {
		// Writing can fail because the table moved: snapshot expiry may have
		// deleted the manifests of the snapshot this handle is on.
		return t.failed(ctx, err, base, "append")
	}
	return t.commit(ctx, txn, base, "append")
}

// commit commits txn and moves the handle to the result. On failure it
// classifies the error: a conflict (the catalog rejected a stale base, or
// the table moved since base) wraps ErrConflict and refreshes the handle.
func (t *Table) commit(ctx context.Context, txn *ictable.Transaction, base, op string) error {
	committed, err := txn.Commit(ctx)
	if err == nil {
		t.tbl = committed
		return t.syncSchema()
	}
	return t.failed(ctx, err, base, op)
}

// failed classifies err, the failure of operation op started on metadata
// version base, and refreshes the handle.
func (t *Table) failed(ctx context.Context, err error, base, op string) error {
	// iceberg-go reports a stale base in two ways: the SQL catalog's
	// requirement check ("requirement failed: branch main has changed"), an
	// error without a sentinel, and its compare-and-swap on
	// metadata_location, which wraps ictable.ErrCommitFailed. Classify by
	// state rather than by message: reload, and call it a conflict if the
	// table moved.
	if rerr := t.Refresh(ctx); rerr != nil {
		return fmt.Errorf("table: %s on %s: %w (refreshing after the failure: %w)", op, t.name, err, rerr)
	}
	if errors.Is(err, ictable.ErrCommitFailed) || t.tbl.MetadataLocation() != base {
		return fmt.Errorf("%w: %s on %s: %w", ErrConflict, op, t.name, err)
	}
	return fmt.Errorf("table: %s on %s: %w", op, t.name, err)
}

// ScanOptions configures [Table.Scan]. The zero value reads every row and
// column.
type ScanOptions struct {
	// Limit caps the number of rows returned; 0 means no limit.
	Limit int64
	// Columns projects these top-level columns, in table order; nil or
	// empty means all columns.
	Columns []string
}

// Scan reads the handle's current snapshot. The returned reader's schema is
// [Table.ArrowSchema] (projected to opts.Columns); a table without a
// snapshot yields no batches. Batches arrive in data-file order, not
// necessarily in commit order.
//
// The caller owns the reader and must Release it; a batch is valid until
// the next call to Next unless the caller retains it. Cancelling ctx ends
// the read, and the reader's Err reports it. The reader is not
// goroutine-safe.
func (t *Table) Scan(ctx context.Context, opts ScanOptions) (array.RecordReader, error) {
	var so []ictable.ScanOption
	if len(opts.Columns) > 0 {
		so = append(so, ictable.WithSelectedFields(opts.Columns...))
	}
	if opts.Limit > 0 {
		so = append(so, ictable.WithLimit(opts.Limit))
	}
	sc, it, err := t.tbl.Scan(so...).ToArrowRecords(ctx)
	if err != nil {
		return nil, fmt.Errorf("table: scanning %s: %w", t.name, err)
	}
	return array.ReaderFromIter(sc, it), nil
}

// Count returns the number of rows in the handle's current snapshot. It
// reads the snapshot summary (total-records), falling back to the manifests'
// per-file record counts; it does not read data files.
func (t *Table) Count(ctx context.Context) (int64, error) {
	s := t.tbl.CurrentSnapshot()
	if s == nil {
		return 0, nil
	}
	if s.Summary != nil {
		if v, ok := s.Summary.Properties["total-records"]; ok {
			if n, err := strconv.ParseInt(v, 10, 64); err == nil {
				return n, nil
			}
		}
	}
	tasks, err := t.tbl.Scan().PlanFiles(ctx)
	if err != nil {
		return 0, fmt.Errorf("table: counting %s: %w", t.name, err)
	}
	var n int64
	for _, task := range tasks {
		n += task.File.Count()
	}
	return n, nil
}

// DataFiles returns the absolute local paths of the live Parquet data files
// of the handle's current snapshot, sorted.
func (t *Table) DataFiles(ctx context.Context) ([]string, error) {
	if t.tbl.CurrentSnapshot() == nil {
		return nil, nil
	}
	tasks, err := t.tbl.Scan().PlanFiles(ctx)
	if err != nil {
		return nil, fmt.Errorf("table: planning files of %s: %w", t.name, err)
	}
	out := make([]string, 0, len(tasks))
	for _, task := range tasks {
		out = append(out, localPath(task.File.FilePath()))
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}
