package catalog

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

const pipelinesDDL = `
CREATE TABLE IF NOT EXISTS sluice_pipelines (
	name       TEXT PRIMARY KEY,
	spec       TEXT NOT NULL,
	owner      TEXT NOT NULL,
	created_at INTEGER NOT NULL,
	running    INTEGER NOT NULL DEFAULT 0
);
`

// Pipeline is a stored pipeline: its spec (JSON: SQL text and trigger) and
// whether it should be running, so that `sluice up` resumes it.
type Pipeline struct {
	Name      string
	Spec      []byte
	Owner     string
	CreatedAt time.Time
	Running   bool
}

// PutPipeline stores p, replacing the spec and running flag of an existing
// pipeline of the same name (whose owner and creation time are kept).
func (c *Catalog) PutPipeline(ctx context.Context, p Pipeline) error {
	_, err := c.db.ExecContext(ctx, `INSERT INTO sluice_pipelines (name, spec, owner, created_at, running) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET spec = excluded.spec, running = excluded.running`,
		p.Name, string(p.Spec), p.Owner, p.CreatedAt.UnixMilli(), p.Running)
	if err != nil {
		return fmt.Errorf("storing pipeline %s: %w", p.Name, err)
	}
	return nil
}

// SetPipelineRunning records whether pipeline name should be running.
func (c *Catalog) SetPipelineRunning(ctx context.Context, name string, running bool) error {
	_, err := c.db.ExecContext(ctx, `UPDATE sluice_pipelines SET running = ? WHERE name = ?`, running, name)
	if err != nil {
		return fmt.Errorf("updating pipeline %s: %w", name, err)
	}
	return nil
}

// GetPipeline returns the pipeline called name, or ErrNotFound.
func (c *Catalog) GetPipeline(ctx context.Context, name string) (Pipeline, error) {
	row := c.db.QueryRowContext(ctx, `SELECT name, spec, owner, created_at, running FROM sluice_pipelines WHERE name = ?`, name)
	p, err := scanPipeline(row)
	if errors.Is(err, sql.ErrNoRows) {
		return p, fmt.Errorf("pipeline %s: %w", name, ErrNotFound)
	}
	return p, err
}

// ListPipelines returns every pipeline, by name.
func (c *Catalog) ListPipelines(ctx context.Context) ([]Pipeline, error) {
	rows, err := c.db.QueryContext(ctx, `SELECT name, spec, owner, created_at, running FROM sluice_pipelines ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("listing pipelines: %w", err)
	}
	defer rows.Close()
	var out []Pipeline
	for rows.Next() {
		p, err := scanPipeline(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// DeletePipeline removes pipeline name; it returns ErrNotFound if there is
// none.
func (c *Catalog) DeletePipeline(ctx context.Context, name string) error {
	res, err := c.db.ExecContext(ctx, `DELETE FROM sluice_pipelines WHERE name = ?`, name)
	if err != nil {
		return fmt.Errorf("deleting pipeline %s: %w", name, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("pipeline %s: %w", name, ErrNotFound)
	}
	return nil
}

func scanPipeline(s interface{ Scan(...any) error }) (Pipeline, error) {
	var p Pipeline
	var spec string
	var created int64
	if err := s.Scan(&p.Name, &spec, &p.Owner, &created, &p.Running); err != nil {
		return p, err
	}
	p.Spec, p.CreatedAt = []byte(spec), time.UnixMilli(created).UTC()
	return p, nil
}
