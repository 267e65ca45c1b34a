package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/sluice-dev/sluice/internal/engine/agg"
	"github.com/sluice-dev/sluice/internal/expr"
	"github.com/sluice-dev/sluice/internal/ident"
	"github.com/sluice-dev/sluice/internal/sql"
	"github.com/sluice-dev/sluice/internal/table"
)

// Snapshot properties of a dataset's commits: its checkpoint. They start
// with table.CarryForwardPrefix, so compaction keeps them.
const (
	propPipeline = "sluice.pipeline"         // the pipeline that wrote the table
	propSources  = "sluice.pipeline.sources" // JSON: source table -> snapshot read up to
	propState    = "sluice.pipeline.state"   // the aggregation state file, in stateDir
	propBatch    = "sluice.pipeline.batch"   // the dataset's micro-batch number
)

// stateDir returns the directory of a table's aggregation state files:
// beside the table's directory, not in it, where orphan-file removal would
// delete them ("…/main/demo/.sluice-state/product_revenue_5m"; a dot never
// starts a table name). Each commit references one file; older ones are
// deleted.
func stateDir(t *table.Table) string {
	loc := t.Location()
	return filepath.Join(filepath.Dir(loc), ".sluice-state", filepath.Base(loc))
}

// RunOptions configures a [Runner].
type RunOptions struct {
	// MaxFilesPerBatch and MaxRowsPerBatch bound one micro-batch of a
	// streaming table (applied at source snapshot boundaries, as Spark's
	// maxFilesPerTrigger). Defaults 256 files and 1,000,000 rows.
	MaxFilesPerBatch int
	MaxRowsPerBatch  int64
	// Mem allocates Arrow memory. Default memory.DefaultAllocator.
	Mem memory.Allocator
	// Now is the clock (current_timestamp() and event times). Default time.Now.
	Now func() time.Time
	// AfterCommit, if set, is called after each commit of a table
	// dataset (a streaming table's micro-batch, a materialized view's
	// refresh), e.g. to publish a feature table online. An error fails the
	// round; the commit stands.
	AfterCommit func(ctx context.Context, d *Dataset) error
	// MaintainEvery runs table maintenance (compaction, snapshot expiry,
	// orphan removal: table.Store.Optimize) on a dataset's table after
	// every MaintainEvery commits. Default 200.
	MaintainEvery int
}

// EnsureDefaults fills in the documented defaults.
func (o *RunOptions) EnsureDefaults() {
	if o.MaxFilesPerBatch <= 0 {
		o.MaxFilesPerBatch = 256
	}
	if o.MaxRowsPerBatch <= 0 {
		o.MaxRowsPerBatch = 1_000_000
	}
	if o.Mem == nil {
		o.Mem = memory.DefaultAllocator
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.MaintainEvery <= 0 {
		o.MaintainEvery = 200
	}
}

// Runner runs the datasets of one compiled pipeline against a table store.
// It keeps each streaming table's operator state in memory between rounds
// and restores it from the table's checkpoint when it starts or after a
// failure. A Runner is driven by one goroutine; Status may be called from
// any.
type Runner struct {
	name  ident.Name
	g     *Graph
	store *table.Store
	opts  RunOptions
	emit  func(Event)

	flows map[string]*flow // by dataset key

	mu     sync.Mutex
	status map[string]*DatasetStatus

	maint  sync.WaitGroup // maintenance passes in flight
	emitMu sync.Mutex     // serialises emit between rounds and maintenance
}

// NewRunner returns a runner of g, the pipeline called name. emit receives
// the events the runner produces (progress, expectation results, errors);
// it may be nil.
func NewRunner(name ident.Name, g *Graph, store *table.Store, o RunOptions, emit func(Event)) *Runner {
	o.EnsureDefaults()
	if emit == nil {
		emit = func(Event) {}
	}
	r := &Runner{name: name, g: g, store: store, opts: o, flows: map[string]*flow{}, status: map[string]*DatasetStatus{}}
	// Rounds and maintenance passes both emit: one at a time.
	r.emit = func(e Event) {
		r.emitMu.Lock()
		defer r.emitMu.Unlock()
		emit(e)
	}
	for _, d := range g.Tables() {
		r.status[d.Key()] = &DatasetStatus{Name: d.Key(), Kind: kindName(d.Kind), State: "idle"}
		for _, e := range d.Expectations {
			r.status[d.Key()].Expectations = append(r.status[d.Key()].Expectations, ExpectationStatus{Name: e.Name, Action: actionName(e.Action), Condition: e.Condition()})
		}
	}
	return r
}

func kindName(k Kind) string {
	switch k {
	case sql.StreamingTable:
		return "streaming_table"
	case sql.MaterializedView:
		return "materialized_view"
	}
	return "view"
}

func actionName(v sql.Violation) string {
	switch v {
	case sql.ViolationDropRow:
		return "drop"
	case sql.ViolationFailUpdate:
		return "fail"
	}
	return "warn"
}

// flow is a table dataset's running state between rounds.
type flow struct {
	d     *Dataset
	out   *table.Table
	chain *chain // nil until restored; dropped after a failure
	// lastStart is when the previous micro-batch started, for
	// inputRowsPerSecond.
	lastStart time.Time
	commits   int // since the flow started, for maintenance

	// Maintenance runs beside the rounds (see committed): at most one
	// pass per flow at a time, and a request made while one runs makes
	// it run once more.
	maintMu      sync.Mutex
	maintRunning bool
	maintAgain   bool
}

// committed runs AfterCommit, counts a commit of f's table and, every
// MaintainEvery commits, starts a maintenance pass (compaction, expiry)
// of the table beside the rounds: through table.Store.Optimize, which
// recommits a compaction over the appends that win the race, so the
// pipeline's latency does not include it. The flow's next commit after
// the pass sees a conflict and retries (see write).
func (r *Runner) committed(ctx context.Context, f *flow) error {
	if r.opts.AfterCommit != nil {
		if err := r.opts.AfterCommit(ctx, f.d); err != nil {
			return fmt.Errorf("after committing %s: %w", f.d.Key(), err)
		}
	}
	f.commits++
	if f.commits%r.opts.MaintainEvery != 0 {
		return nil
	}
	f.maintMu.Lock()
	defer f.maintMu.Unlock()
	if f.maintRunning {
		f.maintAgain = true
		return nil
	}
	f.maintRunning = true
	r.maint.Add(1)
	go func() {
		defer r.maint.Done()
		for {
			r.maintain(ctx, f)
			f.maintMu.Lock()
			again := f.maintAgain && ctx.Err() == nil
			f.maintAgain = false
			if !again {
				f.maintRunning = false
				f.maintMu.Unlock()
				return
			}
			f.maintMu.Unlock()
		}
	}()
	return nil
}

// maintain compacts and expires f's table once; a failure only postpones
// it to the next pass.
func (r *Runner) maintain(ctx context.Context, f *flow) {
	st, err := r.store.Optimize(ctx, f.d.Name, table.AutoMaintenance)
	if err != nil {
		if ctx.Err() == nil {
			r.emit(Event{Type: "maintenance", Level: "WARN", Dataset: f.d.Key(), Message: fmt.Sprintf("maintaining %s postponed: %v", f.d.Key(), err)})
		}
		return
	}
	details, _ := json.Marshal(st)
	r.emit(Event{Type: "maintenance", Dataset: f.d.Key(), Details: details,
		Message: fmt.Sprintf("%s compacted: %d data files → %d, %d snapshots expired", f.d.Key(), st.FilesBefore, st.FilesAfter, st.SnapshotsExpired)})
}

// WaitMaintenance waits for the maintenance passes in flight.
func (r *Runner) WaitMaintenance() { r.maint.Wait() }

// RoundResult says what a round did.
type RoundResult struct {
	Batches int   // micro-batches committed across datasets
	Rows    int64 // source rows read
}

// Round brings every table of the pipeline up to date once, in graph
// order: each streaming table processes everything its source holds now,
// in micro-batches, and each materialized view whose sources changed is
// recomputed. fullRefresh names tables to truncate (and whose checkpoint to
// clear) first. The first error stops the round; tables before it keep
// their commits.
func (r *Runner) Round(ctx context.Context, fullRefresh map[string]bool) (RoundResult, error) {
	var res RoundResult
	for _, d := range r.g.Tables() {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		f, err := r.flow(ctx, d, fullRefresh[d.Key()])
		if err != nil {
			r.fail(d, err)
			return res, err
		}
		r.setState(d, "running", "")
		var n int
		var rows int64
		if d.Kind == sql.MaterializedView {
			n, rows, err = r.refresh(ctx, f)
		} else {
			n, rows, err = r.stream(ctx, f)
		}
		res.Batches += n
		res.Rows += rows
		if err != nil {
			f.chain = nil // restore from the last commit next time
			r.fail(d, err)
			return res, err
		}
		r.setState(d, "idle", "")
	}
	return res, nil
}

// Close releases what the runner holds.
func (r *Runner) Close() {
	r.maint.Wait()
	for _, f := range r.flows {
		f.releaseChain()
	}
}

func (f *flow) releaseChain() {
	if f.chain == nil {
		return
	}
	for _, s := range f.chain.steps {
		if j, ok := s.(*joinStep); ok {
			j.release()
		}
	}
	f.chain = nil
}

// flow returns d's flow, loading or creating its table.
func (r *Runner) flow(ctx context.Context, d *Dataset, fullRefresh bool) (*flow, error) {
	f := r.flows[d.Key()]
	if f != nil && !fullRefresh {
		if err := f.out.Refresh(ctx); err != nil {
			return nil, err
		}
		return f, nil
	}
	if f != nil {
		f.releaseChain()
	}
	out, err := r.openTable(ctx, d, fullRefresh)
	if err != nil {
		return nil, err
	}
	f = &flow{d: d, out: out}
	r.flows[d.Key()] = f
	return f, nil
}

// openTable loads d's table, creating it if missing; a full refresh drops
// and recreates it. A table that exists with another schema, or that
// another pipeline or a stream writes, is an error.
func (r *Runner) openTable(ctx context.Context, d *Dataset, fullRefresh bool) (*table.Table, error) {
	t, err := r.store.Load(ctx, d.Name)
	switch {
	case errors.Is(err, table.ErrNotFound):
		return r.createTable(ctx, d)
	case err != nil:
		return nil, err
	}
	owner := t.Properties()[propPipeline]
	if owner != r.name.String() {
		if owner == "" {
			return nil, fmt.Errorf("%w: table %s exists and was not created by a pipeline: choose another name or drop it", ErrConflict, d.Name)
		}
		return nil, fmt.Errorf("%w: table %s belongs to pipeline %s", ErrConflict, d.Name, owner)
	}
	if fullRefresh {
		if v := strings.ToLower(t.Properties()[propResetAllowed]); v == "false" {
			return nil, fmt.Errorf("%w: %s has %s = false: it cannot be fully refreshed (remove the property to allow it)", ErrInvalid, d.Name, propResetAllowed)
		}
		sdir := stateDir(t)
		if err := r.store.Drop(ctx, d.Name); err != nil {
			return nil, fmt.Errorf("full refresh of %s: %w", d.Name, err)
		}
		if err := os.RemoveAll(sdir); err != nil {
			return nil, fmt.Errorf("full refresh of %s: clearing its state: %w", d.Name, err)
		}
		r.emit(Event{Type: "full_refresh", Dataset: d.Key(), Message: fmt.Sprintf("%s was truncated and its checkpoint cleared", d.Key())})
		return r.createTable(ctx, d)
	}
	if !sameColumns(t.ArrowSchema(), d.Schema) {
		return nil, fmt.Errorf("%w: the query of %s returns (%s) but the table holds (%s): run the pipeline with --full-refresh %s", ErrInvalid,
			d.Name, describe(d.Schema), describe(t.ArrowSchema()), d.Key())
	}
	return t, nil
}

func (r *Runner) createTable(ctx context.Context, d *Dataset) (*table.Table, error) {
	props := map[string]string{propPipeline: r.name.String()}
	for k, v := range d.Properties {
		props[k] = v
	}
	if d.Comment != "" {
		props["comment"] = d.Comment
	}
	if len(d.PrimaryKey) > 0 {
		props["sluice.primary_key"] = strings.Join(d.PrimaryKey, ",")
		if d.TimeSeries != "" {
			props["sluice.timeseries_key"] = d.TimeSeries
		}
	}
	t, err := r.store.Create(ctx, d.Name, d.Schema, table.CreateOptions{Properties: props})
	if err != nil {
		return nil, fmt.Errorf("creating table %s: %w", d.Name, err)
	}
	return t, nil
}

func sameColumns(a, b *arrow.Schema) bool {
	if a.NumFields() != b.NumFields() {
		return false
	}
	for i := range a.Fields() {
		fa, fb := a.Field(i), b.Field(i)
		if fa.Name != fb.Name || !arrow.TypeEqual(fa.Type, fb.Type) {
			return false
		}
	}
	return true
}

func describe(sc *arrow.Schema) string {
	parts := make([]string, sc.NumFields())
	for i, f := range sc.Fields() {
		parts[i] = f.Name + " " + f.Type.String()
	}
	return strings.Join(parts, ", ")
}

// checkpoint is what a dataset's last commit recorded.
type checkpoint struct {
	sources map[string]int64
	state   string
	batch   int64
}

func readCheckpoint(t *table.Table) (checkpoint, error) {
	cp := checkpoint{sources: map[string]int64{}}
	props := t.SnapshotProperties()
	if v := props[propSources]; v != "" {
		if err := json.Unmarshal([]byte(v), &cp.sources); err != nil {
			return cp, fmt.Errorf("reading the checkpoint of %s: %s: %w", t.Name(), propSources, err)
		}
	}
	cp.state = props[propState]
	if v := props[propBatch]; v != "" {
		fmt.Sscan(v, &cp.batch)
	}
	return cp, nil
}

func (r *Runner) execCtx(ctx context.Context) *execCtx {
	x := &execCtx{ctx: ctx, mem: r.opts.Mem, eval: &expr.Ctx{Mem: r.opts.Mem, Now: r.opts.Now()}}
	x.read = func(n node) ([]arrow.RecordBatch, error) { return r.readStatic(x, n) }
	return x
}

// readStatic runs a static relation to the end: the current contents of
// its source, through its steps.
func (r *Runner) readStatic(x *execCtx, n node) ([]arrow.RecordBatch, error) {
	ch, err := newChain(x, n, nil, nil, "")
	if err != nil {
		return nil, err
	}
	var out []arrow.RecordBatch
	release := func() {
		for _, b := range out {
			b.Release()
		}
	}
	if _, err := r.scanAll(x, ch.source, selection(n, nil, nil), func(b arrow.RecordBatch) error { return ch.push(x, b, &out) }); err != nil {
		release()
		return nil, err
	}
	if err := ch.flush(x, &out); err != nil {
		release()
		return nil, err
	}
	for _, s := range ch.steps {
		if j, ok := s.(*joinStep); ok {
			j.release()
		}
	}
	return out, nil
}

// scanAll reads every row of src's table as of now, returning the
// snapshot it read.
func (r *Runner) scanAll(x *execCtx, src *scanNode, sel []*table.Selection, fn func(arrow.RecordBatch) error) (int64, error) {
	t, err := r.store.Load(x.ctx, src.name)
	if err != nil {
		return 0, fmt.Errorf("reading %s: %w", src.name, err)
	}
	ch, err := t.Changes(x.ctx, 0, table.ChangesOptions{})
	if err != nil {
		return 0, err
	}
	return ch.To, r.readFiles(x, t, ch, src, sel, fn)
}

func (r *Runner) readFiles(x *execCtx, t *table.Table, ch table.Changes, src *scanNode, sel []*table.Selection, fn func(arrow.RecordBatch) error) error {
	if len(t.ArrowSchema().Fields()) != len(src.sc.Fields()) {
		return fmt.Errorf("%w: %s has columns (%s) but the pipeline was compiled for (%s): run it again", ErrInvalid, src.key, describe(t.ArrowSchema()), describe(src.sc))
	}
	if sel == nil {
		sel = all(len(src.sc.Fields()))
	}
	rdr, err := t.ReadSelected(x.ctx, ch.Files, sel)
	if err != nil {
		return err
	}
	defer rdr.Release()
	for rdr.Next() {
		b := rdr.RecordBatch()
		// The plan's schema is the table's, up to field nullability.
		for i, c := range b.Columns() {
			if !arrow.TypeEqual(c.DataType(), src.sc.Field(i).Type) {
				return fmt.Errorf("%w: column %s of %s is %s in the table but %s in the plan: recompile the pipeline (run it again)",
					ErrInvalid, src.sc.Field(i).Name, src.key, c.DataType(), src.sc.Field(i).Type)
			}
		}
		rec := array.NewRecordBatch(src.sc, b.Columns(), b.NumRows())
		err := fn(rec)
		rec.Release()
		if err != nil {
			return err
		}
	}
	return rdr.Err()
}

// stream brings a streaming table up to date: micro-batches over the rows
// its source appended since the checkpoint, until none are left.
func (r *Runner) stream(ctx context.Context, f *flow) (batches int, rows int64, err error) {
	src := f.d.plan.source
	in, err := r.store.Load(ctx, src.name)
	if err != nil {
		return 0, 0, fmt.Errorf("reading %s: %w", src.name, err)
	}
	cp, err := readCheckpoint(f.out)
	if err != nil {
		return 0, 0, err
	}
	for {
		if err := ctx.Err(); err != nil {
			return batches, rows, err
		}
		from := cp.sources[src.key]
		ch, err := in.Changes(ctx, from, table.ChangesOptions{MaxFiles: r.opts.MaxFilesPerBatch, MaxRows: r.opts.MaxRowsPerBatch})
		if errors.Is(err, table.ErrRewritten) || errors.Is(err, table.ErrHistoryExpired) {
			return batches, rows, fmt.Errorf("%w: %s can no longer read %s incrementally (%v): run the pipeline with --full-refresh %s",
				ErrInvalid, f.d.Key(), src.key, err, f.d.Key())
		}
		if err != nil {
			return batches, rows, err
		}
		if ch.To == from {
			return batches, rows, nil
		}
		if err := r.microBatch(ctx, f, in, ch, &cp); err != nil {
			return batches, rows, err
		}
		batches++
		rows += ch.Rows
	}
}

// microBatch processes one range of source rows and commits the output
// with the new checkpoint, in one table commit.
func (r *Runner) microBatch(ctx context.Context, f *flow, in *table.Table, ch table.Changes, cp *checkpoint) error {
	start := time.Now()
	x := r.execCtx(ctx)
	if f.chain == nil {
		c, err := newChain(x, f.d.plan.root, f.d.plan.exp, f.d.plan.pre, f.d.Key())
		if err != nil {
			return err
		}
		if c.agg != nil && cp.state != "" {
			data, err := os.ReadFile(filepath.Join(stateDir(f.out), cp.state))
			if err != nil {
				return fmt.Errorf("restoring the state of %s: %w", f.d.Key(), err)
			}
			if err := c.agg.a.UnmarshalBinary(data); err != nil {
				return fmt.Errorf("restoring the state of %s from %s: %w", f.d.Key(), cp.state, err)
			}
		}
		f.chain = c
	} else {
		// A join's static side is re-read every micro-batch, as Spark does.
		for i, s := range f.chain.steps {
			if j, ok := s.(*joinStep); ok {
				nj, err := newJoinStep(x, j.node)
				if err != nil {
					return err
				}
				j.release()
				f.chain.steps[i] = nj
			}
		}
	}
	var exp0 []ExpectationCounts
	var dropped0 int64
	var late0 int64
	if f.chain.expect != nil {
		exp0 = append(exp0, f.chain.expect.counts...)
		dropped0 = f.chain.expect.dropped
	}
	if f.chain.agg != nil {
		late0 = f.chain.agg.a.Stats().DroppedLate
	}
	var out []arrow.RecordBatch
	defer func() {
		for _, b := range out {
			b.Release()
		}
	}()
	var numIn int64
	err := r.readFiles(x, in, ch, f.d.plan.source, f.d.plan.sel, func(b arrow.RecordBatch) error {
		numIn += b.NumRows()
		return f.chain.push(x, b, &out)
	})
	if err == nil {
		err = f.chain.flush(x, &out)
	}
	if err != nil {
		return err
	}
	execDone := time.Now()

	next := checkpoint{sources: map[string]int64{}, batch: cp.batch + 1}
	for k, v := range cp.sources {
		next.sources[k] = v
	}
	next.sources[f.d.plan.source.key] = ch.To
	srcJSON, _ := json.Marshal(next.sources)
	props := map[string]string{
		propPipeline: r.name.String(),
		propSources:  string(srcJSON),
		propBatch:    fmt.Sprint(next.batch),
	}
	var st agg.Stats
	if f.chain.agg != nil {
		st = f.chain.agg.a.Stats()
		data, err := f.chain.agg.a.MarshalBinary()
		if err != nil {
			return fmt.Errorf("checkpointing the state of %s: %w", f.d.Key(), err)
		}
		next.state = fmt.Sprintf("%020d-%d.bin", next.batch, time.Now().UnixNano())
		dir := stateDir(f.out)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		if err := writeFileSync(filepath.Join(dir, next.state), data); err != nil {
			return fmt.Errorf("checkpointing the state of %s: %w", f.d.Key(), err)
		}
		props[propState] = next.state
	}
	var numOut int64
	for _, b := range out {
		numOut += b.NumRows()
	}
	if err := r.write(ctx, f, out, props); err != nil {
		return err
	}
	if err := r.committed(ctx, f); err != nil {
		return err
	}
	// Keep the source's history from this position until the next batch.
	if err := r.store.SetReader(ctx, f.d.plan.source.name, readerName(r.name, f.d), ch.To, ch.ToTime); err != nil {
		return err
	}
	if cp.state != "" && cp.state != next.state {
		os.Remove(filepath.Join(stateDir(f.out), cp.state))
	}
	*cp = next
	end := time.Now()

	p := Progress{
		Dataset:       f.d.Key(),
		BatchID:       next.batch,
		Timestamp:     end.UTC(),
		NumInputRows:  numIn,
		NumOutputRows: numOut,
		DurationMs: map[string]int64{
			"execute": execDone.Sub(start).Milliseconds(),
			"commit":  end.Sub(execDone).Milliseconds(),
			"total":   end.Sub(start).Milliseconds(),
		},
		Sources: []SourceProgress{{Table: f.d.plan.source.key, StartSnapshot: ch.From, EndSnapshot: ch.To, NumInputRows: numIn}},
	}
	if secs := end.Sub(start).Seconds(); secs > 0 {
		p.ProcessedRowsPerSecond = float64(numIn) / secs
	}
	// As Spark: the rate at which rows arrived since the previous batch.
	if !f.lastStart.IsZero() {
		if secs := start.Sub(f.lastStart).Seconds(); secs > 0 {
			p.InputRowsPerSecond = float64(numIn) / secs
		}
	}
	f.lastStart = start
	if f.chain.agg != nil {
		p.StateRows, p.StateBytes = st.StateRows, st.StateBytes
		p.DroppedByWatermark = st.DroppedLate - late0
		if !st.Watermark.IsZero() {
			w := st.Watermark.UTC()
			p.Watermark = &w
		}
	}
	if e := f.chain.expect; e != nil {
		p.DroppedByExpectations = e.dropped - dropped0
		for i, be := range e.exp {
			p.Expectations = append(p.Expectations, ExpectationProgress{
				Name: be.Name, Action: actionName(be.Action),
				Passed: e.counts[i].Passed - exp0[i].Passed, Failed: e.counts[i].Failed - exp0[i].Failed,
			})
		}
	}
	r.progress(f.d, p)
	return nil
}

// write commits a micro-batch's output by the dataset's output mode.
func (r *Runner) write(ctx context.Context, f *flow, out []arrow.RecordBatch, props map[string]string) error {
	mode := agg.Append
	if a, ok := findAgg(f.d.plan.root); ok {
		mode = a.cfg.Mode
	}
	commit := func() error {
		switch mode {
		case agg.Complete:
			return f.out.Overwrite(ctx, out, props)
		case agg.Update:
			return r.merge(ctx, f, out, props)
		default:
			if len(f.d.PrimaryKey) > 0 {
				return r.merge(ctx, f, out, props) // a feature table: merge on the keys
			}
			return f.out.Append(ctx, out, props)
		}
	}
	// The checkpoint this commit follows: a conflict caused by
	// maintenance (a compaction or an expiry, which carry the checkpoint
	// forward) leaves it as it is, and the commit is retried on the new
	// state; any other writer moved it, and the batch must not commit.
	before := checkpointProps(f.out)
	err := commit()
	for attempt := 1; errors.Is(err, table.ErrConflict) && attempt <= 10; attempt++ {
		if rerr := f.out.Refresh(ctx); rerr != nil {
			return fmt.Errorf("committing micro-batch to %s: %w", f.d.Key(), rerr)
		}
		if !maps.Equal(before, checkpointProps(f.out)) {
			break
		}
		err = commit()
	}
	if err != nil {
		return fmt.Errorf("committing micro-batch to %s: %w", f.d.Key(), err)
	}
	return nil
}

// checkpointProps are the properties of t's current snapshot that hold
// its pipeline checkpoint.
func checkpointProps(t *table.Table) map[string]string {
	out := map[string]string{}
	for k, v := range t.SnapshotProperties() {
		if strings.HasPrefix(k, propPipeline) {
			out[k] = v
		}
	}
	return out
}

// merge commits output rows on the flow's primary key (see MergeRows).
func (r *Runner) merge(ctx context.Context, f *flow, out []arrow.RecordBatch, props map[string]string) error {
	if len(f.d.PrimaryKey) == 0 {
		return fmt.Errorf("%w: %s = update needs PRIMARY KEY (…) to merge rows on", ErrInvalid, propOutputMode)
	}
	return mergeRows(ctx, r.execCtx(ctx), f.out, f.d.PrimaryKey, f.d.Schema, out, props)
}

// refresh recomputes a materialized view if any table it reads changed
// since its last refresh.
func (r *Runner) refresh(ctx context.Context, f *flow) (int, int64, error) {
	start := time.Now()
	cp, err := readCheckpoint(f.out)
	if err != nil {
		return 0, 0, err
	}
	now := map[string]int64{}
	for _, s := range scans(f.d.plan.root) {
		t, err := r.store.Load(ctx, s.name)
		if err != nil {
			return 0, 0, fmt.Errorf("reading %s: %w", s.name, err)
		}
		now[s.key] = t.SnapshotID()
	}
	if f.out.SnapshotID() != 0 && equalSources(now, cp.sources) {
		return 0, 0, nil
	}
	x := r.execCtx(ctx)
	ch, err := newChain(x, f.d.plan.root, f.d.plan.exp, f.d.plan.pre, f.d.Key())
	if err != nil {
		return 0, 0, err
	}
	defer (&flow{chain: ch}).releaseChain()
	var out []arrow.RecordBatch
	defer func() {
		for _, b := range out {
			b.Release()
		}
	}()
	var numIn int64
	if _, err := r.scanAll(x, ch.source, f.d.plan.sel, func(b arrow.RecordBatch) error {
		numIn += b.NumRows()
		return ch.push(x, b, &out)
	}); err != nil {
		return 0, 0, err
	}
	if err := ch.flush(x, &out); err != nil {
		return 0, 0, err
	}
	srcJSON, _ := json.Marshal(now)
	batch := cp.batch + 1
	props := map[string]string{propPipeline: r.name.String(), propSources: string(srcJSON), propBatch: fmt.Sprint(batch)}
	if err := f.out.Overwrite(ctx, out, props); err != nil {
		return 0, 0, fmt.Errorf("committing the refresh of %s: %w", f.d.Key(), err)
	}
	if err := r.committed(ctx, f); err != nil {
		return 0, 0, err
	}
	var numOut int64
	for _, b := range out {
		numOut += b.NumRows()
	}
	end := time.Now()
	p := Progress{Dataset: f.d.Key(), BatchID: batch, Timestamp: end.UTC(), NumInputRows: numIn, NumOutputRows: numOut,
		DurationMs: map[string]int64{"total": end.Sub(start).Milliseconds()}}
	if secs := end.Sub(start).Seconds(); secs > 0 {
		p.ProcessedRowsPerSecond = float64(numIn) / secs
	}
	if e := ch.expect; e != nil {
		p.DroppedByExpectations = e.dropped
		for i, be := range e.exp {
			p.Expectations = append(p.Expectations, ExpectationProgress{Name: be.Name, Action: actionName(be.Action), Passed: e.counts[i].Passed, Failed: e.counts[i].Failed})
		}
	}
	r.progress(f.d, p)
	return 1, numIn, nil
}

func equalSources(a, b map[string]int64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// scans lists every scan of a plan.
func scans(n node) []*scanNode {
	switch x := n.(type) {
	case *scanNode:
		return []*scanNode{x}
	case *filterNode:
		return scans(x.in)
	case *projectNode:
		return scans(x.in)
	case *aggNode:
		return scans(x.in)
	case *joinNode:
		return append(scans(x.left), scans(x.right)...)
	}
	return nil
}

func writeFileSync(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// readerName is how a streaming table registers as a reader of its source
// (table.Store.SetReader), so that snapshot expiry keeps what it has not
// read.
func readerName(pipeline ident.Name, d *Dataset) string {
	return readerPrefix(pipeline) + d.Key()
}

func readerPrefix(pipeline ident.Name) string { return "pipeline:" + pipeline.String() + "/" }
