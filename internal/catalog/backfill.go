package catalog

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// SaveBackfill replaces the stored backfill state of stream (JSON, as
// package ingest writes it). The state lives beside the stream, apart from
// its ingestion status, so that the two writers never overwrite each other.
// DeleteStream removes the state with the stream, and CreateStream clears
// whatever an earlier stream of the same name left.
func (c *Catalog) SaveBackfill(ctx context.Context, stream string, state []byte) error {
	_, err := c.db.ExecContext(ctx, `INSERT INTO sluice_backfills (stream, state) VALUES (?, ?)
		ON CONFLICT (stream) DO UPDATE SET state = excluded.state`, stream, string(state))
	if err != nil {
		return fmt.Errorf("saving backfill state of %s: %w", stream, err)
	}
	return nil
}

// Backfill returns the stored backfill state of stream, or ErrNotFound when
// none was saved.
func (c *Catalog) Backfill(ctx context.Context, stream string) ([]byte, error) {
	var state string
	err := c.db.QueryRowContext(ctx, `SELECT state FROM sluice_backfills WHERE stream = ?`, stream).Scan(&state)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("backfill state of %s: %w", stream, ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	return []byte(state), nil
}
