// Package ingest runs sluice's managed ingestion: for every stream in the
// catalog, one runner consumes its Kafka partitions from the offsets
// committed in its ingestion table, decodes records into Arrow with the
// stream's schemas, and commits micro-batches to the ingestion table (and
// refused records to the quarantine table) with the next offsets in the same
// Iceberg commit. That commit is the only record of progress, so a crash at
// any moment resumes exactly where the table says: nothing is ingested twice
// or skipped.
//
// A Manager owns the runners; each runner is one goroutine that owns its
// Kafka client and table handles. Streams are independent: one failing (its
// broker gone, say) retries with backoff and does not affect the others.
package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-dev/sluice/internal/catalog"
	"github.com/sluice-dev/sluice/internal/ident"
	"github.com/sluice-dev/sluice/internal/schema"
	"github.com/sluice-dev/sluice/internal/source/kafka"
	"github.com/sluice-dev/sluice/internal/stream"
	"github.com/sluice-dev/sluice/internal/table"
)

// ErrInvalid marks errors caused by the user's input (a bad spec, a schema
// that does not compile, a taken name); the API answers them with 4xx.
var ErrInvalid = errors.New("invalid stream")

// ErrExists marks a create refused because the stream's name or its
// destination table is taken; the API answers it with 409.
var ErrExists = errors.New("already exists")

// marked is an error of a class (ErrInvalid, ErrExists, ErrUnavailable)
// whose message is just the underlying error's, so the class does not
// prefix every message a user reads.
type marked struct {
	class error
	err   error
}

func (m *marked) Error() string   { return m.err.Error() }
func (m *marked) Unwrap() []error { return []error{m.class, m.err} }
func mark(class, err error) error { return &marked{class: class, err: err} }
func fieldErr(class error, field, format string, args ...any) error {
	return mark(class, &stream.FieldError{Field: field, Reason: fmt.Sprintf(format, args...)})
}

// ErrUnavailable marks errors where an outside system (the broker) could not
// be reached; the API answers them with 503.
var ErrUnavailable = errors.New("unavailable")

// Options configures a Manager. The zero value is usable.
type Options struct {
	// DiscoveryInterval is how often a runner looks for new topics and
	// partitions its subscription selects. Default 5s.
	DiscoveryInterval time.Duration
	// FetchMaxWait bounds how long the broker holds a fetch with no data.
	// Default 500ms.
	FetchMaxWait time.Duration
	// MinBackoff and MaxBackoff bound the wait before a failed runner
	// retries. Defaults 500ms and 30s.
	MinBackoff, MaxBackoff time.Duration
	// ConnectTimeout bounds the broker checks of Create. Default 10s.
	ConnectTimeout time.Duration
	// EmbeddedBroker is the address of the broker this process embeds,
	// which streams reach with bootstrap_servers "embedded". Default ""
	// (none: such streams fail with an error saying so).
	EmbeddedBroker string
	// MaintainEvery is how many commits a runner makes between
	// maintenance passes over its tables (compaction of small files,
	// expiry of snapshots older than an hour, orphan removal), so that a
	// long-running stream keeps bounded metadata without anyone running
	// `sluice table optimize`. Default 200; negative disables.
	MaintainEvery int
	// BackfillCheckInterval is how often a stream with a backfill source
	// compares the backfill's latest timestamp with the ingestion table's
	// earliest (re-reading the source each time). The checker never sleeps
	// past the backfill deadline, so the deadline is met on time whatever
	// the interval. Default 10s.
	BackfillCheckInterval time.Duration
	// TempDir holds the spill files of backfill merges. Default: "tmp"
	// beside the table store's warehouse (in the data directory).
	TempDir string
}

// EnsureDefaults fills in defaults.
func (o *Options) EnsureDefaults() {
	if o.DiscoveryInterval <= 0 {
		o.DiscoveryInterval = 5 * time.Second
	}
	if o.FetchMaxWait <= 0 {
		o.FetchMaxWait = 500 * time.Millisecond
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = 500 * time.Millisecond
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 30 * time.Second
	}
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = 10 * time.Second
	}
	if o.MaintainEvery == 0 {
		o.MaintainEvery = 200
	}
	if o.BackfillCheckInterval <= 0 {
		o.BackfillCheckInterval = 10 * time.Second
	}
}

// Manager creates, runs, reports on and deletes streams. It is safe for
// concurrent use.
type Manager struct {
	cat     *catalog.Catalog
	store   *table.Store
	logger  *slog.Logger
	metrics *metrics
	opts    Options

	mu      sync.Mutex
	ctx     context.Context // lifetime of runners; set by Start
	runners map[string]*handle
}

type handle struct {
	r      *runner
	b      *backfiller // nil without a backfill source
	cancel context.CancelFunc
	done   chan struct{}
}

// New returns a Manager; call Start to run the streams in the catalog.
func New(cat *catalog.Catalog, store *table.Store, logger *slog.Logger, reg prometheus.Registerer, opts Options) *Manager {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	opts.EnsureDefaults()
	return &Manager{cat: cat, store: store, logger: logger, metrics: newMetrics(reg), opts: opts, runners: map[string]*handle{}}
}

func (m *Manager) secret(ctx context.Context, scope, key string) ([]byte, error) {
	return m.cat.Secret(ctx, scope, key)
}

// Start starts a runner for every stream in the catalog. Runners live until
// ctx is cancelled or Close is called.
func (m *Manager) Start(ctx context.Context) error {
	m.mu.Lock()
	m.ctx = ctx
	m.mu.Unlock()
	streams, err := m.cat.ListStreams(ctx, "", "", 0)
	if err != nil {
		return err
	}
	for _, s := range streams {
		spec, err := parseStored(s)
		if err != nil {
			m.logger.Error("stream spec in catalog is unreadable; not started", "stream", s.Name, "err", err)
			continue
		}
		if err := m.startRunner(spec, s); err != nil {
			m.logger.Error("starting stream", "stream", s.Name, "err", err)
		}
	}
	return nil
}

func parseStored(s catalog.Stream) (*stream.Spec, error) {
	return stream.Parse(s.Spec)
}

// compiled holds the schemas of a spec.
func compileSchemas(spec *stream.Spec) (key, value *schema.Schema, err error) {
	var kraw, vraw []byte
	if spec.Schema.Key != nil {
		kraw = spec.Schema.Key.JSONSchema
	}
	if spec.Schema.Payload != nil {
		vraw = spec.Schema.Payload.JSONSchema
	}
	if key, err = schema.Compile(kraw); err != nil {
		return nil, nil, &stream.FieldError{Field: "schema.key.json_schema", Reason: err.Error()}
	}
	if value, err = schema.Compile(vraw); err != nil {
		return nil, nil, &stream.FieldError{Field: "schema.payload.json_schema", Reason: err.Error()}
	}
	return key, value, nil
}

func (m *Manager) startRunner(spec *stream.Spec, s catalog.Stream) error {
	key, value, err := compileSchemas(spec)
	if err != nil {
		return err
	}
	start, err := kafka.DecodeOffsets(string(s.StartOffsets))
	if err != nil {
		return err
	}
	if start == nil {
		start = kafka.Offsets{}
	}
	var st Status
	_ = json.Unmarshal(s.Status, &st)
	st.State = StateStarting
	r := &runner{
		spec: spec, start: start, key: key, value: value, m: m,
		logger: m.logger.With("stream", spec.Name), status: &statusBox{s: st},
		metrics: m.metrics.forStream(spec.Name),
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.ctx == nil {
		return errors.New("ingest: Manager not started")
	}
	if _, ok := m.runners[spec.Name]; ok {
		return fmt.Errorf("stream %s is already running", spec.Name)
	}
	ctx, cancel := context.WithCancel(m.ctx)
	h := &handle{r: r, cancel: cancel, done: make(chan struct{})}
	if spec.Ingestion.BackfillSource != nil {
		h.b = newBackfiller(m, spec, s.CreatedAt)
		h.b.restore(m.ctx)
	}
	m.runners[spec.Name] = h
	go func() {
		defer close(h.done)
		var wg sync.WaitGroup
		if h.b != nil {
			wg.Go(func() { h.b.run(ctx) })
		}
		r.run(ctx)
		wg.Wait()
	}()
	return nil
}

func (m *Manager) saveStatus(name string, s Status) {
	b, err := json.Marshal(s)
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := m.cat.SaveStreamStatus(ctx, name, b); err != nil {
		m.logger.Warn("saving stream status", "stream", name, "err", err)
	}
}

// Create validates spec, checks the brokers are reachable, fixes the
// starting offsets (the current end of every selected partition, so every
// record produced after Create returns is ingested and none before),
// creates the ingestion and quarantine tables, records the stream in the
// catalog with owner, and starts its ingestion. On any error nothing is
// left behind.
func (m *Manager) Create(ctx context.Context, spec *stream.Spec, owner string) (catalog.Stream, error) {
	if err := spec.Validate(); err != nil {
		return catalog.Stream{}, mark(ErrInvalid, err)
	}
	key, value, err := compileSchemas(spec)
	if err != nil {
		return catalog.Stream{}, mark(ErrInvalid, err)
	}
	if _, err := m.cat.GetStream(ctx, spec.Name); err == nil {
		return catalog.Stream{}, fieldErr(ErrExists, "name", "stream %s already exists; choose another name, or delete it first", spec.Name)
	}
	if other, err := m.cat.StreamByDestination(ctx, spec.Ingestion.Destination); err == nil {
		return catalog.Stream{}, fieldErr(ErrExists, "ingestion.destination", "table %s belongs to stream %s; choose another destination", spec.Ingestion.Destination, other.Name)
	}
	for _, n := range []ident.Name{spec.DestinationName(), spec.QuarantineName()} {
		t, err := m.store.Load(ctx, n)
		switch {
		case errors.Is(err, table.ErrNotFound):
			continue
		case err != nil:
			return catalog.Stream{}, err
		case t.Properties()[PropStream] == spec.Name && t.SnapshotID() == 0:
			// Left by a create of this very stream that crashed before
			// recording it: empty, and no stream owns it (checked above).
			if err := m.store.Drop(ctx, n); err != nil {
				return catalog.Stream{}, fmt.Errorf("dropping table %s left by an interrupted create: %w", n, err)
			}
		default:
			return catalog.Stream{}, fieldErr(ErrExists, "ingestion.destination", "table %s already exists; choose another destination", n)
		}
	}

	if err := m.checkBackfill(ctx, spec, IngestionSchema(key, value)); err != nil {
		return catalog.Stream{}, err
	}

	start, err := m.startOffsets(ctx, spec)
	if err != nil {
		return catalog.Stream{}, err
	}

	_, err = m.store.Create(ctx, spec.DestinationName(), IngestionSchema(key, value), table.CreateOptions{
		Properties: map[string]string{PropStream: spec.Name},
	})
	if err != nil {
		return catalog.Stream{}, fmt.Errorf("creating ingestion table: %w", err)
	}
	if _, err := m.store.Create(ctx, spec.QuarantineName(), QuarantineSchema, table.CreateOptions{
		Properties: map[string]string{PropStream: spec.Name},
	}); err != nil {
		_ = m.store.Drop(context.WithoutCancel(ctx), spec.DestinationName())
		return catalog.Stream{}, fmt.Errorf("creating quarantine table: %w", err)
	}
	specJSON, err := json.Marshal(spec)
	if err != nil {
		return catalog.Stream{}, err
	}
	s := catalog.Stream{
		Name: spec.Name, Destination: spec.Ingestion.Destination, Spec: specJSON, Owner: owner,
		CreatedAt: time.Now().UTC().Truncate(time.Microsecond), StartOffsets: []byte(start.Encode()),
		Status: []byte(`{"state":"starting"}`),
	}
	if err := m.cat.CreateStream(ctx, s); err != nil {
		cctx := context.WithoutCancel(ctx)
		_ = m.store.Drop(cctx, spec.DestinationName())
		_ = m.store.Drop(cctx, spec.QuarantineName())
		if errors.Is(err, catalog.ErrExists) {
			return catalog.Stream{}, mark(ErrInvalid, err)
		}
		return catalog.Stream{}, err
	}
	if err := m.startRunner(spec, s); err != nil {
		return catalog.Stream{}, err
	}
	m.logger.Info("stream created", "stream", spec.Name, "destination", spec.Ingestion.Destination, "start_offsets", start.String())
	return s, nil
}

// startOffsets connects to the brokers and returns the end offset of every
// partition the subscription selects now.
func (m *Manager) startOffsets(ctx context.Context, spec *stream.Spec) (kafka.Offsets, error) {
	ctx, cancel := context.WithTimeout(ctx, m.opts.ConnectTimeout)
	defer cancel()
	conn, err := m.connection(spec)
	if err != nil {
		return nil, mark(ErrInvalid, err)
	}
	opts, err := kafka.ClientOpts(ctx, conn, m.secret)
	if err != nil {
		return nil, mark(ErrInvalid, err)
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, mark(ErrInvalid, fmt.Errorf("connection: %w", err))
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	parts, err := kafka.Resolve(ctx, adm, spec.Source.Kafka)
	if err != nil {
		return nil, mark(ErrUnavailable, fmt.Errorf("connection.bootstrap_servers: cannot reach the brokers at %s: %w", conn.BootstrapServers, err))
	}
	start, err := kafka.EndOffsets(ctx, adm, parts)
	if err != nil {
		return nil, mark(ErrUnavailable, fmt.Errorf("reading end offsets from %s: %w", conn.BootstrapServers, err))
	}
	return start, nil
}

// Delete stops the stream's ingestion, deletes its ingestion and quarantine
// tables, and removes it from the catalog, as the seed says.
func (m *Manager) Delete(ctx context.Context, name string) error {
	s, err := m.cat.GetStream(ctx, name)
	if err != nil {
		return err
	}
	m.stop(name)
	spec, err := parseStored(s)
	if err != nil {
		return err
	}
	for _, n := range []ident.Name{spec.DestinationName(), spec.QuarantineName()} {
		if err := m.store.Drop(ctx, n); err != nil && !errors.Is(err, table.ErrNotFound) {
			return fmt.Errorf("dropping table %s: %w", n, err)
		}
	}
	if err := m.cat.DeleteStream(ctx, name); err != nil {
		return err
	}
	m.metrics.deleteStream(name)
	m.logger.Info("stream deleted", "stream", name)
	return nil
}

func (m *Manager) stop(name string) {
	m.mu.Lock()
	h := m.runners[name]
	delete(m.runners, name)
	m.mu.Unlock()
	if h != nil {
		h.cancel()
		<-h.done
	}
}

// Status returns the live status of a running stream, or the last saved
// one when it is not running here.
func (m *Manager) Status(ctx context.Context, name string) (Status, error) {
	m.mu.Lock()
	h := m.runners[name]
	m.mu.Unlock()
	if h != nil {
		st := h.r.status.get()
		if h.b != nil {
			bs := h.b.status()
			st.Backfill = &bs
		}
		return st, nil
	}
	s, err := m.cat.GetStream(ctx, name)
	if err != nil {
		return Status{}, err
	}
	var st Status
	if err := json.Unmarshal(s.Status, &st); err != nil {
		return Status{}, fmt.Errorf("stream %s: stored status is unreadable: %w", name, err)
	}
	if spec, err := parseStored(s); err == nil {
		st.Backfill = m.storedBackfill(ctx, spec, s.CreatedAt)
	}
	return st, nil
}

// Close stops every runner (each commits what it has read) and waits.
func (m *Manager) Close() {
	m.mu.Lock()
	hs := m.runners
	m.runners = map[string]*handle{}
	m.mu.Unlock()
	for _, h := range hs {
		h.cancel()
	}
	for _, h := range hs {
		<-h.done
	}
}

// connection returns spec's connection with "embedded" resolved to the
// embedded broker's current address.
func (m *Manager) connection(spec *stream.Spec) (stream.Connection, error) {
	conn := spec.Connection
	if conn.BootstrapServers != stream.EmbeddedBroker {
		return conn, nil
	}
	if m.opts.EmbeddedBroker == "" {
		return conn, &stream.FieldError{Field: "connection.bootstrap_servers",
			Reason: `is "embedded", but this server runs no embedded broker (started with --no-broker); give the brokers' host:port`}
	}
	conn.BootstrapServers = m.opts.EmbeddedBroker
	return conn, nil
}
