package table

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/apache/iceberg-go"
	ictable "github.com/apache/iceberg-go/table"
	"github.com/apache/iceberg-go/table/compaction"

	"github.com/sluice-dev/sluice/internal/ident"
)

// CarryForwardPrefix marks snapshot summary properties that
// [Table.Optimize] copies onto its rewrite snapshot, so that the current
// snapshot keeps answering "which offsets are committed" after compaction.
const CarryForwardPrefix = "sluice."

// OptimizeOptions configures [Table.Optimize]. The zero value uses the
// documented defaults.
type OptimizeOptions struct {
	// TargetFileSize is the size of the data files compaction writes.
	// Files smaller than 75% of it are rewritten. Default 128 MiB.
	TargetFileSize int64
	// MinInputFiles is the fewest small files worth rewriting together.
	// Default 2.
	MinInputFiles int
	// ExpireOlderThan expires snapshots older than this, except the newest
	// RetainLast. Files only those snapshots referenced are deleted.
	// Default 1h.
	ExpireOlderThan time.Duration
	// RetainLast is the number of newest snapshots always kept. Default 5.
	RetainLast int
	// OrphanOlderThan is the safety margin of orphan removal: files in the
	// table directory that no snapshot references are deleted only if older
	// than this, so that a writer's files before its commit are safe. A
	// negative value skips orphan removal. Default 1h.
	OrphanOlderThan time.Duration
}

// EnsureDefaults fills in the documented defaults of unset fields.
func (o *OptimizeOptions) EnsureDefaults() {
	if o.TargetFileSize <= 0 {
		o.TargetFileSize = defaultTargetFileSize
	}
	if o.MinInputFiles <= 0 {
		o.MinInputFiles = 2
	}
	if o.ExpireOlderThan <= 0 {
		o.ExpireOlderThan = time.Hour
	}
	if o.RetainLast <= 0 {
		o.RetainLast = 5
	}
	if o.OrphanOlderThan == 0 {
		o.OrphanOlderThan = time.Hour
	}
}

// OptimizeStats reports what [Table.Optimize] did.
type OptimizeStats struct {
	FilesBefore      int `json:"files_before"`    // live data files before compaction
	FilesAfter       int `json:"files_after"`     // live data files after compaction
	FilesRewritten   int `json:"files_rewritten"` // data files replaced by compaction
	SnapshotsExpired int `json:"snapshots_expired"`
	OrphansRemoved   int `json:"orphans_removed"`
}

// Optimize maintains the table, in three steps:
//
//  1. Compaction: small data files are rewritten into files of about
//     o.TargetFileSize in one replace commit, whose summary carries forward
//     the current snapshot's properties that start with
//     [CarryForwardPrefix]. Rows and their contents are unchanged.
//  2. Expiry: snapshots older than o.ExpireOlderThan beyond the newest
//     o.RetainLast are removed, with the files only they referenced, except
//     those a streaming reader still needs (see [Store.SetReader]).
//  3. Orphan removal, as [Table.RemoveOrphans] with o.OrphanOlderThan.
//
// Compaction and expiry commit on top of the handle's state. If a writer
// committed after this handle loaded (or during Optimize), that step commits
// nothing and the error wraps [ErrConflict], as for [Table.Append]; the
// handle is refreshed. The returned stats are valid for the steps that
// completed.
func (t *Table) Optimize(ctx context.Context, o OptimizeOptions) (OptimizeStats, error) {
	o.EnsureDefaults()
	var st OptimizeStats

	if t.tbl.CurrentSnapshot() != nil {
		tasks, err := t.tbl.Scan().PlanFiles(ctx)
		if err != nil {
			return st, fmt.Errorf("table: optimizing %s: planning files: %w", t.name, err)
		}
		st.FilesBefore, st.FilesAfter = len(tasks), len(tasks)

		cfg := compaction.DefaultConfig()
		cfg.TargetFileSizeBytes = o.TargetFileSize
		cfg.MinFileSizeBytes = o.TargetFileSize * 3 / 4
		cfg.MaxFileSizeBytes = o.TargetFileSize * 9 / 5
		cfg.MinInputFiles = uint(o.MinInputFiles)
		plan, err := cfg.PlanCompaction(tasks)
		if err != nil {
			return st, fmt.Errorf("table: optimizing %s: planning compaction: %w", t.name, err)
		}
		if len(plan.Groups) > 0 {
			groups := make([]ictable.CompactionTaskGroup, len(plan.Groups))
			for i, g := range plan.Groups {
				groups[i] = ictable.CompactionTaskGroup{PartitionKey: g.PartitionKey, Tasks: g.Tasks, TotalSizeBytes: g.TotalSizeBytes}
			}
			carried := iceberg.Properties{}
			for k, v := range t.SnapshotProperties() {
				if strings.HasPrefix(k, CarryForwardPrefix) {
					carried[k] = v
				}
			}
			base := t.tbl.MetadataLocation()
			txn := t.tbl.NewTransaction()
			res, err := txn.RewriteDataFiles(ctx, groups, ictable.RewriteDataFilesOptions{
				SnapshotProps: carried,
				GroupOptions:  []ictable.CompactionGroupOption{ictable.WithCompactionTargetFileSize(o.TargetFileSize)},
			})
			if err != nil {
				return st, t.failed(ctx, err, base, "compaction")
			}
			if err := t.commit(ctx, txn, base, "compaction"); err != nil {
				return st, err
			}
			st.FilesRewritten = res.RemovedDataFiles
			st.FilesAfter = st.FilesBefore - res.RemovedDataFiles + res.AddedDataFiles
			t.store.logger.Info("table compacted", "table", t.name.String(),
				"files_before", st.FilesBefore, "files_after", st.FilesAfter,
				"bytes_before", res.BytesBefore, "bytes_after", res.BytesAfter)
		}
	}

	n, err := t.expire(ctx, o)
	st.SnapshotsExpired = n
	if err != nil {
		return st, err
	}

	if o.OrphanOlderThan > 0 {
		n, err := t.RemoveOrphans(ctx, o.OrphanOlderThan)
		st.OrphansRemoved = n
		if err != nil {
			return st, err
		}
	}
	return st, nil
}

// expire expires snapshots of the handle's state. A concurrent commit
// makes it fail with ErrConflict rather than retry: moving the handle past
// another writer's commit silently would defeat the fencing Append relies on.
func (t *Table) expire(ctx context.Context, o OptimizeOptions) (int, error) {
	before := len(t.tbl.Metadata().Snapshots())
	olderThan := o.ExpireOlderThan
	// Keep what streaming readers have not read yet.
	oldest, err := t.store.oldestReader(ctx, t.name)
	if err != nil {
		return 0, err
	}
	if !oldest.IsZero() {
		olderThan = max(olderThan, time.Since(oldest)+readerMargin)
	}
	txn := t.tbl.NewTransaction()
	if err := txn.ExpireSnapshots(
		ictable.WithOlderThan(olderThan),
		ictable.WithRetainLast(o.RetainLast),
		ictable.WithPostCommit(true),
	); err != nil {
		return 0, fmt.Errorf("table: optimizing %s: expiring snapshots: %w", t.name, err)
	}
	if err := t.commit(ctx, txn, t.tbl.MetadataLocation(), "snapshot expiry"); err != nil {
		return 0, err
	}
	return before - len(t.tbl.Metadata().Snapshots()), nil
}

// RemoveOrphans deletes files under the table's directory that no retained
// snapshot or metadata version references and that are older than
// olderThan (the safety margin protecting files a writer has written but
// not yet committed; use at least the longest write-to-commit time). It
// returns how many files it deleted.
//
// It reads the table's current state from the catalog, not the handle's, and
// leaves the handle where it is.
func (t *Table) RemoveOrphans(ctx context.Context, olderThan time.Duration) (int, error) {
	if olderThan < 0 {
		return 0, fmt.Errorf("table: removing orphan files of %s: negative age %v", t.name, olderThan)
	}
	cur, err := t.store.cat.LoadTable(ctx, identifier(t.name))
	if err != nil {
		return 0, loadError(t.name, err)
	}
	res, err := cur.DeleteOrphanFiles(ctx, ictable.WithFilesOlderThan(olderThan))
	if err != nil {
		return len(res.DeletedFiles), fmt.Errorf("table: removing orphan files of %s: %w", t.name, err)
	}
	if len(res.DeletedFiles) > 0 {
		t.store.logger.Info("table orphan files removed", "table", t.name.String(), "files", len(res.DeletedFiles))
	}
	return len(res.DeletedFiles), nil
}

// Optimize loads table name and optimizes it, retrying on the table's new
// state when a concurrent writer (an ingestion commit) wins the race: a
// compaction of the latest state is always valid, so unlike a writer with
// offsets to protect, it can simply start over. It gives up after
// maxOptimizeAttempts conflicts.
func (s *Store) Optimize(ctx context.Context, name ident.Name, o OptimizeOptions) (OptimizeStats, error) {
	var err error
	for attempt := 1; ; attempt++ {
		var t *Table
		if t, err = s.Load(ctx, name); err != nil {
			return OptimizeStats{}, err
		}
		var st OptimizeStats
		if st, err = t.Optimize(ctx, o); err == nil || !errors.Is(err, ErrConflict) || attempt == maxOptimizeAttempts {
			return st, err
		}
		select {
		case <-ctx.Done():
			return OptimizeStats{}, ctx.Err()
		case <-time.After(time.Duration(attempt) * 20 * time.Millisecond):
		}
	}
}

const maxOptimizeAttempts = 20
