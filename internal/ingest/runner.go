package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-dev/sluice/internal/ident"
	"github.com/sluice-dev/sluice/internal/schema"
	"github.com/sluice-dev/sluice/internal/source/kafka"
	"github.com/sluice-dev/sluice/internal/stream"
	"github.com/sluice-dev/sluice/internal/table"
)

// Snapshot summary properties that ingestion writes with every commit.
const (
	// PropOffsets holds the next offsets to read (kafka.Offsets JSON) after
	// the data of this snapshot: the only source of truth for resuming.
	PropOffsets = "sluice.offsets"
	// PropStream names the stream that wrote the snapshot.
	PropStream = "sluice.stream"
)

// errFenced means another writer committed offsets this runner did not
// expect: the session restarts from what the table says.
var errFenced = errors.New("ingestion table was advanced by another writer")

// runner ingests one stream. run owns the Kafka client and the table
// handles; nothing else touches them.
type runner struct {
	spec    *stream.Spec
	start   kafka.Offsets // fixed when the stream was created
	key     *schema.Schema
	value   *schema.Schema
	m       *Manager
	logger  *slog.Logger
	status  *statusBox
	metrics *streamMetrics
}

// run ingests until ctx is cancelled, restarting the session with backoff
// after any error, so a stream whose broker is gone recovers by itself.
func (r *runner) run(ctx context.Context) {
	backoff := r.m.opts.MinBackoff
	for {
		began := time.Now()
		err := r.session(ctx)
		if ctx.Err() != nil {
			r.setStatus(func(s *Status) { s.State = StateStopped })
			return
		}
		if err == nil {
			err = errors.New("ingestion session ended without error")
		}
		if time.Since(began) > 30*time.Second {
			backoff = r.m.opts.MinBackoff
		}
		r.logger.Warn("ingestion failed; retrying", "err", err, "retry_in", backoff)
		r.setStatus(func(s *Status) {
			s.State, s.LastError, s.LastErrorAt = StateFailing, err.Error(), time.Now().UTC()
		})
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			r.setStatus(func(s *Status) { s.State = StateStopped })
			return
		case <-t.C:
		}
		backoff = min(2*backoff, r.m.opts.MaxBackoff)
	}
}

func (r *runner) setStatus(f func(*Status)) {
	s := r.status.update(f)
	r.m.saveStatus(r.spec.Name, s)
}

// session is one life of the consumer: it reads the committed offsets from
// the tables, consumes from exactly there, and commits micro-batches until
// ctx is cancelled (nil) or something fails (the error).
func (r *runner) session(ctx context.Context) error {
	tbl, err := r.m.store.Load(ctx, r.spec.DestinationName())
	if err != nil {
		return fmt.Errorf("loading ingestion table: %w", err)
	}
	qtbl, err := r.m.store.Load(ctx, r.spec.QuarantineName())
	if err != nil {
		return fmt.Errorf("loading quarantine table: %w", err)
	}
	committed, err := kafka.DecodeOffsets(tbl.SnapshotProperties()[PropOffsets])
	if err != nil {
		return err
	}
	if committed == nil {
		committed = r.start.Clone()
	}
	qcommitted, err := kafka.DecodeOffsets(qtbl.SnapshotProperties()[PropOffsets])
	if err != nil {
		return err
	}

	conn, err := r.m.connection(r.spec)
	if err != nil {
		return err
	}
	opts, err := kafka.ClientOpts(ctx, conn, r.m.secret)
	if err != nil {
		return err
	}
	assign := map[string]map[int32]kgo.Offset{}
	for t, ps := range committed {
		assign[t] = map[int32]kgo.Offset{}
		for p, o := range ps {
			assign[t][p] = kgo.NewOffset().At(o)
		}
	}
	opts = append(opts, kgo.ConsumePartitions(assign))
	opts = append(opts, FetchOpts(r.m.opts.FetchMaxWait)...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return fmt.Errorf("creating Kafka client: %w", err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)

	rows, _ := tbl.Count(ctx)
	qrows, _ := qtbl.Count(ctx)
	r.setStatus(func(s *Status) {
		s.State, s.Offsets, s.RowsIngested, s.RowsQuarantined, s.SnapshotID = StateRunning, committed.Clone(), rows, qrows, tbl.SnapshotID()
	})
	r.logger.Info("ingestion started", "offsets", committed.String())

	b := newBatch(memory.DefaultAllocator, r.key, r.value, committed, qcommitted)
	defer b.release()
	// The committer writes and commits sealed batches in order, in its own
	// goroutine, while this one reads and decodes the next batch: on two
	// cores, Parquet encoding overlaps JSON decoding. It owns the table
	// handles from here on; at most two batches are sealed at a time.
	c := &committer{r: r, tbl: tbl, qtbl: qtbl, committed: committed, qcommitted: qcommitted,
		in: make(chan *sealed), done: make(chan struct{}), maintCtx: ctx}
	go c.run(context.WithoutCancel(ctx))
	finish := sync.OnceValue(func() error { close(c.in); <-c.done; return c.err })
	defer finish()
	hwm := kafka.Offsets{}
	interval := r.spec.Ingestion.CommitInterval.D()
	maxRecords := r.spec.Ingestion.CommitMaxRecords
	nextDiscovery := time.Now().Add(r.m.opts.DiscoveryInterval)
	var fetchErr error
	rec := &Record{}

	for {
		select {
		case <-c.done: // the committer failed
			return c.err
		default:
		}
		now := time.Now()
		wait := nextDiscovery.Sub(now)
		if b.len() > 0 {
			wait = min(wait, b.first.Add(interval).Sub(now))
		}
		if wait > 0 {
			pctx, cancel := context.WithTimeout(ctx, wait)
			fetches := cl.PollRecords(pctx, maxRecords-b.len())
			cancel()
			if ctx.Err() != nil {
				// Soft stop: commit what was read, then leave.
				if b.len() > 0 {
					if err := c.send(b.seal(hwm)); err != nil {
						return err
					}
				}
				return finish()
			}
			fetchErr = nil
			fetches.EachError(func(t string, p int32, err error) {
				if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
					fetchErr = fmt.Errorf("fetching %s/%d: %w", t, p, err)
				}
			})
			if fetchErr != nil {
				r.metrics.fetchErrors.Inc()
				r.setStatus(func(s *Status) {
					s.State, s.LastError, s.LastErrorAt = StateFailing, fetchErr.Error(), time.Now().UTC()
				})
			}
			now = time.Now()
			fetches.EachPartition(func(p kgo.FetchTopicPartition) {
				if p.HighWatermark >= 0 {
					hwm.Set(p.Topic, p.Partition, p.HighWatermark)
				}
				for _, kr := range p.Records {
					*rec = Record{Key: kr.Key, Value: kr.Value, Timestamp: kr.Timestamp, Topic: kr.Topic, Partition: kr.Partition, Offset: kr.Offset}
					b.add(rec, now)
				}
			})
			if fetchErr == nil && len(fetches) > 0 && r.status.get().State == StateFailing {
				r.setStatus(func(s *Status) { s.State = StateRunning })
			}
		}
		now = time.Now()
		if b.len() >= maxRecords || (b.len() > 0 && !now.Before(b.first.Add(interval))) {
			if err := c.send(b.seal(hwm)); err != nil {
				return err
			}
		}
		if !now.Before(nextDiscovery) {
			nextDiscovery = now.Add(r.m.opts.DiscoveryInterval)
			// Discovery is also the health probe: kgo retries dial
			// failures inside fetches without reporting them, so a broker
			// that is gone shows up here, as a failed metadata request.
			if err := r.discover(ctx, cl, adm, b.next); err != nil {
				if ctx.Err() == nil {
					r.logger.Warn("cannot reach the brokers", "err", err)
					r.setStatus(func(s *Status) {
						s.State = StateFailing
						s.LastError = fmt.Sprintf("cannot reach the brokers at %s: %v", conn.BootstrapServers, err)
						s.LastErrorAt = time.Now().UTC()
					})
				}
			} else if fetchErr == nil && r.status.get().State == StateFailing {
				r.setStatus(func(s *Status) { s.State = StateRunning })
			}
		}
	}
}

// Fetch sizes of the ingestion consumer. Fetches are the largest memory a
// runner holds: the response being read and the one being decoded. Larger
// fetches save little per record, and fresh memory is dear on a virtual
// machine (a page fault there costs microseconds), so they stay moderate.
const (
	FetchMaxBytes          = 16 << 20
	FetchMaxPartitionBytes = 4 << 20
)

// FetchOpts are the fetch options of the ingestion consumer, with the
// broker holding an empty fetch for at most maxWait.
func FetchOpts(maxWait time.Duration) []kgo.Opt {
	return []kgo.Opt{
		kgo.FetchMaxWait(maxWait),
		kgo.FetchMaxBytes(FetchMaxBytes),
		kgo.FetchMaxPartitionBytes(FetchMaxPartitionBytes),
	}
}

// maintain compacts and expires the runner's tables. It runs beside the
// committer (see committer.run) through table.Store.Optimize, which
// survives the committer's appends; a failure only postpones it to the
// next pass.
func (r *runner) maintain(ctx context.Context, tables ...ident.Name) {
	for _, name := range tables {
		began := time.Now()
		st, err := r.m.store.Optimize(ctx, name, table.AutoMaintenance)
		if err != nil {
			if ctx.Err() == nil {
				r.logger.Warn("table maintenance postponed", "table", name, "err", err)
			}
			continue
		}
		r.logger.Debug("table maintained", "table", name, "files_before", st.FilesBefore, "files_after", st.FilesAfter,
			"snapshots_expired", st.SnapshotsExpired, "orphans_removed", st.OrphansRemoved, "took", time.Since(began))
	}
}

// discover adds partitions that the subscription selects and that are not
// consumed yet (new topics, added partitions). They were created after the
// stream, so all their records are new: consumption starts at their start.
func (r *runner) discover(ctx context.Context, cl *kgo.Client, adm *kadm.Client, known kafka.Offsets) error {
	dctx, cancel := context.WithTimeout(ctx, min(10*time.Second, 2*r.m.opts.DiscoveryInterval+time.Second))
	defer cancel()
	parts, err := kafka.Resolve(dctx, adm, r.spec.Source.Kafka)
	if err != nil {
		return err
	}
	add := map[string]map[int32]kgo.Offset{}
	for t, ps := range parts {
		for _, p := range ps {
			if _, ok := known.Get(t, p); ok {
				continue
			}
			if add[t] == nil {
				add[t] = map[int32]kgo.Offset{}
			}
			add[t][p] = kgo.NewOffset().AtStart()
			known.Set(t, p, 0)
			r.logger.Info("consuming new partition", "topic", t, "partition", p)
		}
	}
	if len(add) > 0 {
		cl.AddConsumePartitions(add)
	}
	return nil
}

// appendFenced appends rec to t with props: it writes rec as a data file
// once, then commits that file, retrying the commit (not the write) on a
// conflict as long as the table still records expect as its offsets. A
// retry is a metadata commit of milliseconds, so a compaction or another
// commit landing first costs little. Each attempt also carries forward the
// sluice.* properties of the snapshot it commits on top of (such as
// [PropBackfill]) that props does not set, so the current snapshot always
// holds them.
//
// A file whose commit failed is left where it is: a failed commit may
// still have landed (the catalog took it and the reply was lost), and then
// the file is table data. If it did not land, the file is an orphan, which
// maintenance removes.
func appendFenced(ctx context.Context, t *table.Table, rec arrow.RecordBatch, props map[string]string, expect kafka.Offsets) error {
	pending, err := t.WriteBatches(ctx, []arrow.RecordBatch{rec})
	if err != nil {
		return err
	}
	for attempt := 0; ; attempt++ {
		err := t.CommitFiles(ctx, pending, withCarried(t.SnapshotProperties(), props))
		if err == nil {
			return nil
		}
		if !errors.Is(err, table.ErrConflict) || attempt >= 10 {
			return err
		}
		raw := t.SnapshotProperties()[PropOffsets]
		if raw == "" {
			continue // no ingestion has committed yet: the other commit was not a writer of ours
		}
		cur, derr := kafka.DecodeOffsets(raw)
		if derr != nil {
			return derr
		}
		if !cur.Equal(expect) {
			return fmt.Errorf("%w: table has offsets %s, batch started at %s", errFenced, cur, expect)
		}
	}
}
