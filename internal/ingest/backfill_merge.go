package ingest

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"log/slog"
	"maps"
	"math/bits"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/compute"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/sluice-dev/sluice/internal/stream"
	"github.com/sluice-dev/sluice/internal/table"
)

// PropBackfill is the snapshot summary property that records the backfill
// merge, in the snapshot of the merge commit itself (so the record and the
// rows land atomically) and in every later snapshot: ingestion commits and
// compaction carry every sluice.* property forward. Its value is the JSON
// of a [BackfillResult]. A table whose current snapshot has it is never
// merged into again.
const PropBackfill = "sluice.backfill"

// BackfillResult is what a backfill merge did.
type BackfillResult struct {
	// ID identifies the merge attempt that committed (random).
	ID string `json:"id"`
	// Trigger is why the merge ran: "overlap" or "deadline" (or "manual"
	// for [MergeBackfill] callers that say so).
	Trigger           string    `json:"trigger"`
	RowsInserted      int64     `json:"rows_inserted"`
	DuplicatesSkipped int64     `json:"duplicates_skipped"`
	MergedAt          time.Time `json:"merged_at"`
	// SnapshotID is the merge commit's snapshot (not part of the property).
	SnapshotID int64 `json:"-"`
}

// MergeOptions configures [MergeBackfill]. The zero value is usable.
type MergeOptions struct {
	// TempDir holds the spill files of the merge (hashes of the keys,
	// partitioned by hash); it is created if missing and emptied after.
	// Default: the directory "tmp" beside the store's warehouse (the data
	// directory's tmp/).
	TempDir string
	// Trigger is recorded in the result. Default "manual".
	Trigger string
	// Logger receives progress; default none.
	Logger *slog.Logger
	// PartitionEntries bounds the keys held in memory at once: the spill
	// is split into enough hash partitions that each holds about this many
	// keys (of both sides). Default 512Ki (at most ~32 MiB of hash set).
	PartitionEntries int
}

// maxMergeAttempts bounds how many times a merge starts over, because the
// source changed under it or live ingestion committed a row that duplicates
// a backfill row while it was writing.
const maxMergeAttempts = 5

// maxCommitAttempts bounds the conflicts of one merge's commit with live
// ingestion commits.
const maxCommitAttempts = 100

// testHookBeforeCommit, when set (by tests), runs after a merge's data
// files are written and before its first commit attempt.
var testHookBeforeCommit func()

// errRetryMerge marks a merge attempt that must start over.
var errRetryMerge = errors.New("backfill merge must start over")

// merged returns the recorded merge of the handle's current snapshot.
func merged(t *table.Table) (BackfillResult, bool) {
	raw := t.SnapshotProperties()[PropBackfill]
	if raw == "" {
		return BackfillResult{}, false
	}
	var r BackfillResult
	if err := json.Unmarshal([]byte(raw), &r); err != nil {
		r = BackfillResult{ID: "unreadable", Trigger: raw}
	}
	r.SnapshotID = t.SnapshotID()
	return r, true
}

// MergeBackfill merges the backfill source of spec into its ingestion table
// once, as the seed's MERGE INTO: every source row whose deduplication key
// (spec.Ingestion.DedupColumns; null-safe equality) is not already in the
// table, nor earlier in the source, is appended with record_source
// "backfill", in ONE commit that also records [PropBackfill]. If the table
// already records a merge, MergeBackfill returns it and does nothing.
//
// It runs beside live ingestion without pausing it: it reads the table's
// keys and the source, writes the new rows' data files, and only then
// commits; a commit that loses the race to an ingestion commit checks the
// rows committed meanwhile against the rows it inserts and commits again
// (or starts over if one of them now exists). Memory is bounded by
// o.PartitionEntries: both sides' key hashes are spilled to disk, by hash
// partition, and the source is streamed twice (hash, then write).
//
// A crash at any moment leaves either no merge (only orphan files, removed
// by table maintenance) or the whole merge; running MergeBackfill again
// after a crash merges exactly once.
func MergeBackfill(ctx context.Context, store *table.Store, spec *stream.Spec, o MergeOptions) (BackfillResult, error) {
	if spec.Ingestion.BackfillSource == nil {
		return BackfillResult{}, fmt.Errorf("stream %s has no backfill source", spec.Name)
	}
	if o.TempDir == "" {
		o.TempDir = filepath.Join(filepath.Dir(store.Warehouse()), "tmp")
	}
	if o.Trigger == "" {
		o.Trigger = "manual"
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.PartitionEntries <= 0 {
		o.PartitionEntries = 512 << 10
	}
	dst, err := store.Load(ctx, spec.DestinationName())
	if err != nil {
		return BackfillResult{}, fmt.Errorf("loading ingestion table: %w", err)
	}
	j := &mergeJob{store: store, spec: spec, dst: dst, o: o}
	for attempt := 1; ; attempt++ {
		res, err := j.attempt(ctx)
		if err == nil || !errors.Is(err, errRetryMerge) || attempt == maxMergeAttempts {
			return res, err
		}
		o.Logger.Info("backfill merge starting over", "attempt", attempt+1, "reason", err)
	}
}

type mergeJob struct {
	store *table.Store
	spec  *stream.Spec
	dst   *table.Table
	o     MergeOptions
}

func newMergeID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func (j *mergeJob) attempt(ctx context.Context) (BackfillResult, error) {
	began := time.Now()
	log := j.o.Logger
	if err := j.dst.Refresh(ctx); err != nil {
		return BackfillResult{}, err
	}
	if r, ok := merged(j.dst); ok {
		return r, nil
	}
	src, err := openSource(ctx, j.store, j.spec.Ingestion.BackfillSource, j.dst.ArrowSchema())
	if err != nil {
		return BackfillResult{}, err
	}
	if err := os.MkdirAll(j.o.TempDir, 0o700); err != nil {
		return BackfillResult{}, fmt.Errorf("creating merge spill directory: %w", err)
	}
	prefix := "backfill-" + j.spec.Name + "-" // names hold no "-"
	// Spill directories of this stream's earlier attempts that a crash left.
	if old, _ := filepath.Glob(filepath.Join(j.o.TempDir, prefix+"*")); len(old) > 0 {
		for _, d := range old {
			_ = os.RemoveAll(d)
		}
	}
	dir, err := os.MkdirTemp(j.o.TempDir, prefix)
	if err != nil {
		return BackfillResult{}, fmt.Errorf("creating merge spill directory: %w", err)
	}
	defer os.RemoveAll(dir)

	hasher := newKeyHasher(j.spec.Ingestion.DedupColumns())
	nIng, err := j.dst.Count(ctx)
	if err != nil {
		return BackfillResult{}, err
	}
	sp, err := newSpill(dir, nIng+src.rows, j.o.PartitionEntries)
	if err != nil {
		return BackfillResult{}, err
	}
	defer sp.close()

	// 1. The ingestion table's keys, as of now.
	scanned, err := j.dst.DataFiles(ctx)
	if err != nil {
		return BackfillResult{}, err
	}
	if err := j.hashFiles(ctx, hasher, scanned, sp.addIngestion); err != nil {
		return BackfillResult{}, err
	}
	// 2. The source's keys, numbered in read order.
	var nSrc uint64
	var hs []h128
	for rec, err := range src.batches(ctx, hasher.columns()) {
		if err != nil {
			return BackfillResult{}, retryIfChanged(err)
		}
		hs, err = hasher.hash(rec, hs)
		n := rec.NumRows()
		rec.Release()
		if err != nil {
			return BackfillResult{}, err
		}
		for i, h := range hs {
			if err := sp.addSource(h, nSrc+uint64(i)); err != nil {
				return BackfillResult{}, err
			}
		}
		nSrc += uint64(n)
	}
	hashed := time.Now()
	// 3. Per partition: which source rows are new.
	keep := make([]uint64, (nSrc+63)/64)
	inserted, err := sp.decide(func(id uint64) { keep[id/64] |= 1 << (id % 64) })
	if err != nil {
		return BackfillResult{}, err
	}
	decided := time.Now()
	// 4. Write the new rows (not committed yet).
	var seen uint64
	pending, err := j.dst.WriteFiles(ctx, j.dst.ArrowSchema(), filterRows(ctx, src.batches(ctx, nil), keep, &seen))
	if err != nil {
		return BackfillResult{}, retryIfChanged(err)
	}
	discard := func() {
		if err := j.dst.DiscardFiles(pending); err != nil {
			log.Warn("deleting uncommitted backfill files", "err", err)
		}
	}
	if seen != nSrc || pending.Rows() != inserted {
		discard()
		return BackfillResult{}, fmt.Errorf("%w: the source had %d rows when hashed, %d when written (%d written, %d expected)",
			errRetryMerge, nSrc, seen, pending.Rows(), inserted)
	}
	written := time.Now()
	if testHookBeforeCommit != nil {
		testHookBeforeCommit()
	}
	res := BackfillResult{ID: newMergeID(), Trigger: j.o.Trigger, RowsInserted: inserted, DuplicatesSkipped: int64(nSrc) - inserted}
	// 5. Commit, re-checking what live ingestion committed meanwhile.
	known := map[string]bool{}
	for _, f := range scanned {
		known[f] = true
	}
	for attempt := 1; ; attempt++ {
		res.MergedAt = time.Now().UTC().Truncate(time.Microsecond)
		rec, _ := json.Marshal(res)
		props := carried(j.dst.SnapshotProperties())
		props[PropBackfill] = string(rec)
		err := j.dst.CommitFiles(ctx, pending, props)
		if err == nil {
			res.SnapshotID = j.dst.SnapshotID()
			log.Info("backfill merged", "rows_inserted", res.RowsInserted, "duplicates_skipped", res.DuplicatesSkipped,
				"trigger", res.Trigger, "partitions", sp.parts, "commit_attempts", attempt,
				"hash_s", hashed.Sub(began).Seconds(), "decide_s", decided.Sub(hashed).Seconds(),
				"write_s", written.Sub(decided).Seconds(), "commit_s", time.Since(written).Seconds())
			return res, nil
		}
		if !errors.Is(err, table.ErrConflict) {
			// The table did not move (else it would be a conflict): the
			// files were not committed.
			discard()
			return BackfillResult{}, fmt.Errorf("committing the backfill merge: %w", err)
		}
		if prev, ok := merged(j.dst); ok {
			if prev.ID == res.ID {
				// Our commit landed although the catalog reported a failure.
				prev.SnapshotID = j.dst.SnapshotID()
				return prev, nil
			}
			discard()
			return prev, nil // someone else merged meanwhile
		}
		if attempt == maxCommitAttempts {
			discard()
			return BackfillResult{}, fmt.Errorf("committing the backfill merge: %d conflicts with other commits: %w", attempt, err)
		}
		current, err := j.dst.DataFiles(ctx)
		if err != nil {
			discard()
			return BackfillResult{}, err
		}
		var delta []string
		for _, f := range current {
			if !known[f] {
				delta = append(delta, f)
			}
		}
		if len(delta) > 0 {
			dup, err := j.deltaDuplicates(ctx, hasher, sp, delta)
			if err != nil {
				discard()
				return BackfillResult{}, err
			}
			if dup {
				discard()
				return BackfillResult{}, fmt.Errorf("%w: rows ingested during the merge duplicate backfill rows", errRetryMerge)
			}
		}
		known = map[string]bool{}
		for _, f := range current {
			known[f] = true
		}
	}
}

func retryIfChanged(err error) error {
	if errors.Is(err, errSourceChanged) {
		return fmt.Errorf("%w: %w", errRetryMerge, err)
	}
	return err
}

// carried returns the sluice.* properties of a snapshot, which every commit
// to an ingestion table carries forward.
func carried(props map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range props {
		if strings.HasPrefix(k, table.CarryForwardPrefix) {
			out[k] = v
		}
	}
	return out
}

// withCarried returns own plus the sluice.* properties of cur that own does
// not set.
func withCarried(cur, own map[string]string) map[string]string {
	out := carried(cur)
	maps.Copy(out, own)
	return out
}

// hashFiles hashes the keys of the rows of files of the ingestion table.
func (j *mergeJob) hashFiles(ctx context.Context, hasher *keyHasher, files []string, add func(h128) error) error {
	if len(files) == 0 {
		return nil
	}
	rr, err := j.dst.ScanFiles(ctx, files, hasher.columns())
	if err != nil {
		return err
	}
	defer rr.Release()
	var hs []h128
	for rr.Next() {
		if hs, err = hasher.hash(rr.RecordBatch(), hs); err != nil {
			return fmt.Errorf("hashing keys of %s: %w", j.dst.Name(), err)
		}
		for _, h := range hs {
			if err := add(h); err != nil {
				return err
			}
		}
	}
	if err := rr.Err(); err != nil {
		return fmt.Errorf("reading %s: %w", j.dst.Name(), err)
	}
	return nil
}

// deltaDuplicates reports whether rows of files (committed to the
// ingestion table after it was hashed) have the key of a row being
// inserted.
func (j *mergeJob) deltaDuplicates(ctx context.Context, hasher *keyHasher, sp *spill, files []string) (bool, error) {
	byPart := map[int]map[h128]bool{}
	err := j.hashFiles(ctx, hasher, files, func(h h128) error {
		p := sp.part(h)
		if byPart[p] == nil {
			byPart[p] = map[h128]bool{}
		}
		byPart[p][h] = true
		return nil
	})
	if err != nil {
		return false, err
	}
	for p, set := range byPart {
		found := false
		if err := sp.eachKept(p, func(h h128) bool {
			found = set[h]
			return !found
		}); err != nil {
			return false, err
		}
		if found {
			return true, nil
		}
	}
	return false, nil
}

// filterRows yields the rows of batches whose number (in order, from 0) has
// its bit set in keep, and counts the rows it saw in seen.
func filterRows(ctx context.Context, batches iter.Seq2[arrow.RecordBatch, error], keep []uint64, seen *uint64) iter.Seq2[arrow.RecordBatch, error] {
	return func(yield func(arrow.RecordBatch, error) bool) {
		mask := array.NewBooleanBuilder(memory.DefaultAllocator)
		defer mask.Release()
		for rec, err := range batches {
			if err != nil {
				yield(nil, err)
				return
			}
			n := uint64(rec.NumRows())
			base := *seen
			*seen += n
			if *seen > uint64(len(keep))*64 {
				rec.Release()
				yield(nil, fmt.Errorf("%w: the source grew between reads", errSourceChanged))
				return
			}
			kept := uint64(0)
			for i := base; i < base+n; i++ {
				kept += keep[i/64] >> (i % 64) & 1
			}
			switch kept {
			case n:
				if !yield(rec, nil) {
					return
				}
				continue
			case 0:
				rec.Release()
				continue
			}
			mask.Reserve(int(n))
			for i := base; i < base+n; i++ {
				mask.UnsafeAppend(keep[i/64]>>(i%64)&1 == 1)
			}
			m := mask.NewArray()
			out, err := compute.FilterRecordBatch(ctx, rec, m, compute.DefaultFilterOptions())
			m.Release()
			rec.Release()
			if err != nil {
				yield(nil, err)
				return
			}
			if !yield(out, nil) {
				return
			}
		}
	}
}

// spill holds the key hashes of a merge on disk, split by hash into parts
// partitions: the ingestion side's hashes (16 bytes each), the source's
// (hash and row number, 24 bytes) and, once decided, the hashes of the
// source rows to insert.
type spill struct {
	dir        string
	parts      int
	shift      uint
	ing, src   []*spillFile
	ingN, srcN []int
	buf        [24]byte
}

type spillFile struct {
	f *os.File
	w *bufio.Writer
}

func newSpill(dir string, total int64, perPart int) (*spill, error) {
	parts := 1
	for int64(parts)*int64(perPart) < total && parts < 1024 {
		parts *= 2
	}
	s := &spill{dir: dir, parts: parts, shift: uint(64 - bits.TrailingZeros(uint(parts))),
		ingN: make([]int, parts), srcN: make([]int, parts)}
	for p := range parts {
		for _, side := range []string{"ing", "src"} {
			f, err := os.Create(filepath.Join(dir, fmt.Sprintf("%s-%04d", side, p)))
			if err != nil {
				s.close()
				return nil, fmt.Errorf("creating merge spill file: %w", err)
			}
			sf := &spillFile{f: f, w: bufio.NewWriterSize(f, 16<<10)}
			if side == "ing" {
				s.ing = append(s.ing, sf)
			} else {
				s.src = append(s.src, sf)
			}
		}
	}
	return s, nil
}

func (s *spill) close() {
	for _, sf := range append(s.ing, s.src...) {
		if sf != nil {
			sf.f.Close()
		}
	}
}

func (s *spill) part(h h128) int {
	if s.parts == 1 {
		return 0
	}
	return int(h.hi >> s.shift)
}

func (s *spill) addIngestion(h h128) error {
	p := s.part(h)
	binary.LittleEndian.PutUint64(s.buf[0:], h.lo)
	binary.LittleEndian.PutUint64(s.buf[8:], h.hi)
	s.ingN[p]++
	_, err := s.ing[p].w.Write(s.buf[:16])
	return err
}

func (s *spill) addSource(h h128, id uint64) error {
	p := s.part(h)
	binary.LittleEndian.PutUint64(s.buf[0:], h.lo)
	binary.LittleEndian.PutUint64(s.buf[8:], h.hi)
	binary.LittleEndian.PutUint64(s.buf[16:], id)
	s.srcN[p]++
	_, err := s.src[p].w.Write(s.buf[:24])
	return err
}

// each reads the records of size n from sf from its start.
func each(sf *spillFile, n int, f func([]byte) error) error {
	if err := sf.w.Flush(); err != nil {
		return err
	}
	if _, err := sf.f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	r := bufio.NewReaderSize(sf.f, 64<<10)
	buf := make([]byte, n)
	for {
		if _, err := io.ReadFull(r, buf); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		if err := f(buf); err != nil {
			return err
		}
	}
}

func readHash(b []byte) h128 {
	return h128{binary.LittleEndian.Uint64(b[0:]), binary.LittleEndian.Uint64(b[8:])}
}

// decide goes through the partitions: for each, the ingestion side's
// hashes form a set, and each source row (in row order) whose hash is not
// in it yet is kept (and added, so later duplicates in the source are not).
// It calls keep for each kept row, rewrites the source file of the
// partition to hold only kept hashes (for [spill.eachKept]) and returns
// how many rows were kept.
func (s *spill) decide(keep func(id uint64)) (int64, error) {
	var kept int64
	for p := range s.parts {
		set := newHashSet(s.ingN[p] + s.srcN[p])
		if err := each(s.ing[p], 16, func(b []byte) error { set.add(readHash(b)); return nil }); err != nil {
			return 0, err
		}
		s.ing[p].f.Close()
		os.Remove(s.ing[p].f.Name())
		s.ing[p] = nil
		path := filepath.Join(s.dir, fmt.Sprintf("kept-%04d", p))
		kf, err := os.Create(path)
		if err != nil {
			return 0, err
		}
		kw := bufio.NewWriterSize(kf, 16<<10)
		err = each(s.src[p], 24, func(b []byte) error {
			if !set.add(readHash(b)) {
				return nil
			}
			keep(binary.LittleEndian.Uint64(b[16:]))
			kept++
			_, err := kw.Write(b[:16])
			return err
		})
		if err == nil {
			err = kw.Flush()
		}
		if err != nil {
			kf.Close()
			return 0, err
		}
		s.src[p].f.Close()
		os.Remove(s.src[p].f.Name())
		s.src[p] = &spillFile{f: kf, w: kw}
		s.srcN[p] = 0
	}
	return kept, nil
}

// eachKept calls f for the hash of each kept source row of partition p
// until f returns false. Valid after decide.
func (s *spill) eachKept(p int, f func(h128) bool) error {
	errStop := errors.New("stop")
	err := each(s.src[p], 16, func(b []byte) error {
		if !f(readHash(b)) {
			return errStop
		}
		return nil
	})
	if errors.Is(err, errStop) {
		return nil
	}
	return err
}
