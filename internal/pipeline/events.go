package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/sluice-dev/sluice/internal/ident"
	"github.com/sluice-dev/sluice/internal/table"
)

// EventLogTable returns the name of a pipeline's event log table:
// catalog.schema.<pipeline>_event_log.
func EventLogTable(pipeline ident.Name) ident.Name {
	return pipeline.WithObject(pipeline.Object + "_event_log")
}

var eventSchema = arrow.NewSchema([]arrow.Field{
	{Name: "seq", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
	{Name: "timestamp", Type: &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}, Nullable: true},
	{Name: "pipeline", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "update_id", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "event_type", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "level", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "dataset", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "message", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "details", Type: arrow.BinaryTypes.String, Nullable: true},
}, nil)

const propEventSeq = "sluice.events.seq"

// eventLog is a pipeline's event log: an Iceberg table written in batches
// (flush), with the events not yet flushed and the most recent ones kept in
// memory for readers that follow it.
type eventLog struct {
	pipeline ident.Name
	store    *table.Store

	mu      sync.Mutex
	t       *table.Table // nil until the first flush creates it
	seq     int64        // last assigned
	pending []Event
	flushes int
	recent  []Event // the last maxRecent events, flushed or not
	changed chan struct{}
}

const maxRecent = 2000

// maintainEventLogEvery is how many appends to the event log table pass
// between two maintenance runs (compaction, snapshot expiry).
const maintainEventLogEvery = 200

func openEventLog(ctx context.Context, store *table.Store, pipeline ident.Name) (*eventLog, error) {
	l := &eventLog{pipeline: pipeline, store: store, changed: make(chan struct{})}
	t, err := store.Load(ctx, EventLogTable(pipeline))
	switch {
	case errors.Is(err, table.ErrNotFound):
	case err != nil:
		return nil, err
	default:
		l.t = t
		fmt.Sscan(t.SnapshotProperties()[propEventSeq], &l.seq)
	}
	return l, nil
}

// add assigns e its sequence number and time and queues it.
func (l *eventLog) add(e Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.seq++
	e.Seq = l.seq
	if e.Timestamp.IsZero() {
		e.Timestamp = time.Now().UTC()
	}
	if e.Level == "" {
		e.Level = "INFO"
	}
	e.Pipeline = l.pipeline.String()
	l.pending = append(l.pending, e)
	l.recent = append(l.recent, e)
	if len(l.recent) > maxRecent {
		l.recent = append(l.recent[:0:0], l.recent[len(l.recent)-maxRecent:]...)
	}
	close(l.changed)
	l.changed = make(chan struct{})
}

// flush appends the queued events to the event log table in one commit.
func (l *eventLog) flush(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.pending) == 0 {
		return nil
	}
	if l.t == nil {
		t, err := l.store.Create(ctx, EventLogTable(l.pipeline), eventSchema, table.CreateOptions{
			Properties: map[string]string{propPipeline: l.pipeline.String(), "comment": "event log of pipeline " + l.pipeline.String()},
		})
		if errors.Is(err, table.ErrExists) {
			t, err = l.store.Load(ctx, EventLogTable(l.pipeline))
		}
		if err != nil {
			return fmt.Errorf("creating the event log: %w", err)
		}
		l.t = t
	}
	rec := eventsRecord(l.pending)
	defer rec.Release()
	props := map[string]string{propEventSeq: fmt.Sprint(l.pending[len(l.pending)-1].Seq)}
	err := l.t.Append(ctx, []arrow.RecordBatch{rec}, props)
	if errors.Is(err, table.ErrConflict) {
		err = l.t.Append(ctx, []arrow.RecordBatch{rec}, props)
	}
	if err != nil {
		return fmt.Errorf("appending to the event log: %w", err)
	}
	l.pending = l.pending[:0]
	if l.flushes++; l.flushes%maintainEventLogEvery == 0 {
		if _, err := l.store.Optimize(ctx, EventLogTable(l.pipeline), table.AutoMaintenance); err != nil {
			return fmt.Errorf("maintaining the event log: %w", err)
		}
		return l.t.Refresh(ctx)
	}
	return nil
}

func eventsRecord(evs []Event) arrow.RecordBatch {
	b := array.NewRecordBuilder(memory.DefaultAllocator, eventSchema)
	defer b.Release()
	for _, e := range evs {
		b.Field(0).(*array.Int64Builder).Append(e.Seq)
		b.Field(1).(*array.TimestampBuilder).Append(arrow.Timestamp(e.Timestamp.UnixMicro()))
		b.Field(2).(*array.StringBuilder).Append(e.Pipeline)
		b.Field(3).(*array.StringBuilder).Append(e.UpdateID)
		b.Field(4).(*array.StringBuilder).Append(e.Type)
		b.Field(5).(*array.StringBuilder).Append(e.Level)
		b.Field(6).(*array.StringBuilder).Append(e.Dataset)
		b.Field(7).(*array.StringBuilder).Append(e.Message)
		if len(e.Details) > 0 {
			b.Field(8).(*array.StringBuilder).Append(string(e.Details))
		} else {
			b.Field(8).AppendNull()
		}
	}
	return b.NewRecordBatch()
}

// read returns events with Seq > after, oldest first, at most limit
// (default 1000), waiting up to wait for one if there are none.
func (l *eventLog) read(ctx context.Context, after int64, limit int, wait time.Duration) ([]Event, error) {
	if limit <= 0 {
		limit = 1000
	}
	deadline := time.Now().Add(wait)
	for {
		l.mu.Lock()
		changed := l.changed
		var out []Event
		older := len(l.recent) == 0 || l.recent[0].Seq > after+1
		if !older {
			for _, e := range l.recent {
				if e.Seq > after && len(out) < limit {
					out = append(out, e)
				}
			}
		}
		t := l.t
		l.mu.Unlock()
		if older && t != nil {
			// Older than memory holds: read the table.
			var err error
			if out, err = readEvents(ctx, l.store, l.pipeline, after, limit); err != nil {
				return nil, err
			}
			if len(out) < limit {
				l.mu.Lock()
				for _, e := range l.recent {
					if e.Seq > after && len(out) < limit && (len(out) == 0 || e.Seq > out[len(out)-1].Seq) {
						out = append(out, e)
					}
				}
				l.mu.Unlock()
			}
		}
		if len(out) > 0 || wait <= 0 {
			return out, nil
		}
		left := time.Until(deadline)
		if left <= 0 {
			return out, nil
		}
		timer := time.NewTimer(left)
		select {
		case <-changed:
		case <-timer.C:
		case <-ctx.Done():
			timer.Stop()
			return nil, ctx.Err()
		}
		timer.Stop()
	}
}

func readEvents(ctx context.Context, store *table.Store, pipeline ident.Name, after int64, limit int) ([]Event, error) {
	t, err := store.Load(ctx, EventLogTable(pipeline))
	if err != nil {
		return nil, err
	}
	rdr, err := t.Scan(ctx, table.ScanOptions{})
	if err != nil {
		return nil, err
	}
	defer rdr.Release()
	var out []Event
	for rdr.Next() {
		b := rdr.RecordBatch()
		seq := b.Column(0).(*array.Int64)
		for i := 0; i < int(b.NumRows()); i++ {
			if seq.Value(i) <= after {
				continue
			}
			e := Event{
				Seq:       seq.Value(i),
				Timestamp: b.Column(1).(*array.Timestamp).Value(i).ToTime(arrow.Microsecond).UTC(),
				Pipeline:  b.Column(2).(*array.String).Value(i),
				UpdateID:  b.Column(3).(*array.String).Value(i),
				Type:      b.Column(4).(*array.String).Value(i),
				Level:     b.Column(5).(*array.String).Value(i),
				Dataset:   b.Column(6).(*array.String).Value(i),
				Message:   b.Column(7).(*array.String).Value(i),
			}
			if d := b.Column(8).(*array.String); d.IsValid(i) {
				e.Details = json.RawMessage(d.Value(i))
			}
			out = append(out, e)
		}
	}
	if err := rdr.Err(); err != nil {
		return nil, err
	}
	sortEvents(out)
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

func sortEvents(evs []Event) {
	for i := 1; i < len(evs); i++ {
		for j := i; j > 0 && evs[j].Seq < evs[j-1].Seq; j-- {
			evs[j], evs[j-1] = evs[j-1], evs[j]
		}
	}
}
