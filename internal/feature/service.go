package feature

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/sluice-dev/sluice/internal/catalog"
	"github.com/sluice-dev/sluice/internal/ident"
	"github.com/sluice-dev/sluice/internal/table"
)

// readerPrefix names the table reader (see [table.Store.SetReader]) that
// a training set registers on every table it reads, so that snapshot
// expiry keeps the snapshots it needs to be recreated.
const readerPrefix = "training-set/"

// Service creates, records and recreates training sets and registers
// models against them. It is safe for concurrent use.
type Service struct {
	tables *table.Store
	cat    *catalog.Catalog
	opts   Options
	logger *slog.Logger
}

// New returns a Service over the node's tables and catalog. A nil logger
// discards logs.
func New(tables *table.Store, cat *catalog.Catalog, logger *slog.Logger, opts Options) *Service {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	opts.EnsureDefaults()
	return &Service{tables: tables, cat: cat, opts: opts, logger: logger}
}

// TrainingSet is a recorded training set.
type TrainingSet struct {
	Name      string    `json:"name"`
	Owner     string    `json:"owner"`
	CreatedAt time.Time `json:"created_at"`
	Spec      Spec      `json:"spec"`
	Plan      Plan      `json:"plan"`
}

// Create resolves spec ([Service.Plan]) and records the training set as
// name (generated when empty: ts_YYYYMMDD_HHMMSS_XXXX) in the catalog. It
// registers the training set as a reader of every table it reads, so
// that snapshot expiry keeps those snapshots for [Service.Recreate]. It
// reads no feature data: [Service.Open] computes the rows. check, if not
// nil, vets the plan before anything is recorded (the API checks the
// caller's privileges on the tables it reads).
func (s *Service) Create(ctx context.Context, name string, spec Spec, owner string, check func(Plan) error) (TrainingSet, error) {
	if name == "" {
		var b [2]byte
		_, _ = rand.Read(b[:])
		name = "ts_" + time.Now().UTC().Format("20060102_150405") + "_" + hex.EncodeToString(b[:])
	}
	if err := CheckName("training set", name); err != nil {
		return TrainingSet{}, err
	}
	if _, err := s.cat.GetTrainingSet(ctx, name); err == nil {
		return TrainingSet{}, fmt.Errorf("training set %s: %w", name, catalog.ErrExists)
	}
	plan, err := s.Plan(ctx, spec)
	if err != nil {
		return TrainingSet{}, err
	}
	if check != nil {
		if err := check(plan); err != nil {
			return TrainingSet{}, err
		}
	}
	ts := TrainingSet{Name: name, Owner: owner, CreatedAt: time.Now().UTC().Truncate(time.Microsecond), Spec: spec, Plan: plan}
	if err := s.pin(ctx, ts); err != nil {
		return ts, err
	}
	sj, _ := json.Marshal(spec)
	pj, _ := json.Marshal(plan)
	if err := s.cat.CreateTrainingSet(ctx, catalog.TrainingSet{Name: name, Spec: sj, Plan: pj, Owner: owner, CreatedAt: ts.CreatedAt}); err != nil {
		return ts, err
	}
	s.logger.Info("training set created", "name", name, "rows", plan.Rows, "lookups", len(plan.Lookups))
	return ts, nil
}

// pin registers ts as a reader of the snapshots it reads.
func (s *Service) pin(ctx context.Context, ts TrainingSet) error {
	type read struct {
		name string
		snap int64
	}
	reads := []read{}
	if ts.Plan.Labels.Table != "" {
		reads = append(reads, read{ts.Plan.Labels.Table, ts.Plan.Labels.Snapshot})
	}
	for _, l := range ts.Plan.Lookups {
		reads = append(reads, read{l.Table, l.Snapshot})
	}
	for _, r := range reads {
		if r.snap == 0 {
			continue
		}
		n, err := ident.Parse(r.name)
		if err != nil {
			return err
		}
		t, err := s.tables.Load(ctx, n)
		if err != nil {
			return err
		}
		at, ok := t.SnapshotTime(r.snap)
		if !ok {
			return fmt.Errorf("%w: %s no longer holds snapshot %d", ErrChanged, r.name, r.snap)
		}
		if err := s.tables.SetReader(ctx, n, readerPrefix+ts.Name, r.snap, at); err != nil {
			return err
		}
	}
	return nil
}

// Get returns training set name, or an error wrapping [ErrNotFound].
func (s *Service) Get(ctx context.Context, name string) (TrainingSet, error) {
	rec, err := s.cat.GetTrainingSet(ctx, name)
	if errors.Is(err, catalog.ErrNotFound) {
		return TrainingSet{}, fmt.Errorf("%w: training set %s", ErrNotFound, name)
	}
	if err != nil {
		return TrainingSet{}, err
	}
	return decodeTrainingSet(rec)
}

func decodeTrainingSet(rec catalog.TrainingSet) (TrainingSet, error) {
	ts := TrainingSet{Name: rec.Name, Owner: rec.Owner, CreatedAt: rec.CreatedAt}
	if err := json.Unmarshal(rec.Spec, &ts.Spec); err != nil {
		return ts, fmt.Errorf("training set %s: decoding its spec: %w", rec.Name, err)
	}
	if err := json.Unmarshal(rec.Plan, &ts.Plan); err != nil {
		return ts, fmt.Errorf("training set %s: decoding its plan: %w", rec.Name, err)
	}
	return ts, nil
}

// List returns every training set, by name.
func (s *Service) List(ctx context.Context) ([]TrainingSet, error) {
	recs, err := s.cat.ListTrainingSets(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]TrainingSet, 0, len(recs))
	for _, r := range recs {
		ts, err := decodeTrainingSet(r)
		if err != nil {
			return nil, err
		}
		out = append(out, ts)
	}
	return out, nil
}

// Delete forgets training set name and releases the snapshots it pinned.
func (s *Service) Delete(ctx context.Context, name string) error {
	if err := s.cat.DeleteTrainingSet(ctx, name); err != nil {
		if errors.Is(err, catalog.ErrNotFound) {
			return fmt.Errorf("%w: training set %s", ErrNotFound, name)
		}
		return err
	}
	return s.tables.DropReaders(ctx, readerPrefix+name)
}

// Open computes training set name's rows from exactly what it recorded
// (the same label files, checked by digest, and the same table
// snapshots): the rows, their order and their values are those of the
// first time, so [WriteParquet] writes the same bytes. An input that
// changed or was expired fails with [ErrChanged].
func (s *Service) Open(ctx context.Context, name string) (*Result, TrainingSet, error) {
	ts, err := s.Get(ctx, name)
	if err != nil {
		return nil, ts, err
	}
	r, err := s.Run(ctx, ts.Plan)
	return r, ts, err
}

// Model is a registered model and its lineage.
type Model struct {
	Name        string    `json:"name"`
	TrainingSet string    `json:"training_set"`
	Owner       string    `json:"owner"`
	CreatedAt   time.Time `json:"created_at"`
	// Features are the features the model was trained on, per table:
	// what serving it needs.
	Features []ModelFeatures `json:"features"`
}

// ModelFeatures are the features a model takes from one table.
type ModelFeatures struct {
	Table     string   `json:"table"`
	LookupKey []string `json:"lookup_key"`
	// Features are the table's columns read.
	Features []string `json:"features"`
	// Columns are the names Features have in the training set, in the
	// same order (its LookupPlan.Columns): a rename, or the table prefix
	// a clash with a label column or another lookup's feature gave. A
	// model is served its features under these names, so serving and
	// training agree.
	Columns []string `json:"columns"`
}

// LogModel records that model name was trained on training set ts (the
// newest call wins for a name).
func (s *Service) LogModel(ctx context.Context, name, ts, owner string) (Model, error) {
	if err := CheckName("model", name); err != nil {
		return Model{}, err
	}
	m := catalog.Model{Name: name, TrainingSet: ts, Owner: owner, CreatedAt: time.Now().UTC().Truncate(time.Microsecond)}
	if err := s.cat.PutModel(ctx, m); err != nil {
		if errors.Is(err, catalog.ErrNotFound) {
			return Model{}, fmt.Errorf("%w: training set %s", ErrNotFound, ts)
		}
		return Model{}, err
	}
	return s.GetModel(ctx, name)
}

// GetModel returns model name with its training set's features and their
// names in the training set, as its recorded plan has them.
func (s *Service) GetModel(ctx context.Context, name string) (Model, error) {
	rec, err := s.cat.GetModel(ctx, name)
	if errors.Is(err, catalog.ErrNotFound) {
		return Model{}, fmt.Errorf("%w: model %s", ErrNotFound, name)
	}
	if err != nil {
		return Model{}, err
	}
	return s.model(ctx, rec), nil
}

// model returns rec with its training set's features; a deleted training
// set leaves them empty (the lineage keeps its name).
func (s *Service) model(ctx context.Context, rec catalog.Model) Model {
	m := Model{Name: rec.Name, TrainingSet: rec.TrainingSet, Owner: rec.Owner, CreatedAt: rec.CreatedAt, Features: []ModelFeatures{}}
	ts, err := s.Get(ctx, rec.TrainingSet)
	if err != nil {
		return m // the training set was deleted: the lineage keeps its name
	}
	for _, l := range ts.Plan.Lookups {
		m.Features = append(m.Features, ModelFeatures{Table: l.Table, LookupKey: l.LookupKey, Features: l.Features, Columns: l.Columns})
	}
	return m
}

// ListModels returns every model, by name, each as [Service.GetModel]
// returns it.
func (s *Service) ListModels(ctx context.Context) ([]Model, error) {
	recs, err := s.cat.ListModels(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]Model, 0, len(recs))
	for _, r := range recs {
		out = append(out, s.model(ctx, r))
	}
	return out, nil
}

// DeleteModel forgets model name, or returns an error wrapping
// [ErrNotFound]. Its training set is kept.
func (s *Service) DeleteModel(ctx context.Context, name string) error {
	if err := s.cat.DeleteModel(ctx, name); err != nil {
		if errors.Is(err, catalog.ErrNotFound) {
			return fmt.Errorf("%w: model %s", ErrNotFound, name)
		}
		return err
	}
	return nil
}
