package table

import (
	"context"
	"errors"
	"fmt"
	"github.com/apache/arrow-go/v18/arrow/array"
	"io/fs"
	"os"
	"slices"
	"strings"
	"sync/atomic"
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
	// TierBase is the size below which a data file is in the first tier
	// of size-tiered compaction (see [Table.Optimize]). Default 4 MiB.
	TierBase int64
	// ExpireOlderThan expires snapshots older than this, except the newest
	// RetainLast. Files only those snapshots referenced are deleted.
	// Default 1h.
	ExpireOlderThan time.Duration
	// RetainLast is the number of newest snapshots always kept. Default 5.
	RetainLast int
	// MaxSnapshots caps how many snapshots expiry keeps, however young:
	// a table committed to several times a second would otherwise hold
	// thousands within ExpireOlderThan, and every commit and load parses
	// them all (the metadata file lists every snapshot). Snapshots that a
	// registered reader (streaming reader, online sync, training set)
	// still needs are kept regardless. Default 500; negative: no cap.
	MaxSnapshots int
	// OrphanOlderThan is the safety margin of orphan removal: files in the
	// table directory that no snapshot references are deleted only if older
	// than this, so that a writer's files before its commit are safe. A
	// negative value skips orphan removal. Default 1h.
	OrphanOlderThan time.Duration
	// OrphanEvery skips orphan removal when this Store last did it for the
	// table less than OrphanEvery ago (0: every time). Orphans come only
	// from failed writes, and listing them reads every manifest of every
	// retained snapshot: the automatic maintenance of busy tables sets
	// this rather than paying for it every few seconds.
	OrphanEvery time.Duration
	// ScanConcurrency caps how many files a compaction reads at once
	// (0: iceberg-go's default, one per CPU). The automatic maintenance
	// reads one at a time, leaving the other cores to ingestion and the
	// pipelines.
	ScanConcurrency int
	// DutyCycle is the share of its time a compaction may keep a core
	// busy: after each batch it reads and writes, it pauses for as long
	// again as (1-DutyCycle)/DutyCycle of that time. A compaction is
	// seconds of CPU at once; the automatic maintenance spreads it so the
	// writers it serves keep their latency. 0 (or 1): no pauses.
	DutyCycle float64
}

// EnsureDefaults fills in the documented defaults of unset fields.
func (o *OptimizeOptions) EnsureDefaults() {
	if o.TargetFileSize <= 0 {
		o.TargetFileSize = defaultTargetFileSize
	}
	if o.MinInputFiles <= 0 {
		o.MinInputFiles = 2
	}
	if o.TierBase <= 0 {
		o.TierBase = 4 << 20
	}
	if o.ExpireOlderThan <= 0 {
		o.ExpireOlderThan = time.Hour
	}
	if o.RetainLast <= 0 {
		o.RetainLast = 5
	}
	if o.MaxSnapshots == 0 {
		o.MaxSnapshots = 500
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
//  1. Compaction: small data files are rewritten into files of up to
//     about o.TargetFileSize in one replace commit, whose summary carries
//     forward the current snapshot's properties that start with
//     [CarryForwardPrefix]. Rows and their contents are unchanged. It is
//     size-tiered, as in an LSM tree: files below o.TierBase are tier 0,
//     and tier k holds sizes up to o.TierBase·4^k; a tier is rewritten
//     (with the tiers below it) once it holds tierFanout files (tier 0:
//     o.MinInputFiles), and files of 75% of the target are left alone.
//     A row is so rewritten a few times in its life (log4 of target/base),
//     not at every pass until its file reaches the target size, which
//     for a table appended to many times a second meant rewriting up to
//     o.TargetFileSize at every pass.
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
	return t.optimize(ctx, o, false)
}

// rebaseAttempts bounds how many times a compaction or an expiry is
// committed again on a newer state when rebasing (see [Store.Optimize]).
const rebaseAttempts = 10

// optimize is Optimize. With rebase, a compaction or expiry that loses
// the race against another commit is committed again on the state that
// won, without rewriting anything, as long as the files it replaces are
// still live: the handle then moves past the other commit, which only a
// handle that is not a writer's may do.
func (t *Table) optimize(ctx context.Context, o OptimizeOptions, rebase bool) (OptimizeStats, error) {
	o.EnsureDefaults()
	var st OptimizeStats
	began := time.Now()

	if t.tbl.CurrentSnapshot() != nil {
		tasks, err := t.tbl.Scan().PlanFiles(ctx)
		if err != nil {
			return st, fmt.Errorf("table: optimizing %s: planning files: %w", t.name, err)
		}
		st.FilesBefore, st.FilesAfter = len(tasks), len(tasks)
		tasks = tiered(tasks, o)

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
			res, err := t.compact(ctx, plan.Groups, o, rebase)
			if err != nil {
				return st, err
			}
			st.FilesRewritten = res.RemovedDataFiles
			st.FilesAfter = st.FilesBefore - res.RemovedDataFiles + res.AddedDataFiles
			t.store.logger.Info("table compacted", "table", t.name.String(),
				"files_before", st.FilesBefore, "files_after", st.FilesAfter,
				"bytes_before", res.BytesBefore, "bytes_after", res.BytesAfter, "took", time.Since(began).Round(time.Millisecond))
		}
	}

	expireBegan := time.Now()
	for attempt := 1; ; attempt++ {
		n, err := t.expire(ctx, o)
		st.SnapshotsExpired = n
		if err == nil {
			break
		}
		if !rebase || !errors.Is(err, ErrConflict) || attempt == rebaseAttempts {
			return st, err
		}
	}

	t.store.logger.Debug("table snapshots expired", "table", t.name.String(), "expired", st.SnapshotsExpired, "took", time.Since(expireBegan).Round(time.Millisecond))
	if o.OrphanOlderThan > 0 && t.store.orphanCheckDue(t.name, o.OrphanEvery) {
		orphansBegan := time.Now()
		n, err := t.RemoveOrphans(ctx, o.OrphanOlderThan)
		st.OrphansRemoved = n
		if err != nil {
			return st, err
		}
		t.store.logger.Debug("table orphans checked", "table", t.name.String(), "removed", n, "took", time.Since(orphansBegan).Round(time.Millisecond))
	}
	return st, nil
}

// AutoMaintenance is what the automatic maintenance of ingestion and
// pipeline tables runs: the defaults, with orphan removal at most hourly,
// compaction reading one file at a time and keeping a core busy half of
// the time at most, and at most 100 snapshots kept
// (beyond those readers need). Their writers commit many times a second
// when fresh data is wanted, and every commit writes the metadata file,
// which lists every snapshot: a table holding 500 spent more of its
// commit encoding them than doing anything else.
var AutoMaintenance = OptimizeOptions{OrphanEvery: time.Hour, ScanConcurrency: 1, MaxSnapshots: 100, DutyCycle: 0.5}

func compactionOptions(o OptimizeOptions) []ictable.CompactionGroupOption {
	opts := []ictable.CompactionGroupOption{ictable.WithCompactionTargetFileSize(o.TargetFileSize)}
	if o.ScanConcurrency > 0 {
		opts = append(opts, ictable.WithCompactionScanConcurrency(o.ScanConcurrency))
	}
	return opts
}

// tierFanout is how many files of one tier (above tier 0) make it worth
// rewriting into one file of the next.
const tierFanout = 4

// tiered returns the tasks whose files a size-tiered compaction rewrites
// (see [Table.Optimize]): the files of the highest tier that is full, and
// of every tier below it.
func tiered(tasks []ictable.FileScanTask, o OptimizeOptions) []ictable.FileScanTask {
	done := o.TargetFileSize * 3 / 4
	tier := func(size int64) int {
		k := 0
		for lim := o.TierBase; size >= lim && lim < done; lim *= 4 {
			k++
		}
		return k
	}
	var count []int
	for _, t := range tasks {
		if sz := t.File.FileSizeBytes(); sz < done {
			k := tier(sz)
			for len(count) <= k {
				count = append(count, 0)
			}
			count[k]++
		}
	}
	top := -1
	for k, n := range count {
		if (k == 0 && n >= o.MinInputFiles) || (k > 0 && n >= tierFanout) {
			top = k
		}
	}
	var out []ictable.FileScanTask
	for _, t := range tasks {
		if sz := t.File.FileSizeBytes(); sz < done && tier(sz) <= top {
			out = append(out, t)
		}
	}
	return out
}

// orphanCheckDue reports whether orphan removal of table name is due,
// every being the least time between two (0: always), and if so records
// that it is done now.
func (s *Store) orphanCheckDue(name ident.Name, every time.Duration) bool {
	s.orphanMu.Lock()
	defer s.orphanMu.Unlock()
	now := time.Now()
	if last, ok := s.orphanChecked[name.String()]; ok && every > 0 && now.Sub(last) < every {
		return false
	}
	if s.orphanChecked == nil {
		s.orphanChecked = map[string]time.Time{}
	}
	s.orphanChecked[name.String()] = now
	return true
}

// compact rewrites the files of groups and commits the result in one
// replace snapshot that carries forward the sluice.* properties of the
// snapshot it commits on top of. The files are written once; with rebase,
// a conflicting commit makes the same result commit again on the new
// state, if every replaced file is still live there.
func (t *Table) compact(ctx context.Context, groups []compaction.Group, o OptimizeOptions, rebase bool) (ictable.RewriteResult, error) {
	var res ictable.RewriteResult
	results := make([]ictable.CompactionGroupResult, 0, len(groups))
	base := t.tbl.MetadataLocation()
	readFrom := t.SnapshotID()
	for _, g := range groups {
		gr, ok, err := t.compactGroup(ctx, g, o.DutyCycle)
		if err != nil {
			return res, err
		}
		if !ok {
			gr, err = ictable.ExecuteCompactionGroup(ctx, t.tbl,
				ictable.CompactionTaskGroup{PartitionKey: g.PartitionKey, Tasks: g.Tasks, TotalSizeBytes: g.TotalSizeBytes},
				compactionOptions(o)...)
		}
		if err != nil {
			return res, t.failed(ctx, err, base, "compaction")
		}
		if len(gr.OldDataFiles) == 0 && len(gr.NewDataFiles) == 0 {
			continue
		}
		results = append(results, gr)
		res.RewrittenGroups++
		res.RemovedDataFiles += len(gr.OldDataFiles)
		res.AddedDataFiles += len(gr.NewDataFiles)
		res.BytesBefore += gr.BytesBefore
		res.BytesAfter += gr.BytesAfter
	}
	if len(results) == 0 {
		return res, nil
	}
	if compactHook != nil {
		compactHook()
	}
	for attempt := 1; ; attempt++ {
		carried := iceberg.Properties{}
		for k, v := range t.SnapshotProperties() {
			if strings.HasPrefix(k, CarryForwardPrefix) {
				carried[k] = v
			}
		}
		base := t.tbl.MetadataLocation()
		txn := t.tbl.NewTransaction()
		rw := txn.NewRewrite(carried)
		for _, gr := range results {
			rw.ApplyResult(gr)
		}
		if err := rw.Commit(ctx); err != nil {
			return res, t.failed(ctx, err, base, "compaction")
		}
		err := t.commit(ctx, txn, base, "compaction")
		if err == nil {
			return res, nil
		}
		if !rebase || !errors.Is(err, ErrConflict) || attempt == rebaseAttempts {
			return res, err
		}
		// The handle is on the state that won. Committing the same
		// result on it is valid if only appends came in between: they
		// add files, so every replaced file is still live, and no delete
		// that the rewrite would have to carry over. The new files are
		// not deleted when giving up: if this very commit landed after
		// all, they are live (orphan removal deletes them otherwise).
		if !t.onlyAppendsSince(readFrom) {
			return res, err
		}
	}
}

// compactGroup rewrites the files of g into one file, as iceberg-go's
// ExecuteCompactionGroup does, but reading and writing Parquet with the
// table's own reader and writer, batch by batch, pausing between batches
// to keep to dutyCycle (see [OptimizeOptions.DutyCycle]). ok is false,
// and nothing is left behind, when g is not a case for it: the table is
// partitioned or of format v3 (row lineage), a file has deletes, or a
// file's columns are not the table's (its schema evolved since); the
// caller then uses iceberg-go's. err is ctx's, or a rewrite that lost
// rows.
func (t *Table) compactGroup(ctx context.Context, g compaction.Group, dutyCycle float64) (ictable.CompactionGroupResult, bool, error) {
	var gr ictable.CompactionGroupResult
	if !compactDirect || !t.tbl.Spec().IsUnpartitioned() || t.tbl.Metadata().Version() >= 3 {
		return gr, false, nil
	}
	var files []ChangedFile
	var old []iceberg.DataFile
	var rows int64
	seen := map[string]bool{}
	for _, task := range g.Tasks {
		if len(task.DeleteFiles) > 0 || len(task.EqualityDeleteFiles) > 0 || len(task.DeletionVectorFiles) > 0 {
			return gr, false, nil
		}
		if seen[task.File.FilePath()] { // a file split into several tasks
			continue
		}
		seen[task.File.FilePath()] = true
		files = append(files, ChangedFile{Path: localPath(task.File.FilePath()), Rows: task.File.Count()})
		old = append(old, task.File)
		rows += task.File.Count()
	}
	if rows == 0 {
		return gr, false, nil
	}
	w, err := t.fileWriter()
	if err != nil {
		return gr, false, nil
	}
	rr, err := t.ReadFiles(ctx, files, nil)
	if err != nil {
		return gr, false, nil
	}
	defer rr.Release()
	df, err := w.writeReader(ctx, paced(ctx, rr, dutyCycle))
	switch {
	case ctx.Err() != nil:
		if df != nil {
			os.Remove(localPath(df.FilePath()))
		}
		return gr, false, ctx.Err()
	case err != nil:
		t.store.logger.Debug("compacting through iceberg-go", "table", t.name.String(), "reason", err)
		return gr, false, nil
	case df.Count() != rows:
		os.Remove(localPath(df.FilePath()))
		return gr, false, fmt.Errorf("table: compacting %s: wrote %d rows of %d", t.name, df.Count(), rows)
	}
	directCompactions.Add(1)
	return ictable.CompactionGroupResult{
		PartitionKey: g.PartitionKey,
		OldDataFiles: old,
		NewDataFiles: []iceberg.DataFile{df},
		BytesBefore:  g.TotalSizeBytes,
		BytesAfter:   df.FileSizeBytes(),
	}, true, nil
}

// compactDirect enables compactGroup; tests turn it off to compare with
// iceberg-go's compaction. directCompactions counts the groups it
// rewrote (for tests).
var (
	compactDirect     = true
	directCompactions atomic.Int64
)

// pacer is a RecordReader that, before each batch after the first,
// sleeps so that the time since the previous batch was asked for (the
// reading and the caller's work on it) is dutyCycle of the total.
type pacer struct {
	array.RecordReader
	dutyCycle float64
	last      time.Time
	now       func() time.Time
	sleep     func(time.Duration) bool // false: cancelled
}

// paced returns rr paced to dutyCycle; rr itself when no pause is wanted.
func paced(ctx context.Context, rr array.RecordReader, dutyCycle float64) array.RecordReader {
	if dutyCycle <= 0 || dutyCycle >= 1 {
		return rr
	}
	return &pacer{RecordReader: rr, dutyCycle: dutyCycle, now: time.Now, sleep: func(d time.Duration) bool {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
			return true
		}
	}}
}

func (p *pacer) Next() bool {
	if !p.last.IsZero() {
		busy := p.now().Sub(p.last)
		if !p.sleep(time.Duration(float64(busy) * (1 - p.dutyCycle) / p.dutyCycle)) {
			return false
		}
	}
	p.last = p.now()
	return p.RecordReader.Next()
}

// compactHook, when set (by tests), runs between writing a compaction's
// files and committing them.
var compactHook func()

// onlyAppendsSince reports whether every snapshot from the handle's
// current one back to (excluding) snapshot id is an append.
func (t *Table) onlyAppendsSince(id int64) bool {
	meta := t.tbl.Metadata()
	for s := t.tbl.CurrentSnapshot(); s != nil && s.SnapshotID != id; {
		if s.Summary == nil || s.Summary.Operation != ictable.OpAppend || s.ParentSnapshotID == nil {
			return false
		}
		s = meta.SnapshotByID(*s.ParentSnapshotID)
		if s == nil {
			return false // expired: the history is unknown
		}
	}
	return t.tbl.CurrentSnapshot() != nil
}

// expire expires snapshots of the handle's state. A concurrent commit
// makes it fail with ErrConflict rather than retry: moving the handle past
// another writer's commit silently would defeat the fencing Append relies on.
func (t *Table) expire(ctx context.Context, o OptimizeOptions) (int, error) {
	before := len(t.tbl.Metadata().Snapshots())
	olderThan := o.ExpireOlderThan
	if snaps := t.tbl.Metadata().Snapshots(); o.MaxSnapshots > 0 && len(snaps) > max(o.MaxSnapshots, o.RetainLast) {
		// The newest MaxSnapshots snapshots stay: expire everything older
		// than the oldest of them.
		ts := make([]int64, len(snaps))
		for i, sn := range snaps {
			ts[i] = sn.TimestampMs
		}
		slices.Sort(ts)
		keepFrom := time.UnixMilli(ts[len(ts)-max(o.MaxSnapshots, o.RetainLast)])
		olderThan = min(olderThan, max(time.Since(keepFrom), time.Millisecond))
	}
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
	deleted := 0
	for attempt := 1; ; attempt++ {
		cur, err := t.store.mc.LoadTable(ctx, identifier(t.name))
		if err != nil {
			return deleted, loadError(t.name, err)
		}
		res, err := cur.DeleteOrphanFiles(ctx, ictable.WithFilesOlderThan(olderThan))
		deleted += len(res.DeletedFiles)
		// A writer that lost a commit race deletes the metadata file it
		// wrote, and the walk may have listed it just before: a file
		// gone during the walk is no orphan of ours. Walk again, on the
		// table's state then.
		if err != nil && errors.Is(err, fs.ErrNotExist) && attempt < 3 {
			continue
		}
		if deleted > 0 {
			t.store.logger.Info("table orphan files removed", "table", t.name.String(), "files", deleted)
		}
		if err != nil {
			return deleted, fmt.Errorf("table: removing orphan files of %s: %w", t.name, err)
		}
		return deleted, nil
	}
}

// Optimize loads table name and optimizes it, as [Table.Optimize], but
// survives concurrent writers (ingestion commits every few seconds), which
// a handle of its own, with no offsets to protect, may move past: when
// another commit wins the race, a compaction whose files were written is
// committed again on the new state, without rewriting anything, if only
// appends came in between (see [Table.optimize]); an expiry is simply
// redone. Any other conflict starts the whole optimization over on the
// table's new state, up to maxOptimizeAttempts times.
func (s *Store) Optimize(ctx context.Context, name ident.Name, o OptimizeOptions) (OptimizeStats, error) {
	// One optimization at a time per Store: the tables of a stream and of
	// the pipeline reading it reach their maintenance together, and two
	// compactions at once took both cores of a small machine from
	// ingestion and the pipelines for a second.
	select {
	case s.optimizing <- struct{}{}:
		defer func() { <-s.optimizing }()
	case <-ctx.Done():
		return OptimizeStats{}, ctx.Err()
	}
	var err error
	for attempt := 1; ; attempt++ {
		var t *Table
		if t, err = s.Load(ctx, name); err != nil {
			return OptimizeStats{}, err
		}
		var st OptimizeStats
		if st, err = t.optimize(ctx, o, true); err == nil || !errors.Is(err, ErrConflict) || attempt == maxOptimizeAttempts {
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
