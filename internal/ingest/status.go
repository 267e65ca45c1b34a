package ingest

import (
	"sync"
	"time"

	"github.com/sluice-dev/sluice/internal/source/kafka"
)

// States of a stream's ingestion.
const (
	StateStarting = "starting"
	StateRunning  = "running"
	StateFailing  = "failing" // retrying after an error; LastError says which
	StateStopped  = "stopped"
)

// Status is what a stream's ingestion reports: `sluice stream get` shows it
// and the catalog keeps the last one across restarts.
type Status struct {
	State       string    `json:"state"`
	LastError   string    `json:"last_error,omitempty"`
	LastErrorAt time.Time `json:"last_error_at,omitzero"`
	// RowsIngested and RowsQuarantined count the rows in the ingestion and
	// quarantine tables.
	RowsIngested    int64 `json:"rows_ingested"`
	RowsQuarantined int64 `json:"rows_quarantined"`
	// Offsets are the next offsets to read, as committed to the ingestion table.
	Offsets kafka.Offsets `json:"offsets"`
	// Lag is the number of records produced but not yet committed, as of
	// the last fetch.
	Lag          int64     `json:"lag"`
	LastCommitAt time.Time `json:"last_commit_at,omitzero"`
	SnapshotID   int64     `json:"snapshot_id,omitempty"`
	UpdatedAt    time.Time `json:"updated_at,omitzero"`
	// Backfill is the state of the backfill merge; nil for a stream
	// without backfill_source. The Manager fills it in; the runner's own
	// status never holds it.
	Backfill *BackfillStatus `json:"backfill,omitempty"`
}

// statusBox is a Status shared between a runner and readers.
type statusBox struct {
	mu sync.Mutex
	s  Status
}

func (b *statusBox) get() Status {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.s
	s.Offsets = s.Offsets.Clone()
	return s
}

func (b *statusBox) update(f func(*Status)) Status {
	b.mu.Lock()
	defer b.mu.Unlock()
	f(&b.s)
	b.s.UpdatedAt = time.Now().UTC()
	s := b.s
	s.Offsets = s.Offsets.Clone()
	return s
}
