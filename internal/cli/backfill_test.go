package cli

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/ingest"
	"github.com/sluice-dev/sluice/internal/server"
	"github.com/sluice-dev/sluice/internal/stream"
)

func TestPrintStreamBackfill(t *testing.T) {
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	cases := map[string]struct {
		b    ingest.BackfillStatus
		want []string
	}{
		"waiting": {ingest.BackfillStatus{State: ingest.BackfillWaiting, Source: "table main.demo.h", BackfillMax: at, Overlap: stream.Duration(time.Hour), Deadline: at.Add(48 * time.Hour)},
			[]string{"backfill source:    table main.demo.h", "backfill:           waiting for overlap", "backfill latest:    2026-03-01T12:00:00Z",
				"stream earliest:    none yet", "required overlap:   1h0m0s", "backfill deadline:  2026-03-03T12:00:00Z"}},
		"done": {ingest.BackfillStatus{State: ingest.BackfillDone, Source: "table main.demo.h", Trigger: "deadline", RowsInserted: 7, DuplicatesSkipped: 2, MergedAt: at},
			[]string{"backfill:           done (deadline): 7 rows inserted, 2 duplicates skipped", "backfill merged:    2026-03-01T12:00:00Z"}},
		"failed": {ingest.BackfillStatus{State: ingest.BackfillFailed, Source: "table main.demo.h", Error: "boom", ErrorAt: at},
			[]string{"backfill:           failed (retrying)", "backfill error:     boom (2026-03-01T12:00:00Z)"}},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			info := server.StreamInfo{Spec: &stream.Spec{Name: "main.demo.orders"}}
			info.Status.Backfill = &c.b
			var out bytes.Buffer
			printStream(&out, info)
			for _, w := range c.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, out.String())
				}
			}
		})
	}
}
