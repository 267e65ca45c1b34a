package catalog

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

const trainingSetsDDL = `
CREATE TABLE IF NOT EXISTS sluice_training_sets (
	name       TEXT PRIMARY KEY,
	spec       TEXT NOT NULL,
	plan       TEXT NOT NULL,
	owner      TEXT NOT NULL,
	created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS sluice_models (
	name         TEXT PRIMARY KEY,
	training_set TEXT NOT NULL,
	owner        TEXT NOT NULL,
	created_at   INTEGER NOT NULL
);
`

// TrainingSet is a recorded training set: the spec as given (JSON) and
// the plan it resolved to (JSON: the label files' digests or snapshot,
// each table's snapshot id, keys and features), which is what recreating
// it reads.
type TrainingSet struct {
	Name      string
	Spec      []byte
	Plan      []byte
	Owner     string
	CreatedAt time.Time
}

// CreateTrainingSet stores ts; it returns ErrExists if the name is taken.
func (c *Catalog) CreateTrainingSet(ctx context.Context, ts TrainingSet) error {
	res, err := c.db.ExecContext(ctx, `INSERT INTO sluice_training_sets (name, spec, plan, owner, created_at) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (name) DO NOTHING`, ts.Name, string(ts.Spec), string(ts.Plan), ts.Owner, ts.CreatedAt.UnixMicro())
	if err != nil {
		return fmt.Errorf("storing training set %s: %w", ts.Name, err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		return fmt.Errorf("training set %s: %w", ts.Name, ErrExists)
	}
	return nil
}

// GetTrainingSet returns training set name, or ErrNotFound.
func (c *Catalog) GetTrainingSet(ctx context.Context, name string) (TrainingSet, error) {
	var ts TrainingSet
	var spec, plan string
	var created int64
	err := c.db.QueryRowContext(ctx, `SELECT name, spec, plan, owner, created_at FROM sluice_training_sets WHERE name = ?`, name).
		Scan(&ts.Name, &spec, &plan, &ts.Owner, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return ts, fmt.Errorf("training set %s: %w", name, ErrNotFound)
	}
	if err != nil {
		return ts, fmt.Errorf("reading training set %s: %w", name, err)
	}
	ts.Spec, ts.Plan, ts.CreatedAt = []byte(spec), []byte(plan), time.UnixMicro(created).UTC()
	return ts, nil
}

// ListTrainingSets returns every training set, by name.
func (c *Catalog) ListTrainingSets(ctx context.Context) ([]TrainingSet, error) {
	rows, err := c.db.QueryContext(ctx, `SELECT name, spec, plan, owner, created_at FROM sluice_training_sets ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("listing training sets: %w", err)
	}
	defer rows.Close()
	var out []TrainingSet
	for rows.Next() {
		var ts TrainingSet
		var spec, plan string
		var created int64
		if err := rows.Scan(&ts.Name, &spec, &plan, &ts.Owner, &created); err != nil {
			return nil, err
		}
		ts.Spec, ts.Plan, ts.CreatedAt = []byte(spec), []byte(plan), time.UnixMicro(created).UTC()
		out = append(out, ts)
	}
	return out, rows.Err()
}

// DeleteTrainingSet removes training set name, or returns ErrNotFound.
// Models logged against it keep its name.
func (c *Catalog) DeleteTrainingSet(ctx context.Context, name string) error {
	res, err := c.db.ExecContext(ctx, `DELETE FROM sluice_training_sets WHERE name = ?`, name)
	if err != nil {
		return fmt.Errorf("deleting training set %s: %w", name, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("training set %s: %w", name, ErrNotFound)
	}
	return nil
}

// Model is a registered model and the training set it was trained on.
type Model struct {
	Name        string
	TrainingSet string
	Owner       string
	CreatedAt   time.Time
}

// PutModel records model m, replacing the lineage of a model of the same
// name (a new version trained on another training set). The training set
// must exist, or it returns ErrNotFound.
func (c *Catalog) PutModel(ctx context.Context, m Model) error {
	tx, err := c.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // no-op after Commit
	var one int
	if err := tx.QueryRowContext(ctx, `SELECT 1 FROM sluice_training_sets WHERE name = ?`, m.TrainingSet).Scan(&one); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("training set %s: %w", m.TrainingSet, ErrNotFound)
		}
		return err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO sluice_models (name, training_set, owner, created_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET training_set = excluded.training_set, created_at = excluded.created_at`,
		m.Name, m.TrainingSet, m.Owner, m.CreatedAt.UnixMicro()); err != nil {
		return fmt.Errorf("storing model %s: %w", m.Name, err)
	}
	return tx.Commit()
}

// GetModel returns model name, or ErrNotFound.
func (c *Catalog) GetModel(ctx context.Context, name string) (Model, error) {
	var m Model
	var created int64
	err := c.db.QueryRowContext(ctx, `SELECT name, training_set, owner, created_at FROM sluice_models WHERE name = ?`, name).
		Scan(&m.Name, &m.TrainingSet, &m.Owner, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return m, fmt.Errorf("model %s: %w", name, ErrNotFound)
	}
	if err != nil {
		return m, fmt.Errorf("reading model %s: %w", name, err)
	}
	m.CreatedAt = time.UnixMicro(created).UTC()
	return m, nil
}

// ListModels returns every model, by name.
func (c *Catalog) ListModels(ctx context.Context) ([]Model, error) {
	rows, err := c.db.QueryContext(ctx, `SELECT name, training_set, owner, created_at FROM sluice_models ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("listing models: %w", err)
	}
	defer rows.Close()
	var out []Model
	for rows.Next() {
		var m Model
		var created int64
		if err := rows.Scan(&m.Name, &m.TrainingSet, &m.Owner, &created); err != nil {
			return nil, err
		}
		m.CreatedAt = time.UnixMicro(created).UTC()
		out = append(out, m)
	}
	return out, rows.Err()
}

// DeleteModel removes model name, or returns ErrNotFound. Its training
// set is kept.
func (c *Catalog) DeleteModel(ctx context.Context, name string) error {
	res, err := c.db.ExecContext(ctx, `DELETE FROM sluice_models WHERE name = ?`, name)
	if err != nil {
		return fmt.Errorf("deleting model %s: %w", name, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("model %s: %w", name, ErrNotFound)
	}
	return nil
}
