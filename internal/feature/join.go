package feature

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/compute"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/sluice-dev/sluice/internal/feature/window"
	"github.com/sluice-dev/sluice/internal/ident"
	"github.com/sluice-dev/sluice/internal/table"
)

// The as-of join.
//
// Labels are read in chunks of Options.ChunkRows rows, in order. For each
// chunk and each lookup:
//
//  1. Index the chunk's label rows by key (a hash table from the encoded
//     key to an entity number; keytable.go) and sort each entity's rows by
//     label time. Lookups on the same label columns share the index
//     (labelindex.go).
//  2. Pass 1 streams the feature table's key and timestamp columns once.
//     A feature row of entity e with time f is a candidate for the labels of
//     e at or after f; it is filed under the first of them (binary search),
//     where it replaces the filed row if f is at least as new (ties go to
//     the row read later: see "Ties" in docs/features.md).
//  3. Walking each entity's labels in time order carries the newest filed
//     row forward: that is each label's as-of match, dropped if older than
//     the TTL.
//  4. Pass 2 streams the feature columns and keeps only the matched rows
//     (files without any are skipped), then each label row takes its
//     match's values (arrow Take; no match gives nulls).
//
// Both passes read the table's data files in parallel, a file per task
// (asof.go). Memory is bounded by the chunk (its label rows, the shared
// index and, per running lookup, a few words per label row per worker
// plus the matched feature values), whatever the size of the feature
// tables, which are streamed and never held. Labels larger than a chunk
// cost one more pass over each feature table per chunk.

// Options tunes the join. The zero value uses the documented defaults.
type Options struct {
	// ChunkRows is how many label rows are joined at once. Memory grows
	// with it (about the labels' row width plus 50 bytes per lookup per
	// row); each further chunk reads every feature table again.
	// Default 512Ki rows.
	ChunkRows int
	// Parallelism is how many lookups of a chunk run at once, and how
	// many data files they read at once in all. Default 2.
	Parallelism int
	// GCPercent is the Go garbage collector's target (as GOGC) while
	// training sets are computed: lower than Go's default 100, so the heap
	// holds less garbage next to the join's live data, for some more
	// CPU. The process's own setting comes back when the last one is
	// done; a setting already as low, or GC off, is left alone. Default
	// 50; negative leaves the collector alone.
	GCPercent int
}

// BatchRows is the size of the result's record batches (the last may be
// shorter) and of the Parquet writes: fixed, so that a result written
// twice, or written from an Arrow stream, is the same file.
const BatchRows = 64 << 10

// EnsureDefaults fills in the defaults.
func (o *Options) EnsureDefaults() {
	if o.ChunkRows <= 0 {
		o.ChunkRows = 512 << 10
	}
	if o.GCPercent == 0 {
		o.GCPercent = 50
	}
	o.ChunkRows = max(BatchRows, o.ChunkRows/BatchRows*BatchRows)
	if o.Parallelism <= 0 {
		o.Parallelism = 2
	}
}

// Result streams a training set's rows: an [array.RecordReader] whose
// batches hold at most BatchRows rows, label columns first, in label
// order. It computes a chunk when its batches run out, so Next may
// block for long. It is not goroutine-safe, except [Result.Progress].
// The caller releases it.
type Result struct {
	ctx    context.Context
	svc    *Service
	plan   Plan
	schema *arrow.Schema
	labels array.RecordReader
	// labelIdx are the label reader's columns that the result keeps.
	labelIdx []int
	tsIdx    int
	lookups  []*lookupRun

	pending *pendingChunk // nil: read the next chunk
	cur     arrow.RecordBatch
	done    atomic.Int64
	err     error
	refs    atomic.Int64
	gc      func() // gives the GC target back (holdGC)
}

// Schema returns the result's schema.
func (r *Result) Schema() *arrow.Schema { return r.schema }

// Plan returns what the result reads.
func (r *Result) Plan() Plan { return r.plan }

// Rows returns the number of rows the result will have.
func (r *Result) Rows() int64 { return r.plan.Rows }

// Progress returns how many rows Next has returned so far. It is safe to
// call from any goroutine.
func (r *Result) Progress() int64 { return r.done.Load() }

// Err returns the error that ended the stream, if any.
func (r *Result) Err() error { return r.err }

func (r *Result) Retain() { r.refs.Add(1) }

// Release frees the reader when the last reference is released.
func (r *Result) Release() {
	if r.refs.Add(-1) > 0 {
		return
	}
	if r.cur != nil {
		r.cur.Release()
		r.cur = nil
	}
	if r.pending != nil {
		r.pending.release()
		r.pending = nil
	}
	if r.labels != nil {
		r.labels.Release()
		r.labels = nil
	}
	if r.gc != nil {
		r.gc()
		r.gc = nil
	}
}

// Record returns the current batch, valid until the next Next.
func (r *Result) Record() arrow.RecordBatch      { return r.cur }
func (r *Result) RecordBatch() arrow.RecordBatch { return r.cur }

// Next moves to the next batch.
func (r *Result) Next() bool {
	if r.cur != nil {
		r.cur.Release()
		r.cur = nil
	}
	if r.err != nil {
		return false
	}
	if r.pending != nil && r.pending.next == len(r.pending.batches) {
		r.pending.release()
		r.pending = nil
	}
	if r.pending == nil {
		if err := r.chunk(); err != nil {
			r.err = err
			return false
		}
		if r.pending == nil {
			return false
		}
	}
	rec, err := r.output(r.pending)
	if err != nil {
		r.err = err
		return false
	}
	r.cur = rec
	r.done.Add(rec.NumRows())
	return true
}

// Run starts computing plan. Reading starts at once: every input must
// still be as the plan recorded (see [Service.Recreate] for the checks).
// Cancelling ctx stops the computation; Next then fails with ctx's error.
func (s *Service) Run(ctx context.Context, plan Plan) (*Result, error) {
	r := &Result{ctx: ctx, svc: s, plan: plan, gc: holdGC(s.opts.GCPercent)}
	r.refs.Store(1)
	lr, err := s.openLabels(ctx, plan.Labels, plan.labelsRead())
	if err != nil {
		return nil, err
	}
	// Label batches are only cut down to BatchRows, never glued together:
	// gluing copies every label once more (the readers' batches end at
	// row groups). Files written from the result are re-cut anyway.
	r.labels = newSplitter(lr, BatchRows)
	lsc := lr.Schema()
	fields := []arrow.Field{}
	for _, c := range plan.LabelColumns {
		idx := lsc.FieldIndices(c)
		if len(idx) == 0 {
			r.Release()
			return nil, fmt.Errorf("%w: the labels have no column %s any more", ErrChanged, c)
		}
		r.labelIdx = append(r.labelIdx, idx[0])
		fields = append(fields, lsc.Field(idx[0]))
	}
	idx := lsc.FieldIndices(plan.TimestampColumn)
	if len(idx) == 0 {
		r.Release()
		return nil, fmt.Errorf("%w: the labels have no column %s any more", ErrChanged, plan.TimestampColumn)
	}
	r.tsIdx = idx[0]
	for i, lp := range plan.Lookups {
		lr, err := s.openLookup(ctx, lp, lsc)
		if err != nil {
			r.Release()
			return nil, fmt.Errorf("lookups[%d] (%s): %w", i, lp.Table, err)
		}
		r.lookups = append(r.lookups, lr)
		for j, c := range lp.Columns {
			fields = append(fields, arrow.Field{Name: c, Type: lr.types[j], Nullable: true})
		}
	}
	r.schema = arrow.NewSchema(fields, nil)
	return r, nil
}

// The GC target while training sets are computed (Options.GCPercent).
var gcHold struct {
	sync.Mutex
	n    int // results holding it
	prev int // the target to restore; -2: none changed
}

// holdGC lowers the process's GC target to percent (if it is higher and
// the collector is on) until the returned func is called, once; the
// first of several concurrent holders sets it, the last restores it.
func holdGC(percent int) (release func()) {
	if percent < 0 {
		return func() {}
	}
	gcHold.Lock()
	defer gcHold.Unlock()
	if gcHold.n++; gcHold.n == 1 {
		gcHold.prev = debug.SetGCPercent(percent)
		if gcHold.prev < 0 || gcHold.prev <= percent {
			debug.SetGCPercent(gcHold.prev)
			gcHold.prev = -2
		}
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			gcHold.Lock()
			defer gcHold.Unlock()
			if gcHold.n--; gcHold.n == 0 && gcHold.prev != -2 {
				debug.SetGCPercent(gcHold.prev)
			}
		})
	}
}

// labelsRead returns the label columns the join reads: those of the
// result, the timestamp and the lookup keys, each once. Excluded columns
// are not read at all.
func (p Plan) labelsRead() []string {
	cols := slices.Clone(p.LabelColumns)
	add := func(c string) {
		if !slices.Contains(cols, c) {
			cols = append(cols, c)
		}
	}
	add(p.TimestampColumn)
	for _, lp := range p.Lookups {
		for _, k := range lp.LookupKey {
			add(k)
		}
	}
	return cols
}

// lookupRun is one lookup's reading state.
type lookupRun struct {
	plan     LookupPlan
	tbl      *table.Table
	files    []table.ChangedFile // nil: scan (the snapshot has row deletes, or is empty)
	scan     bool
	keyIdx   []int // label columns of the lookup key
	types    []arrow.DataType
	ttlMicro int64
	window   *window.Def // a windowed feature table's definition, else nil
}

func (s *Service) openLookup(ctx context.Context, lp LookupPlan, lsc *arrow.Schema) (*lookupRun, error) {
	name, err := ident.Parse(lp.Table)
	if err != nil {
		return nil, err
	}
	t, err := s.tables.Load(ctx, name)
	if err != nil {
		return nil, err
	}
	lr := &lookupRun{plan: lp, tbl: t, ttlMicro: lp.ttl().Microseconds()}
	if lp.Snapshot != 0 {
		lr.files, err = t.FilesAt(ctx, lp.Snapshot)
		switch {
		case errors.Is(err, table.ErrRowDeletes):
			lr.scan = true
		case errors.Is(err, table.ErrHistoryExpired):
			return nil, fmt.Errorf("%w: %w", ErrChanged, err)
		case err != nil:
			return nil, err
		}
	}
	sc := t.ArrowSchema()
	for _, c := range append(append(slices.Clone(lp.TableKey), lp.Features...), lp.TimestampKey) {
		if c == "" {
			continue
		}
		if len(sc.FieldIndices(c)) == 0 {
			return nil, fmt.Errorf("%w: table %s has no column %s any more", ErrChanged, lp.Table, c)
		}
	}
	for _, f := range lp.Features {
		lr.types = append(lr.types, sc.Field(sc.FieldIndices(f)[0]).Type)
	}
	if lp.Windowed {
		v := t.Properties()[window.PropDef]
		if v == "" {
			return nil, fmt.Errorf("%w: %s is no longer a windowed feature table", ErrChanged, lp.Table)
		}
		if lr.window, err = window.ParseDef(v); err != nil {
			return nil, err
		}
		if lr.types, err = windowedTypes(lr.window, sc, lp.Features); err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrChanged, lp.Table, err)
		}
	}
	for _, k := range lp.LookupKey {
		idx := lsc.FieldIndices(k)
		if len(idx) == 0 {
			return nil, fmt.Errorf("%w: the labels have no column %s any more", ErrChanged, k)
		}
		lr.keyIdx = append(lr.keyIdx, idx[0])
	}
	return lr, nil
}

// chunk reads the next label chunk and computes its output batches.
func (r *Result) chunk() error {
	var batches []arrow.RecordBatch
	defer func() {
		for _, b := range batches {
			b.Release()
		}
	}()
	var n int
	for n < r.svc.opts.ChunkRows && r.labels.Next() {
		b := r.labels.RecordBatch()
		b.Retain()
		batches = append(batches, b)
		n += int(b.NumRows())
	}
	if err := r.labels.Err(); err != nil {
		return fmt.Errorf("reading labels: %w", err)
	}
	if n == 0 {
		return nil
	}
	if err := r.ctx.Err(); err != nil {
		return err
	}
	// Label times of the chunk.
	lts := make([]int64, n)
	lok := make([]bool, n)
	off := 0
	for _, b := range batches {
		m := int(b.NumRows())
		timesOf(b.Column(r.tsIdx), lts[off:off+m], lok[off:off+m])
		off += m
	}

	// The lookups, Parallelism at a time; their files are read at most
	// Parallelism at a time in all (see asof.go).
	env := newJoinEnv(batches, lts, lok, r.svc.opts.Parallelism)
	results := make([]*matched, len(r.lookups))
	errs := make([]error, len(r.lookups))
	sem := make(chan struct{}, r.svc.opts.Parallelism)
	var wg sync.WaitGroup
	for i, lr := range r.lookups {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			began := time.Now()
			if lr.window != nil {
				results[i], errs[i] = lr.windowedJoin(r.ctx, env)
			} else {
				results[i], errs[i] = lr.asOf(r.ctx, env)
			}
			r.svc.logger.Debug("training set lookup joined", "table", lr.plan.Table, "label_rows", n, "took", time.Since(began))
		}()
	}
	wg.Wait()
	defer func() {
		for _, m := range results {
			if m != nil {
				m.release()
			}
		}
	}()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if err := r.ctx.Err(); err != nil {
		return err
	}

	r.pending = &pendingChunk{batches: batches, results: results}
	batches, results = nil, nil
	return nil
}

// pendingChunk is a joined label chunk whose output batches are built one
// at a time, as Next asks for them.
type pendingChunk struct {
	batches []arrow.RecordBatch
	results []*matched
	next    int // the next batch to output
	off     int // its first row within the chunk
}

func (c *pendingChunk) release() {
	for _, b := range c.batches[c.next:] {
		b.Release()
	}
	for _, m := range c.results {
		m.release()
	}
}

// output builds the chunk's next output batch: the label columns, then
// each lookup's features.
func (r *Result) output(c *pendingChunk) (arrow.RecordBatch, error) {
	ctx := compute.WithAllocator(r.ctx, memory.DefaultAllocator)
	b := c.batches[c.next]
	m := int(b.NumRows())
	cols := make([]arrow.Array, 0, r.schema.NumFields())
	defer func() {
		for _, col := range cols {
			col.Release()
		}
	}()
	for _, i := range r.labelIdx {
		col := b.Column(i)
		col.Retain()
		cols = append(cols, col)
	}
	for _, mt := range c.results {
		idx := mt.indices(c.off, m)
		for _, v := range mt.values {
			out, err := compute.TakeArray(ctx, v, idx)
			if err != nil {
				idx.Release()
				return nil, fmt.Errorf("gathering features: %w", err)
			}
			cols = append(cols, out)
		}
		idx.Release()
	}
	rec := array.NewRecordBatch(r.schema, cols, int64(m))
	b.Release()
	c.next++
	c.off += m
	return rec, nil
}

// matched is one lookup's result for a chunk: for each label row the
// index of its match in values (-1: none), and the matched feature rows.
type matched struct {
	match  []int32
	values []arrow.Array // one per feature
}

func (m *matched) release() {
	for _, v := range m.values {
		v.Release()
	}
}

// indices returns match[off:off+n] as an Int32 array with nulls for -1.
func (m *matched) indices(off, n int) *array.Int32 {
	b := array.NewInt32Builder(memory.DefaultAllocator)
	defer b.Release()
	b.Reserve(n)
	for _, v := range m.match[off : off+n] {
		if v < 0 {
			b.AppendNull()
		} else {
			b.UnsafeAppend(v)
		}
	}
	return b.NewInt32Array()
}

func cmpInt64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func grow(s []int64, n int) []int64 {
	if cap(s) < n {
		return make([]int64, n)
	}
	return s[:n]
}

func growBool(s []bool, n int) []bool {
	if cap(s) < n {
		return make([]bool, n)
	}
	return s[:n]
}
