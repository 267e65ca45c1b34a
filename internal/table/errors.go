package table

import "errors"

var (
	// ErrNotFound is returned by [Store.Load], [Store.Drop] and by [Table]
	// methods when the table (or, for Load, its namespace) does not exist.
	ErrNotFound = errors.New("table: not found")

	// ErrExists is returned by [Store.Create] when a table of that name exists.
	ErrExists = errors.New("table: already exists")

	// ErrConflict is wrapped by the error that [Table.Append] and
	// [Table.Optimize] return when the table moved since the handle last
	// loaded or committed: another writer committed first (fencing), or the
	// catalog failed after accepting this very commit. Nothing was committed
	// by the failed call except possibly in that last case, so the handle has
	// already been refreshed: inspect [Table.SnapshotProperties] (for example
	// the recorded source offsets) before deciding to retry.
	ErrConflict = errors.New("table: commit conflict")
)
