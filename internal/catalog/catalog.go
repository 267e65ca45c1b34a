// Package catalog is sluice's metadata store: stream declarations and their
// status, owners and privileges on securables, and encrypted secrets. It
// lives in one database/sql database (SQLite by default, in the data
// directory) which it shares with the Iceberg SQL catalog of package table.
//
// A Catalog is safe for concurrent use; every method is one statement or one
// transaction, so a crash never leaves a half-written row.
package catalog

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Sentinel errors; callers test them with errors.Is.
var (
	// ErrNotFound is returned when the named stream, secret or grant does not exist.
	ErrNotFound = errors.New("catalog: not found")
	// ErrExists is returned when creating something whose name is taken.
	ErrExists = errors.New("catalog: already exists")
)

// Catalog is the metadata store.
type Catalog struct {
	db      *sql.DB
	sealKey []byte
}

// Options configures Open.
type Options struct {
	// DB is the metadata database; the caller opens and closes it. Required.
	DB *sql.DB
	// SecretKey is the 32-byte AES-256 key that seals secrets. Required for
	// the secret methods; see LoadOrCreateKey.
	SecretKey []byte
}

const schemaDDL = `
CREATE TABLE IF NOT EXISTS sluice_streams (
	name          TEXT PRIMARY KEY,
	destination   TEXT NOT NULL UNIQUE,
	spec          TEXT NOT NULL,
	owner         TEXT NOT NULL,
	created_at    INTEGER NOT NULL,
	start_offsets TEXT NOT NULL,
	status        TEXT NOT NULL DEFAULT '{}'
);
CREATE TABLE IF NOT EXISTS sluice_secrets (
	scope      TEXT NOT NULL,
	key        TEXT NOT NULL,
	nonce      BLOB NOT NULL,
	sealed     BLOB NOT NULL,
	created_at INTEGER NOT NULL,
	PRIMARY KEY (scope, key)
);
CREATE TABLE IF NOT EXISTS sluice_backfills (
	stream TEXT PRIMARY KEY,
	state  TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS sluice_grants (
	securable TEXT NOT NULL,
	principal TEXT NOT NULL,
	privilege TEXT NOT NULL,
	PRIMARY KEY (securable, principal, privilege)
);
`

// Open creates the catalog's tables if they are missing.
func Open(ctx context.Context, opts Options) (*Catalog, error) {
	if opts.DB == nil {
		return nil, errors.New("catalog: Options.DB is nil")
	}
	if opts.SecretKey != nil && len(opts.SecretKey) != 32 {
		return nil, fmt.Errorf("catalog: secret key has %d bytes, want 32", len(opts.SecretKey))
	}
	for _, ddl := range []string{schemaDDL, pipelinesDDL, trainingSetsDDL} {
		if _, err := opts.DB.ExecContext(ctx, ddl); err != nil {
			return nil, fmt.Errorf("creating catalog tables: %w", err)
		}
	}
	return &Catalog{db: opts.DB, sealKey: opts.SecretKey}, nil
}

// Stream is a stored stream: its spec as given (JSON) and what sluice
// recorded when it was created.
type Stream struct {
	Name        string
	Destination string
	Spec        []byte // JSON
	Owner       string
	CreatedAt   time.Time
	// StartOffsets is JSON topic -> partition -> offset: where ingestion
	// starts, fixed when the stream was created.
	StartOffsets []byte
	// Status is the last status the ingestion runner saved (JSON).
	Status []byte
}

// CreateStream stores s and grants its owner ALL PRIVILEGES on the ingestion
// table, in one transaction. It returns ErrExists when the stream's name is
// taken or its destination belongs to another stream.
func (c *Catalog) CreateStream(ctx context.Context, s Stream) error {
	tx, err := c.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // no-op after Commit
	var other string
	switch err := tx.QueryRowContext(ctx, `SELECT name FROM sluice_streams WHERE name = ? OR destination = ?`, s.Name, s.Destination).Scan(&other); {
	case err == nil:
		if other == s.Name {
			return fmt.Errorf("stream %s: %w", s.Name, ErrExists)
		}
		return fmt.Errorf("destination %s belongs to stream %s: %w", s.Destination, other, ErrExists)
	case !errors.Is(err, sql.ErrNoRows):
		return err
	}
	status := s.Status
	if status == nil {
		status = []byte("{}")
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO sluice_streams (name, destination, spec, owner, created_at, start_offsets, status) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		s.Name, s.Destination, string(s.Spec), s.Owner, s.CreatedAt.UnixMicro(), string(s.StartOffsets), string(status)); err != nil {
		return fmt.Errorf("inserting stream %s: %w", s.Name, err)
	}
	if err := grantTx(ctx, tx, s.Destination, s.Owner, PrivAll); err != nil {
		return err
	}
	// A new stream starts without backfill state, whatever an earlier
	// stream of that name left.
	if _, err := tx.ExecContext(ctx, `DELETE FROM sluice_backfills WHERE stream = ?`, s.Name); err != nil {
		return err
	}
	return tx.Commit()
}

const streamCols = `name, destination, spec, owner, created_at, start_offsets, status`

func scanStream(sc interface{ Scan(...any) error }) (Stream, error) {
	var s Stream
	var spec, start, status string
	var created int64
	if err := sc.Scan(&s.Name, &s.Destination, &spec, &s.Owner, &created, &start, &status); err != nil {
		return Stream{}, err
	}
	s.Spec, s.StartOffsets, s.Status = []byte(spec), []byte(start), []byte(status)
	s.CreatedAt = time.UnixMicro(created).UTC()
	return s, nil
}

// GetStream returns the named stream or ErrNotFound.
func (c *Catalog) GetStream(ctx context.Context, name string) (Stream, error) {
	s, err := scanStream(c.db.QueryRowContext(ctx, `SELECT `+streamCols+` FROM sluice_streams WHERE name = ?`, name))
	if errors.Is(err, sql.ErrNoRows) {
		return Stream{}, fmt.Errorf("stream %s: %w", name, ErrNotFound)
	}
	return s, err
}

// StreamByDestination returns the stream whose ingestion table is dest.
func (c *Catalog) StreamByDestination(ctx context.Context, dest string) (Stream, error) {
	s, err := scanStream(c.db.QueryRowContext(ctx, `SELECT `+streamCols+` FROM sluice_streams WHERE destination = ?`, dest))
	if errors.Is(err, sql.ErrNoRows) {
		return Stream{}, fmt.Errorf("stream with destination %s: %w", dest, ErrNotFound)
	}
	return s, err
}

// ListStreams returns streams whose name starts with prefix (e.g.
// "main.demo."), ordered by name, at most limit (0 = no limit), starting
// after the name pageAfter (for paging; "" = from the start).
func (c *Catalog) ListStreams(ctx context.Context, prefix, pageAfter string, limit int) ([]Stream, error) {
	q := `SELECT ` + streamCols + ` FROM sluice_streams WHERE substr(name, 1, ?) = ? AND name > ? ORDER BY name`
	args := []any{len(prefix), prefix, pageAfter}
	if limit > 0 {
		q += ` LIMIT ?`
		args = append(args, limit)
	}
	rows, err := c.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("listing streams: %w", err)
	}
	defer rows.Close()
	var out []Stream
	for rows.Next() {
		s, err := scanStream(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// SaveStreamStatus replaces the stored status of a stream. A missing stream
// (deleted meanwhile) is not an error.
func (c *Catalog) SaveStreamStatus(ctx context.Context, name string, status []byte) error {
	_, err := c.db.ExecContext(ctx, `UPDATE sluice_streams SET status = ? WHERE name = ?`, string(status), name)
	return err
}

// DeleteStream removes a stream, the grants on its ingestion table and its
// backfill state.
func (c *Catalog) DeleteStream(ctx context.Context, name string) error {
	tx, err := c.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // no-op after Commit
	var dest string
	if err := tx.QueryRowContext(ctx, `SELECT destination FROM sluice_streams WHERE name = ?`, name).Scan(&dest); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("stream %s: %w", name, ErrNotFound)
		}
		return err
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM sluice_streams WHERE name = ?`, name); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM sluice_grants WHERE securable = ?`, dest); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM sluice_backfills WHERE stream = ?`, name); err != nil {
		return err
	}
	return tx.Commit()
}
