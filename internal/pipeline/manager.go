package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"strings"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/sluice-dev/sluice/internal/catalog"
	"github.com/sluice-dev/sluice/internal/expr"
	"github.com/sluice-dev/sluice/internal/feature/window"
	"github.com/sluice-dev/sluice/internal/ident"
	"github.com/sluice-dev/sluice/internal/publish"
	"github.com/sluice-dev/sluice/internal/sql"
	"github.com/sluice-dev/sluice/internal/table"
)

// Trigger says when a pipeline's updates run, as Spark's triggers.
type Trigger struct {
	// Kind is "available-now" (process what is there, then stop),
	// "interval" (a round every Interval) or "continuous" (rounds back to
	// back, polling when idle).
	Kind     string
	Interval time.Duration
}

// String is the trigger as ParseTrigger reads it.
func (t Trigger) String() string {
	if t.Kind == "interval" {
		return "interval=" + t.Interval.String()
	}
	return t.Kind
}

// ParseTrigger reads "available-now", "continuous" or "interval=10s".
func ParseTrigger(s string) (Trigger, error) {
	switch {
	case s == "" || s == "available-now" || s == "availableNow":
		return Trigger{Kind: "available-now"}, nil
	case s == "continuous":
		return Trigger{Kind: "continuous"}, nil
	case strings.HasPrefix(s, "interval="):
		d, err := time.ParseDuration(strings.TrimPrefix(s, "interval="))
		if err != nil || d <= 0 {
			return Trigger{}, fmt.Errorf("%w: trigger %q: the interval is a positive Go duration such as interval=10s", ErrInvalid, s)
		}
		return Trigger{Kind: "interval", Interval: d}, nil
	}
	return Trigger{}, fmt.Errorf("%w: unknown trigger %q: use available-now, interval=DURATION (e.g. interval=10s) or continuous", ErrInvalid, s)
}

// Spec is what a user gives to run a pipeline.
type Spec struct {
	Name    string `json:"name"`
	SQL     string `json:"sql"`
	Trigger string `json:"trigger,omitempty"`
}

// UpdateRequest starts an update.
type UpdateRequest struct {
	FullRefresh    []string `json:"full_refresh,omitempty"`
	FullRefreshAll bool     `json:"full_refresh_all,omitempty"`
}

// Info describes a pipeline: its definition, its current or last update,
// and its datasets.
type Info struct {
	Name      string          `json:"name"`
	Trigger   string          `json:"trigger"`
	Owner     string          `json:"owner"`
	CreatedAt time.Time       `json:"created_at"`
	State     string          `json:"state"` // idle, running, completed, failed, stopped
	UpdateID  string          `json:"update_id,omitempty"`
	Error     string          `json:"error,omitempty"`
	Datasets  []DatasetStatus `json:"datasets"`
	Graph     []DatasetInfo   `json:"graph,omitempty"`
	SQL       string          `json:"sql,omitempty"`
}

// DatasetInfo is a dataset of a compiled graph, for validate and status.
type DatasetInfo struct {
	Name         string              `json:"name"`
	Kind         string              `json:"kind"`
	Streaming    bool                `json:"streaming"`
	Reads        []string            `json:"reads"`
	Columns      []ColumnInfo        `json:"columns"`
	Expectations []ExpectationStatus `json:"expectations,omitempty"`
	PrimaryKey   []string            `json:"primary_key,omitempty"`
	TimeSeries   string              `json:"timeseries_key,omitempty"`
}

// ColumnInfo is an output column.
type ColumnInfo struct {
	Name string `json:"name"`
	Type string `json:"type"`
}

// Describe lists g's datasets, in graph order.
func Describe(g *Graph) []DatasetInfo {
	out := make([]DatasetInfo, 0, len(g.Datasets))
	for _, d := range g.Datasets {
		di := DatasetInfo{Name: d.Key(), Kind: kindName(d.Kind), Streaming: d.Streaming(), Reads: d.Reads, PrimaryKey: d.PrimaryKey, TimeSeries: d.TimeSeries}
		if di.Reads == nil {
			di.Reads = []string{}
		}
		for _, f := range d.Schema.Fields() {
			di.Columns = append(di.Columns, ColumnInfo{Name: f.Name, Type: expr.TypeName(f.Type)})
		}
		for _, e := range d.Expectations {
			di.Expectations = append(di.Expectations, ExpectationStatus{Name: e.Name, Action: actionName(e.Action), Condition: e.Condition()})
		}
		out = append(out, di)
	}
	return out
}

// ManagerOptions configures a [Manager].
type ManagerOptions struct {
	Store   *table.Store
	Catalog *catalog.Catalog
	Run     RunOptions
	// PollInterval is how often a continuous pipeline with nothing to do
	// looks for new source data. Default 200ms.
	PollInterval time.Duration
	// RetryInterval is how long a continuous or interval pipeline waits
	// after a failed round before trying again. Default 5s.
	RetryInterval time.Duration
	// Publisher, if set, publishes the feature tables marked online
	// (TBLPROPERTIES ('online' = 'true') with a PRIMARY KEY) after each of
	// their commits: the continuous online sync.
	Publisher *publish.Publisher
}

// Manager keeps the pipelines of one sluice instance: it stores their
// definitions in the catalog, runs their updates in goroutines, resumes
// continuous and interval pipelines when sluice starts, and serves their
// status and events. Its methods are safe for concurrent use.
type Manager struct {
	opts   ManagerOptions
	logger *slog.Logger

	mu    sync.Mutex
	pipes map[string]*pipe
	wg    sync.WaitGroup
}

// NewManager returns a manager; call Resume to restart stored pipelines.
func NewManager(o ManagerOptions, logger *slog.Logger) *Manager {
	if o.PollInterval <= 0 {
		o.PollInterval = 200 * time.Millisecond
	}
	if o.RetryInterval <= 0 {
		o.RetryInterval = 5 * time.Second
	}
	if pub := o.Publisher; pub != nil && o.Run.AfterCommit == nil {
		o.Run.AfterCommit = func(ctx context.Context, d *Dataset) error {
			if strings.EqualFold(d.Properties[publish.PropOnline], "true") {
				_, err := pub.Sync(ctx, d.Name)
				return err
			}
			if len(d.PrimaryKey) == 0 && d.Properties[window.PropDef] == "" {
				return nil
			}
			// Published later (sluice feature-table publish).
			return pub.SyncIfOnline(ctx, d.Name)
		}
	}
	o.Run.EnsureDefaults()
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Manager{opts: o, logger: logger, pipes: map[string]*pipe{}}
}

// pipe is one pipeline known to the manager.
type pipe struct {
	name    ident.Name
	spec    Spec
	trigger Trigger
	owner   string
	created time.Time
	log     *eventLog

	mu       sync.Mutex
	state    string
	updateID string
	err      string
	runner   *Runner
	cancel   context.CancelFunc
	done     chan struct{}
}

// Compile compiles a pipeline's SQL against the store's tables.
func (m *Manager) Compile(ctx context.Context, name ident.Name, src string) (*Graph, error) {
	return Compile(ctx, src, CompileOptions{Catalog: name.Catalog, Schema: name.Schema, Lookup: m.lookup})
}

func (m *Manager) lookup(ctx context.Context, name ident.Name) (*arrow.Schema, error) {
	t, err := m.opts.Store.Load(ctx, name)
	if errors.Is(err, table.ErrNotFound) {
		return nil, fmt.Errorf("%w: %s", ErrUnknownTable, name)
	}
	if err != nil {
		return nil, err
	}
	return t.ArrowSchema(), nil
}

// Run stores the pipeline's definition (replacing an earlier one of the
// same name, whose running update is stopped first) and starts an update.
// It returns once the update has started; the update runs until its
// trigger says to stop, or Stop, Delete or Close.
func (m *Manager) Run(ctx context.Context, spec Spec, req UpdateRequest, owner string) (Info, error) {
	name, err := ident.Parse(spec.Name)
	if err != nil {
		return Info{}, fmt.Errorf("%w: pipeline name: %v", ErrInvalid, err)
	}
	trig, err := ParseTrigger(spec.Trigger)
	if err != nil {
		return Info{}, err
	}
	spec.Trigger = trig.String()
	g, err := m.Compile(ctx, name, spec.SQL)
	if err != nil {
		return Info{}, err
	}
	full, err := fullRefreshSet(g, req)
	if err != nil {
		return Info{}, err
	}
	m.mu.Lock()
	p := m.pipes[name.String()]
	m.mu.Unlock()
	created := time.Now().UTC()
	if p != nil {
		if p.owner != owner && owner != "" && p.owner != "" {
			return Info{}, fmt.Errorf("%w: pipeline %s belongs to %s", ErrConflict, name, p.owner)
		}
		p.stop()
		created, owner = p.created, p.owner
	} else if old, err := m.opts.Catalog.GetPipeline(ctx, name.String()); err == nil {
		created, owner = old.CreatedAt, old.Owner
	}
	raw, _ := json.Marshal(spec)
	if err := m.opts.Catalog.PutPipeline(ctx, catalog.Pipeline{Name: name.String(), Spec: raw, Owner: owner, CreatedAt: created, Running: trig.Kind != "available-now"}); err != nil {
		return Info{}, err
	}
	for _, d := range g.Tables() {
		if err := m.opts.Catalog.Grant(ctx, d.Name.String(), owner, catalog.PrivAll); err != nil {
			return Info{}, err
		}
	}
	np := &pipe{name: name, spec: spec, trigger: trig, owner: owner, created: created, state: "idle"}
	np.log, err = openEventLog(ctx, m.opts.Store, name)
	if err != nil {
		return Info{}, err
	}
	m.mu.Lock()
	m.pipes[name.String()] = np
	m.mu.Unlock()
	m.start(np, g, full)
	return np.info(), nil
}

func fullRefreshSet(g *Graph, req UpdateRequest) (map[string]bool, error) {
	full := map[string]bool{}
	if req.FullRefreshAll {
		for _, d := range g.Tables() {
			full[d.Key()] = true
		}
		return full, nil
	}
	for _, n := range req.FullRefresh {
		n = strings.TrimSpace(n)
		if n == "" {
			continue
		}
		d := g.Dataset(n)
		if d == nil {
			if nn, err := ident.Parse(n); err == nil {
				d = g.Dataset(nn.String())
			}
		}
		if d == nil {
			// A short name: the dataset's last part.
			for _, c := range g.Tables() {
				if strings.EqualFold(c.Name.Object, n) {
					d = c
				}
			}
		}
		if d == nil || d.Kind == sql.TemporaryView {
			return nil, fmt.Errorf("%w: --full-refresh %s: the pipeline has no table of that name", ErrInvalid, n)
		}
		full[d.Key()] = true
	}
	return full, nil
}

// start runs an update of p in a goroutine.
func (m *Manager) start(p *pipe, g *Graph, full map[string]bool) {
	ctx, cancel := context.WithCancel(context.Background())
	upd := fmt.Sprintf("%d", time.Now().UnixNano())
	runner := NewRunner(p.name, g, m.opts.Store, m.opts.Run, func(e Event) {
		e.UpdateID = upd
		p.log.add(e)
	})
	p.mu.Lock()
	p.state, p.updateID, p.err, p.runner, p.cancel, p.done = "running", upd, "", runner, cancel, make(chan struct{})
	done := p.done
	p.mu.Unlock()
	p.log.add(Event{Type: "create_update", UpdateID: upd, Message: fmt.Sprintf("update %s started (trigger %s)", upd, p.trigger)})
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		defer close(done)
		defer runner.Close()
		m.loop(ctx, p, runner, full)
		if err := p.log.flush(context.Background()); err != nil {
			m.logger.Warn("writing the event log", "pipeline", p.name.String(), "err", err)
		}
	}()
}

// loop runs rounds of p by its trigger until it is done or ctx ends.
func (m *Manager) loop(ctx context.Context, p *pipe, r *Runner, full map[string]bool) {
	var flushed time.Time
	sources := r.g.Sources()
	for {
		// A commit to a source after this point ends an idle wait below
		// at once: the round may have read the table just before it.
		changed := make([]<-chan struct{}, 0, len(sources))
		for _, n := range sources {
			changed = append(changed, m.opts.Store.Changed(n))
		}
		res, err := r.Round(ctx, full)
		full = nil
		// A continuous pipeline writes its event log at most every
		// eventLogFlushInterval, not after every round: the commit would
		// add to every round's latency, and one that wakes at every
		// source commit is idle between most of them. Its idle polls
		// flush what is older. Failures, stops and other triggers flush
		// at once (the events are in memory meanwhile, for
		// `events --follow`).
		if err != nil || ctx.Err() != nil || p.trigger.Kind != "continuous" || time.Since(flushed) >= eventLogFlushInterval {
			if ferr := p.log.flush(ctx); ferr != nil && ctx.Err() == nil {
				m.logger.Warn("writing the event log", "pipeline", p.name.String(), "err", ferr)
			}
			flushed = time.Now()
		}
		if ctx.Err() != nil {
			p.event(Event{Type: "update_progress", Message: "update stopped"})
			p.setState("stopped", "")
			return
		}
		var exp *ExpectationError
		switch {
		case err != nil && (p.trigger.Kind == "available-now" || errors.As(err, &exp) || errors.Is(err, ErrInvalid) || errors.Is(err, ErrConflict)):
			p.event(Event{Type: "update_progress", Level: "ERROR", Message: "update failed: " + err.Error()})
			p.setState("failed", err.Error())
			m.logger.Warn("pipeline update failed", "pipeline", p.name.String(), "err", err)
			if p.trigger.Kind != "available-now" {
				_ = m.opts.Catalog.SetPipelineRunning(context.Background(), p.name.String(), false)
			}
			return
		case err != nil:
			p.event(Event{Type: "update_progress", Level: "WARN", Message: "round failed, retrying in " + m.opts.RetryInterval.String() + ": " + err.Error()})
			if !sleep(ctx, m.opts.RetryInterval) {
				continue
			}
			continue
		}
		if p.trigger.Kind == "available-now" {
			p.event(Event{Type: "update_progress", Message: fmt.Sprintf("update completed: %d micro-batches, %d source rows", res.Batches, res.Rows)})
			p.setState("completed", "")
			return
		}
		if p.trigger.Kind == "continuous" {
			if res.Batches == 0 {
				// Idle: run again when this process commits to a source,
				// or after PollInterval for writers elsewhere.
				waitChange(ctx, m.opts.PollInterval, changed)
			}
			continue
		}
		sleep(ctx, p.trigger.Interval)
	}
}

// waitChange waits until one of changed is closed, d passes or ctx ends.
func waitChange(ctx context.Context, d time.Duration, changed []<-chan struct{}) {
	t := time.NewTimer(d)
	defer t.Stop()
	cases := []reflect.SelectCase{
		{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(t.C)},
		{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(ctx.Done())},
	}
	for _, ch := range changed {
		cases = append(cases, reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(ch)})
	}
	reflect.Select(cases)
}

// eventLogFlushInterval bounds how long a busy continuous pipeline keeps
// its events in memory before writing them to its event log table.
const eventLogFlushInterval = time.Second

// sleep waits d or until ctx ends; it reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// event logs e as an event of p's current update.
func (p *pipe) event(e Event) {
	p.mu.Lock()
	e.UpdateID = p.updateID
	p.mu.Unlock()
	p.log.add(e)
}

func (p *pipe) setState(state, err string) {
	p.mu.Lock()
	p.state, p.err = state, err
	p.mu.Unlock()
}

// stop cancels p's update and waits for it to end.
func (p *pipe) stop() {
	p.mu.Lock()
	cancel, done := p.cancel, p.done
	p.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
}

func (p *pipe) info() Info {
	p.mu.Lock()
	defer p.mu.Unlock()
	in := Info{Name: p.name.String(), Trigger: p.trigger.String(), Owner: p.owner, CreatedAt: p.created,
		State: p.state, UpdateID: p.updateID, Error: p.err, SQL: p.spec.SQL, Datasets: []DatasetStatus{}}
	if p.runner != nil {
		in.Datasets = p.runner.Status()
		in.Graph = Describe(p.runner.g)
	}
	return in
}

// Get returns the pipeline called name.
func (m *Manager) Get(ctx context.Context, name string) (Info, error) {
	p, err := m.pipe(ctx, name)
	if err != nil {
		return Info{}, err
	}
	return p.info(), nil
}

// List returns every pipeline, by name.
func (m *Manager) List(ctx context.Context) ([]Info, error) {
	stored, err := m.opts.Catalog.ListPipelines(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]Info, 0, len(stored))
	for _, s := range stored {
		p, err := m.pipe(ctx, s.Name)
		if err != nil {
			return nil, err
		}
		in := p.info()
		in.SQL, in.Graph = "", nil
		out = append(out, in)
	}
	return out, nil
}

// pipe returns the manager's pipe for name, loading a stored pipeline that
// has not run in this process.
func (m *Manager) pipe(ctx context.Context, name string) (*pipe, error) {
	n, err := ident.Parse(name)
	if err != nil {
		return nil, fmt.Errorf("%w: pipeline name: %v", ErrInvalid, err)
	}
	m.mu.Lock()
	p := m.pipes[n.String()]
	m.mu.Unlock()
	if p != nil {
		return p, nil
	}
	s, err := m.opts.Catalog.GetPipeline(ctx, n.String())
	if errors.Is(err, catalog.ErrNotFound) {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, n)
	}
	if err != nil {
		return nil, err
	}
	var spec Spec
	if err := json.Unmarshal(s.Spec, &spec); err != nil {
		return nil, fmt.Errorf("reading pipeline %s: %w", n, err)
	}
	trig, _ := ParseTrigger(spec.Trigger)
	p = &pipe{name: n, spec: spec, trigger: trig, owner: s.Owner, created: s.CreatedAt, state: "idle"}
	if p.log, err = openEventLog(ctx, m.opts.Store, n); err != nil {
		return nil, err
	}
	m.mu.Lock()
	if q := m.pipes[n.String()]; q != nil {
		p = q
	} else {
		m.pipes[n.String()] = p
	}
	m.mu.Unlock()
	return p, nil
}

// Update starts a new update of a stored pipeline with its stored SQL and
// trigger.
func (m *Manager) Update(ctx context.Context, name string, req UpdateRequest, who string) (Info, error) {
	p, err := m.pipe(ctx, name)
	if err != nil {
		return Info{}, err
	}
	return m.Run(ctx, p.spec, req, who)
}

// Stop stops the pipeline's running update; a continuous or interval
// pipeline is then no longer resumed when sluice starts.
func (m *Manager) Stop(ctx context.Context, name string) (Info, error) {
	p, err := m.pipe(ctx, name)
	if err != nil {
		return Info{}, err
	}
	p.stop()
	if err := m.opts.Catalog.SetPipelineRunning(ctx, p.name.String(), false); err != nil {
		return Info{}, err
	}
	return p.info(), nil
}

// Delete stops the pipeline and removes its definition, and its streaming
// tables stop holding back snapshot expiry of their sources. Its tables and
// event log stay.
func (m *Manager) Delete(ctx context.Context, name string) error {
	p, err := m.pipe(ctx, name)
	if err != nil {
		return err
	}
	p.stop()
	m.mu.Lock()
	delete(m.pipes, p.name.String())
	m.mu.Unlock()
	if err := m.opts.Store.DropReaders(ctx, readerPrefix(p.name)); err != nil {
		return err
	}
	return m.opts.Catalog.DeletePipeline(ctx, p.name.String())
}

// Events returns the pipeline's events with Seq > after, oldest first, at
// most limit. If there are none and wait > 0, it waits up to wait for one.
func (m *Manager) Events(ctx context.Context, name string, after int64, limit int, wait time.Duration) ([]Event, error) {
	p, err := m.pipe(ctx, name)
	if err != nil {
		return nil, err
	}
	return p.log.read(ctx, after, limit, wait)
}

// Resume starts an update of every stored pipeline marked running (those
// with a continuous or interval trigger that were not stopped). A pipeline
// that no longer compiles is logged and left stopped.
func (m *Manager) Resume(ctx context.Context) error {
	stored, err := m.opts.Catalog.ListPipelines(ctx)
	if err != nil {
		return err
	}
	for _, s := range stored {
		if !s.Running {
			continue
		}
		var spec Spec
		if err := json.Unmarshal(s.Spec, &spec); err != nil {
			m.logger.Error("cannot resume pipeline", "pipeline", s.Name, "err", err)
			continue
		}
		if _, err := m.Run(ctx, spec, UpdateRequest{}, s.Owner); err != nil {
			m.logger.Error("cannot resume pipeline", "pipeline", s.Name, "err", err)
			continue
		}
		m.logger.Info("pipeline resumed", "pipeline", s.Name, "trigger", spec.Trigger)
	}
	return nil
}

// Close stops every running update and waits for them. Stored pipelines
// keep their running flag, so the next Resume restarts them.
func (m *Manager) Close() {
	m.mu.Lock()
	pipes := make([]*pipe, 0, len(m.pipes))
	for _, p := range m.pipes {
		pipes = append(pipes, p)
	}
	m.mu.Unlock()
	for _, p := range pipes {
		p.stop()
	}
	m.wg.Wait()
}
