package ingest

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/sluice-dev/sluice/internal/source/kafka"
	"github.com/sluice-dev/sluice/internal/table"
)

// sealed is a micro-batch ready to commit: its rows, its refused records and
// the offsets after it. Whoever holds it releases it.
type sealed struct {
	good, bad             arrow.RecordBatch // nil when empty
	next                  kafka.Offsets
	nGood, nBad, nSkipped int
	lag                   int64
}

func (s *sealed) release() {
	if s.good != nil {
		s.good.Release()
	}
	if s.bad != nil {
		s.bad.Release()
	}
}

// seal takes the batch's rows and offsets out of b (which goes on with
// empty builders) and computes the lag against the high watermarks.
func (b *batch) seal(hwm kafka.Offsets) *sealed {
	s := &sealed{next: b.next.Clone(), nGood: b.nGood, nBad: b.nBad, nSkipped: b.skipped}
	s.good, s.bad = b.take()
	for t, ps := range hwm {
		for p, h := range ps {
			if n, ok := s.next.Get(t, p); ok && h > n {
				s.lag += h - n
			}
		}
	}
	return s
}

// committer commits sealed batches in the order it receives them. It owns
// the table handles and the committed offsets of one session. After an
// error it commits nothing more (releasing what it receives) and reports
// the error through err once done is closed.
type committer struct {
	r                     *runner
	tbl, qtbl             *table.Table
	committed, qcommitted kafka.Offsets
	in                    chan *sealed
	done                  chan struct{}
	err                   error // valid after done is closed
	commits               int
	maintaining           sync.WaitGroup // the maintenance pass in flight, if any
	maintBusy             atomic.Bool
	maintCtx              context.Context // cancelled when the runner stops, unlike run's
}

// send hands s to the committer, or returns its error if it has stopped.
func (c *committer) send(s *sealed) error {
	select {
	case c.in <- s:
		return nil
	case <-c.done:
		s.release()
		return c.err
	}
}

func (c *committer) run(ctx context.Context) {
	defer close(c.done)
	defer c.maintaining.Wait()
	for s := range c.in {
		if c.err == nil {
			c.err = c.commit(ctx, s)
		}
		s.release()
		if c.err != nil {
			// Stop taking batches: send sees done closed. Drain what
			// was already handed over.
			for s := range drain(c.in) {
				s.release()
			}
			return
		}
		// Maintenance runs beside the commits, on handles of its own
		// (table.Store.Optimize recommits a compaction over appends that
		// won the race), so a compaction never stalls ingestion; the
		// next commit of this handle after it reloads and retries as for
		// any concurrent writer.
		if c.commits++; c.r.m.opts.MaintainEvery > 0 && c.commits%c.r.m.opts.MaintainEvery == 0 && c.maintBusy.CompareAndSwap(false, true) {
			c.maintaining.Add(1)
			go func() {
				defer c.maintaining.Done()
				defer c.maintBusy.Store(false)
				c.r.maintain(c.maintCtx, c.tbl.Name(), c.qtbl.Name())
			}()
		}
	}
}

// drain yields what is immediately available on ch without blocking.
func drain(ch chan *sealed) func(func(*sealed) bool) {
	return func(yield func(*sealed) bool) {
		for {
			select {
			case s, ok := <-ch:
				if !ok || !yield(s) {
					return
				}
			default:
				return
			}
		}
	}
}

// commit writes s: refused records to the quarantine table first, then the
// rows to the ingestion table, each in one commit that records the offsets
// after the batch. On a conflict (another commit landed first, e.g. an
// optimize), the commit is retried only if the table still holds the
// offsets this batch started from; otherwise the session is fenced.
func (c *committer) commit(ctx context.Context, s *sealed) error {
	r := c.r
	began := time.Now()
	props := map[string]string{PropOffsets: s.next.Encode(), PropStream: r.spec.Name}
	if s.bad != nil {
		// The quarantine's offsets only ever move forward.
		qnext := s.next.Clone()
		for t, ps := range c.qcommitted {
			for p, o := range ps {
				if n, ok := qnext.Get(t, p); !ok || n < o {
					qnext.Set(t, p, o)
				}
			}
		}
		qprops := map[string]string{PropOffsets: qnext.Encode(), PropStream: r.spec.Name}
		if err := appendFenced(ctx, c.qtbl, s.bad, qprops, c.qcommitted); err != nil {
			return fmt.Errorf("committing %d quarantined records to %s: %w", s.nBad, c.qtbl.Name(), err)
		}
		c.qcommitted = qnext
	}
	if s.good != nil {
		if err := appendFenced(ctx, c.tbl, s.good, props, c.committed); err != nil {
			return fmt.Errorf("committing %d rows to %s: %w", s.nGood, c.tbl.Name(), err)
		}
		c.committed = s.next
	}
	r.metrics.records.Add(float64(s.nGood))
	r.metrics.quarantined.Add(float64(s.nBad))
	r.metrics.commits.Inc()
	r.metrics.commitSeconds.Observe(time.Since(began).Seconds())
	r.metrics.lag.Set(float64(s.lag))
	r.setStatus(func(st *Status) {
		st.State = StateRunning
		st.RowsIngested += int64(s.nGood)
		st.RowsQuarantined += int64(s.nBad)
		st.Offsets = c.committed.Clone()
		st.Lag = s.lag
		st.LastCommitAt = time.Now().UTC()
		st.SnapshotID = c.tbl.SnapshotID()
	})
	r.logger.Debug("committed batch", "rows", s.nGood, "quarantined", s.nBad, "skipped", s.nSkipped, "took", time.Since(began))
	return nil
}
