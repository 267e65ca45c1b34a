package cli

import (
	"fmt"
	"time"

	"github.com/sluice-dev/sluice/internal/ingest"
	"github.com/sluice-dev/sluice/internal/server"
)

// backfillRows are the lines `sluice stream get` prints about the backfill
// merge of a stream that has a backfill source.
func backfillRows(s server.StreamInfo) [][2]string {
	b := s.Status.Backfill
	if b == nil {
		return nil
	}
	ts := func(t time.Time) string {
		if t.IsZero() {
			return "none yet"
		}
		return t.Format(time.RFC3339)
	}
	rows := [][2]string{{"backfill source", b.Source}}
	switch b.State {
	case ingest.BackfillWaiting, ingest.BackfillFailed:
		state := "waiting for overlap"
		if b.State == ingest.BackfillFailed {
			state = "failed (retrying)"
		}
		rows = append(rows,
			[2]string{"backfill", state},
			[2]string{"backfill latest", ts(b.BackfillMax)},
			[2]string{"stream earliest", ts(b.IngestionMin)},
			[2]string{"required overlap", b.Overlap.String()},
			[2]string{"backfill deadline", b.Deadline.Format(time.RFC3339)})
		if b.Error != "" {
			rows = append(rows, [2]string{"backfill error", b.Error + " (" + b.ErrorAt.Format(time.RFC3339) + ")"})
		}
	case ingest.BackfillMerging:
		rows = append(rows, [2]string{"backfill", "merging (" + b.Trigger + ")"})
	case ingest.BackfillDone:
		rows = append(rows,
			[2]string{"backfill", fmt.Sprintf("done (%s): %d rows inserted, %d duplicates skipped", b.Trigger, b.RowsInserted, b.DuplicatesSkipped)},
			[2]string{"backfill merged", b.MergedAt.Format(time.RFC3339)})
	default:
		rows = append(rows, [2]string{"backfill", b.State})
	}
	return rows
}
