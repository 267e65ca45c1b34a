package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/sluice-dev/sluice/internal/catalog"
	"github.com/sluice-dev/sluice/internal/stream"
)

// States of a stream's backfill.
const (
	BackfillWaiting = "waiting" // for the overlap or the deadline
	BackfillMerging = "merging"
	BackfillDone    = "done"
	BackfillFailed  = "failed" // the last check or merge failed; retried with backoff
)

// BackfillStatus is the state of a stream's one-time backfill merge, as
// `sluice stream get` shows it. The catalog keeps the last one
// (sluice_backfills), and the ingestion table's snapshot property
// [PropBackfill] is the proof of a merge, so "done" survives anything.
type BackfillStatus struct {
	State  string `json:"state"`
	Source string `json:"source"`
	// BackfillMax is the greatest stream_record_timestamp in the backfill
	// source, IngestionMin the least of the ingestion table's stream rows,
	// as of CheckedAt; zero while that side has no rows.
	BackfillMax  time.Time `json:"backfill_max_timestamp,omitzero"`
	IngestionMin time.Time `json:"ingestion_min_timestamp,omitzero"`
	// Overlap is how far BackfillMax must pass IngestionMin; Deadline is
	// when the merge runs regardless.
	Overlap   stream.Duration `json:"required_overlap"`
	Deadline  time.Time       `json:"deadline"`
	CheckedAt time.Time       `json:"checked_at,omitzero"`
	// Trigger is why the merge ran: "overlap" or "deadline".
	Trigger           string    `json:"trigger,omitempty"`
	RowsInserted      int64     `json:"rows_inserted,omitempty"`
	DuplicatesSkipped int64     `json:"duplicates_skipped,omitempty"`
	MergedAt          time.Time `json:"merged_at,omitzero"`
	SnapshotID        int64     `json:"snapshot_id,omitempty"`
	Error             string    `json:"error,omitempty"`
	ErrorAt           time.Time `json:"error_at,omitzero"`
}

// backfiller watches one stream's backfill source and the ingestion table,
// and merges once the overlap is there or the deadline has passed. It runs
// in its own goroutine beside the stream's runner, with its own table
// handles; its status is a mutex-guarded value.
type backfiller struct {
	m       *Manager
	spec    *stream.Spec
	created time.Time
	logger  *slog.Logger

	mu sync.Mutex
	st BackfillStatus
}

func newBackfiller(m *Manager, spec *stream.Spec, created time.Time) *backfiller {
	in := spec.Ingestion
	return &backfiller{m: m, spec: spec, created: created, logger: m.logger.With("stream", spec.Name),
		st: BackfillStatus{State: BackfillWaiting, Source: in.BackfillSource.String(), Overlap: in.BackfillOverlap,
			Deadline: created.Add(in.BackfillDeadline.D()).UTC()}}
}

func (b *backfiller) status() BackfillStatus {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.st
}

// set updates the status and saves it in the catalog if it changed (more
// than its CheckedAt).
func (b *backfiller) set(f func(*BackfillStatus)) {
	b.mu.Lock()
	old := b.st
	f(&b.st)
	st := b.st
	b.mu.Unlock()
	old.CheckedAt = st.CheckedAt
	if st == old {
		return
	}
	raw, err := json.Marshal(st)
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := b.m.cat.SaveBackfill(ctx, b.spec.Name, raw); err != nil {
		b.logger.Warn("saving backfill state", "err", err)
	}
}

func (b *backfiller) done(r BackfillResult) {
	b.set(func(s *BackfillStatus) {
		s.State, s.Trigger, s.RowsInserted, s.DuplicatesSkipped = BackfillDone, r.Trigger, r.RowsInserted, r.DuplicatesSkipped
		s.MergedAt, s.SnapshotID, s.Error, s.ErrorAt = r.MergedAt, r.SnapshotID, "", time.Time{}
	})
}

// restore loads the state saved in the catalog, so that it shows from the
// start. Called before run.
func (b *backfiller) restore(ctx context.Context) {
	raw, err := b.m.cat.Backfill(ctx, b.spec.Name)
	if err != nil {
		if !errors.Is(err, catalog.ErrNotFound) {
			b.logger.Warn("reading backfill state", "err", err)
		}
		return
	}
	var st BackfillStatus
	if json.Unmarshal(raw, &st) == nil {
		b.mu.Lock()
		b.st = st
		b.mu.Unlock()
	}
}

// run checks until the merge is done or ctx is cancelled.
func (b *backfiller) run(ctx context.Context) {
	if b.status().State == BackfillDone {
		return
	}
	backoff := b.m.opts.MinBackoff
	for {
		wait := b.m.opts.BackfillCheckInterval
		finished, err := b.check(ctx)
		if finished || ctx.Err() != nil {
			return
		}
		if err != nil {
			b.logger.Warn("backfill check or merge failed; retrying", "err", err, "retry_in", backoff)
			b.set(func(s *BackfillStatus) { s.State, s.Error, s.ErrorAt = BackfillFailed, err.Error(), time.Now().UTC() })
			wait = backoff
			backoff = min(2*backoff, b.m.opts.MaxBackoff)
		} else {
			backoff = b.m.opts.MinBackoff
			// Never sleep past the deadline: a deadline of seconds is met
			// within the check's own time.
			if until := time.Until(b.status().Deadline); until < wait {
				wait = max(until, 0)
			}
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// check compares the two sides once and merges when it is time. It
// reports whether the backfill is done.
func (b *backfiller) check(ctx context.Context) (bool, error) {
	dst, err := b.m.store.Load(ctx, b.spec.DestinationName())
	if err != nil {
		return false, fmt.Errorf("loading ingestion table: %w", err)
	}
	if r, ok := merged(dst); ok {
		b.done(r)
		return true, nil
	}
	src, err := openSource(ctx, b.m.store, b.spec.Ingestion.BackfillSource, dst.ArrowSchema())
	if err != nil {
		return false, err
	}
	bmax, bok, err := src.maxTimestamp(ctx)
	if err != nil {
		return false, fmt.Errorf("reading the backfill's latest timestamp: %w", err)
	}
	// Until the merge, every row of the ingestion table came from the
	// stream (record_source "stream").
	imin, _, iok, err := dst.TimestampRange(ctx, ColTimestamp)
	if err != nil {
		return false, fmt.Errorf("reading the ingestion table's earliest timestamp: %w", err)
	}
	now := time.Now().UTC()
	b.set(func(s *BackfillStatus) {
		s.State, s.Error, s.ErrorAt, s.CheckedAt = BackfillWaiting, "", time.Time{}, now
		s.BackfillMax, s.IngestionMin = time.Time{}, time.Time{}
		if bok {
			s.BackfillMax = bmax
		}
		if iok {
			s.IngestionMin = imin
		}
	})
	trigger := ""
	switch {
	case bok && iok && bmax.Sub(imin) >= b.spec.Ingestion.BackfillOverlap.D():
		trigger = "overlap"
	case !now.Before(b.status().Deadline):
		trigger = "deadline"
	default:
		return false, nil
	}
	b.logger.Info("backfill merge starting", "trigger", trigger, "backfill_max", bmax, "ingestion_min", imin)
	b.set(func(s *BackfillStatus) { s.State, s.Trigger = BackfillMerging, trigger })
	r, err := MergeBackfill(ctx, b.m.store, b.spec, MergeOptions{TempDir: b.m.opts.TempDir, Trigger: trigger, Logger: b.logger})
	if err != nil {
		if ctx.Err() != nil {
			return false, ctx.Err()
		}
		return false, fmt.Errorf("merging the backfill: %w", err)
	}
	b.done(r)
	return true, nil
}

// storedBackfill returns the backfill state of a stream that is not running
// here, from the catalog; nil without a backfill source.
func (m *Manager) storedBackfill(ctx context.Context, spec *stream.Spec, created time.Time) *BackfillStatus {
	if spec.Ingestion.BackfillSource == nil {
		return nil
	}
	st := newBackfiller(m, spec, created).st
	if raw, err := m.cat.Backfill(ctx, spec.Name); err == nil {
		_ = json.Unmarshal(raw, &st)
	}
	return &st
}
