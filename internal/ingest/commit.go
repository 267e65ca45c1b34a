package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/sluice-dev/sluice/internal/source/kafka"
	"github.com/sluice-dev/sluice/internal/table"
)

// sealed is a micro-batch ready to commit: its rows not sent before as
// chunks, its refused records and the offsets after it. Whoever holds it
// releases it.
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

// msg is what the runner hands the committer: rows of the batch being
// read (a chunk), or the end of that batch (a seal).
type msg struct {
	chunk arrow.RecordBatch
	seal  *sealed
}

func (m msg) release() {
	if m.chunk != nil {
		m.chunk.Release()
	}
	if m.seal != nil {
		m.seal.release()
	}
}

// queuedChunks is the capacity of committer.in: the runner can queue this
// many chunks of the next batch while the committer commits one. The
// runner cuts at most three chunks per batch (see chunkRows), so its seal
// waits: at most two batches exist at once.
const queuedChunks = 3

// chunkRows is how many rows the runner sends the committer at a time:
// a quarter of commit_max_records, and no chunk for batches smaller than
// 8192 rows. The committer writes a batch's Parquet data while the runner
// decodes the rest of it, so that sealing a batch leaves only its last
// chunk to write before the commit.
func chunkRows(maxRecords int) int { return max(maxRecords/4, 8192) }

// committer commits batches in the order it receives them: it writes each
// batch's chunks to the ingestion table as they arrive (one
// [table.Table.AppendStream]) and commits them when the seal arrives. It
// owns the table handles and the committed offsets of one session. After
// an error it commits nothing more (releasing what it receives) and
// reports the error through err once done is closed.
type committer struct {
	r                     *runner
	tbl, qtbl             *table.Table
	committed, qcommitted kafka.Offsets
	in                    chan msg
	done                  chan struct{}
	err                   error // valid after done is closed
	commits               int
	cur                   *streamedAppend // of the batch being received; nil before its first rows
}

// sendChunk hands rows of the current batch to the committer, or returns
// its error if it has stopped.
func (c *committer) sendChunk(rec arrow.RecordBatch) error {
	return c.sendMsg(msg{chunk: rec})
}

// send hands s to the committer, or returns its error if it has stopped.
func (c *committer) send(s *sealed) error { return c.sendMsg(msg{seal: s}) }

func (c *committer) sendMsg(m msg) error {
	select {
	case c.in <- m:
		return nil
	case <-c.done:
		m.release()
		return c.err
	}
}

func (c *committer) run(ctx context.Context) {
	defer close(c.done)
	defer func() {
		if c.cur != nil { // the runner left in the middle of a batch
			c.cur.abort()
			c.cur = nil
		}
	}()
	for m := range c.in {
		if c.err == nil {
			if m.chunk != nil {
				c.write(ctx, m.chunk)
			} else {
				c.err = c.commit(ctx, m.seal)
			}
		}
		m.release()
		if c.err != nil {
			// Stop taking batches: send sees done closed. Drain what
			// was already handed over.
			for m := range drain(c.in) {
				m.release()
			}
			return
		}
		if m.seal != nil {
			if c.commits++; c.r.m.opts.MaintainEvery > 0 && c.commits%c.r.m.opts.MaintainEvery == 0 {
				c.r.maintain(ctx, c.tbl, c.qtbl)
			}
		}
	}
}

// drain yields what is immediately available on ch without blocking.
func drain(ch chan msg) func(func(msg) bool) {
	return func(yield func(msg) bool) {
		for {
			select {
			case m, ok := <-ch:
				if !ok || !yield(m) {
					return
				}
			default:
				return
			}
		}
	}
}

// write starts writing rec, rows of the current batch, to the ingestion
// table, starting the batch's append with its first rows. It keeps a
// reference to rec until the batch is committed.
func (c *committer) write(ctx context.Context, rec arrow.RecordBatch) {
	if c.cur == nil {
		c.cur = c.startAppend(ctx, rec.Schema())
	}
	c.cur.add(rec)
}

// streamedAppend is one batch's [table.Table.AppendStream] to the
// ingestion table, running in its own goroutine, which owns the table
// handle until the append returns. The committer feeds it chunks and
// finally the summary properties.
type streamedAppend struct {
	feed    chan arrow.RecordBatch // closed: the batch is complete
	stop    chan struct{}          // closed: abandon the append
	result  chan error             // the append's result, once
	chunks  []arrow.RecordBatch    // every chunk fed, retained for a retry
	props   map[string]string      // set before feed is closed
	err     error                  // the result, once received early
	stopped bool                   // the append returned before the batch was complete
}

var errAbandoned = errors.New("batch abandoned")

func (c *committer) startAppend(ctx context.Context, sc *arrow.Schema) *streamedAppend {
	a := &streamedAppend{feed: make(chan arrow.RecordBatch), stop: make(chan struct{}), result: make(chan error, 1)}
	carried := c.tbl.SnapshotProperties()
	next := func() (arrow.RecordBatch, error) {
		select {
		case rec, ok := <-a.feed:
			if !ok {
				return nil, io.EOF
			}
			return rec, nil
		case <-a.stop:
			return nil, errAbandoned
		}
	}
	// Only called after feed is closed, which happens after props is set.
	props := func() map[string]string { return withCarried(carried, a.props) }
	go func() { a.result <- c.tbl.AppendStream(ctx, sc, next, props) }()
	return a
}

// add feeds rec to the append, unless the append has already returned.
func (a *streamedAppend) add(rec arrow.RecordBatch) {
	rec.Retain()
	a.chunks = append(a.chunks, rec)
	if a.stopped {
		return
	}
	select {
	case a.feed <- rec:
	case a.err = <-a.result:
		a.stopped = true
	}
}

// finish completes the append with props as its summary properties and
// returns its result. A nil error means the batch is committed.
func (a *streamedAppend) finish(props map[string]string) error {
	if a.stopped {
		if a.err == nil {
			return errors.New("ingestion append ended before its batch")
		}
		return a.err
	}
	a.props = props
	close(a.feed)
	return <-a.result
}

// abort abandons the append: nothing is committed.
func (a *streamedAppend) abort() {
	if !a.stopped {
		close(a.stop)
		<-a.result
		a.stopped = true
	}
	a.release()
}

func (a *streamedAppend) release() {
	for _, rec := range a.chunks {
		rec.Release()
	}
	a.chunks = nil
}

// commit completes the batch that s seals: it commits the refused records
// to the quarantine table first, then the batch's rows (its chunks, being
// written since the first one arrived, and s.good) to the ingestion table,
// each in one commit that records the offsets after the batch. On a conflict (another commit landed first, e.g. an
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
		if err := appendFenced(ctx, c.qtbl, []arrow.RecordBatch{s.bad}, qprops, c.qcommitted); err != nil {
			return fmt.Errorf("committing %d quarantined records to %s: %w", s.nBad, c.qtbl.Name(), err)
		}
		c.qcommitted = qnext
	}
	if s.good != nil {
		c.write(ctx, s.good)
	}
	if a := c.cur; a != nil {
		c.cur = nil
		// The first attempt completes the streamed append; a retry after
		// a conflict appends the batch's chunks again.
		first := true
		err := retryFenced(c.tbl, c.committed, func() error {
			if first {
				first = false
				return a.finish(props)
			}
			return c.tbl.Append(ctx, a.chunks, withCarried(c.tbl.SnapshotProperties(), props))
		})
		a.release()
		if err != nil {
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
