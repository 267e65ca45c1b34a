package table

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/sluice-dev/sluice/internal/ident"
)

// Streaming readers (pipelines) read a table's history from the snapshot
// they last processed (see [Table.Changes]). Snapshot expiry must not remove
// that snapshot, or the reader can no longer tell new rows from old ones.
// Readers register their position here, in the metadata database, and
// expiry keeps every snapshot at or after the oldest registered position.

const readersDDL = `CREATE TABLE IF NOT EXISTS sluice_table_readers (
	source      TEXT NOT NULL,
	reader      TEXT NOT NULL,
	snapshot_id INTEGER NOT NULL,
	snapshot_ms INTEGER NOT NULL,
	PRIMARY KEY (source, reader)
)`

// readerMargin is kept beyond the oldest reader's snapshot, for clock skew
// between writers.
const readerMargin = time.Minute

// SetReader records that reader has processed table source up to the
// snapshot with the given id and commit time. Snapshot expiry then keeps
// that snapshot and every later one. Recording an older position than the
// true one is safe (it keeps more); call it after the reader's own commit.
func (s *Store) SetReader(ctx context.Context, source ident.Name, reader string, snapshotID int64, at time.Time) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO sluice_table_readers (source, reader, snapshot_id, snapshot_ms) VALUES (?, ?, ?, ?)
		ON CONFLICT (source, reader) DO UPDATE SET snapshot_id = excluded.snapshot_id, snapshot_ms = excluded.snapshot_ms`,
		source.String(), reader, snapshotID, at.UnixMilli())
	if err != nil {
		return fmt.Errorf("table: recording reader %s of %s: %w", reader, source, err)
	}
	return nil
}

// DropReaders forgets every reader whose name starts with prefix.
func (s *Store) DropReaders(ctx context.Context, prefix string) error {
	_, err := s.db.ExecContext(ctx, `DELETE FROM sluice_table_readers WHERE substr(reader, 1, ?) = ?`, len(prefix), prefix)
	if err != nil {
		return fmt.Errorf("table: dropping readers %s*: %w", prefix, err)
	}
	return nil
}

// oldestReader returns the commit time of the oldest snapshot a reader of
// source still needs, or the zero time if none does.
func (s *Store) oldestReader(ctx context.Context, source ident.Name) (time.Time, error) {
	var ms sql.NullInt64
	err := s.db.QueryRowContext(ctx, `SELECT min(snapshot_ms) FROM sluice_table_readers WHERE source = ?`, source.String()).Scan(&ms)
	if err != nil {
		return time.Time{}, fmt.Errorf("table: reading readers of %s: %w", source, err)
	}
	if !ms.Valid {
		return time.Time{}, nil
	}
	return time.UnixMilli(ms.Int64), nil
}

// Reader returns the snapshot that reader last recorded for source with
// SetReader, or 0 if it has recorded none.
func (s *Store) Reader(ctx context.Context, source ident.Name, reader string) (int64, error) {
	var id int64
	err := s.db.QueryRowContext(ctx, `SELECT snapshot_id FROM sluice_table_readers WHERE source = ? AND reader = ?`, source.String(), reader).Scan(&id)
	if err == sql.ErrNoRows {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("table: reading reader %s of %s: %w", reader, source, err)
	}
	return id, nil
}
