package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-dev/sluice/internal/broker"
	"github.com/sluice-dev/sluice/internal/catalog"
	"github.com/sluice-dev/sluice/internal/ident"
	"github.com/sluice-dev/sluice/internal/ingest"
	"github.com/sluice-dev/sluice/internal/pipeline"
	"github.com/sluice-dev/sluice/internal/source/kafka"
	"github.com/sluice-dev/sluice/internal/stream"
	"github.com/sluice-dev/sluice/internal/table"
)

// The broker path's names.
const (
	topic          = "nexmark-bids"
	streamName     = "main.nexmark.bids_stream"
	ingestionTable = "main.nexmark.bids_ingestion"
	pipelineName   = "main.nexmark.bench"
)

// streamSpec is the stream of bids: no key schema (records have no key),
// the bid as payload. One partition keeps the bids in the generator's
// order, so that none is late and the output is exactly the oracle's.
func streamSpec(addr string) []byte {
	return fmt.Appendf(nil, `name: %s
source:
  kafka:
    subscribe: %s
connection:
  bootstrap_servers: %s
schema:
  payload:
    json_schema: %s
ingestion:
  destination: %s
  commit_interval: 1s
`, streamName, topic, addr, strconv.Quote(bidJSONSchema), ingestionTable)
}

// runBroker measures the end-to-end path: it starts the broker, prepares
// one stream per run on the empty topic (so each starts at offset 0),
// produces the bids as JSON (not measured) and runs each measurement in a
// child.
func runBroker(ctx context.Context, c config, g *generator, cpuprofile string) (summary, error) {
	s := summary{name: "broker", bench: "nexmark_broker_events_per_cpu_s"}
	root, err := os.MkdirTemp("", "sluice-bench-nexmark-")
	if err != nil {
		return s, err
	}
	defer os.RemoveAll(root)
	b, err := broker.Start(broker.Options{Addr: "127.0.0.1:0"}, nil)
	if err != nil {
		return s, err
	}
	defer b.Close()
	c.addr = b.Addr()
	admin, err := kgo.NewClient(kgo.SeedBrokers(c.addr))
	if err != nil {
		return s, err
	}
	defer admin.Close()
	if err := broker.CreateTopic(ctx, admin, topic, 1); err != nil {
		return s, err
	}
	var dirs []string
	for i := range c.runs {
		dir := filepath.Join(root, fmt.Sprintf("run%d", i+1))
		if err := createStream(ctx, c.addr, dir); err != nil {
			return s, fmt.Errorf("preparing the stream of run %d: %w", i+1, err)
		}
		dirs = append(dirs, dir)
	}
	began := time.Now()
	avg, err := produce(ctx, c.addr, g, c.n)
	if err != nil {
		return s, err
	}
	ends, err := kadm.NewClient(admin).ListEndOffsets(ctx, topic)
	if err != nil {
		return s, err
	}
	var total int64
	ends.Each(func(o kadm.ListedOffset) { total += o.Offset })
	if total != c.n {
		return s, fmt.Errorf("topic holds %d records after producing, want %d", total, c.n)
	}
	text, err := brokerSQL(c.brokerQuery)
	if err != nil {
		return s, err
	}
	want := expectedRows(g, c.brokerQuery, c.n)
	fmt.Printf("\nquery %s end to end from the broker (embedded kfake in memory in the parent; 1 partition; produced %d JSON records of %.0f B on average in %.1fs, not measured):\n%s\n",
		c.brokerQuery, c.n, avg, time.Since(began).Seconds(), indent(text))
	fmt.Println("measured in the child: ingest.Manager.Start → pipeline.Runner rounds have committed every record's output (consume + JSON decode + Parquet + Iceberg commits of the ingestion table, then read + query + commit of the pipeline's table); the broker's CPU is not counted")

	for i := range c.runs {
		prof := ""
		if i == 0 {
			prof = cpuprofile
		}
		runtime.GC()
		r, err := spawn(ctx, c, []string{"-child", "broker", "-query", c.brokerQuery, "-addr", c.addr, "-dir", dirs[i],
			"-cpuprofile", prof, "-expect", strconv.FormatInt(want, 10)})
		if err != nil {
			return s, err
		}
		fmt.Printf("run %d: %s\n", i+1, describeRun(r))
		s.results = append(s.results, r)
	}
	return s, nil
}

// openStore opens the catalog and table store of a stream directory.
func openStore(ctx context.Context, dir string) (*catalog.Catalog, *table.Store, func(), error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, nil, nil, err
	}
	db, err := table.OpenSQLite(filepath.Join(dir, "catalog.db"))
	if err != nil {
		return nil, nil, nil, err
	}
	cat, err := catalog.Open(ctx, catalog.Options{DB: db})
	if err != nil {
		db.Close()
		return nil, nil, nil, err
	}
	store, err := table.Open(ctx, table.Options{DB: db, Warehouse: filepath.Join(dir, "warehouse")}, nil)
	if err != nil {
		db.Close()
		return nil, nil, nil, err
	}
	return cat, store, func() { store.Close(); db.Close() }, nil
}

// createStream creates the bids stream in dir through the product path
// (Manager.Create) and stops it again before any record exists.
func createStream(ctx context.Context, addr, dir string) error {
	cat, store, closeStore, err := openStore(ctx, dir)
	if err != nil {
		return err
	}
	defer closeStore()
	spec, err := stream.Parse(streamSpec(addr))
	if err != nil {
		return err
	}
	m := ingest.New(cat, store, nil, nil, ingest.Options{})
	mctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if err := m.Start(mctx); err != nil {
		return err
	}
	st, err := m.Create(ctx, spec, "bench")
	m.Close()
	if err != nil {
		return err
	}
	start, err := kafka.DecodeOffsets(string(st.StartOffsets))
	if err != nil {
		return err
	}
	if o, ok := start.Get(topic, 0); !ok || o != 0 {
		return fmt.Errorf("stream starts at %s, want offset 0", start)
	}
	return nil
}

// produce writes events [0, n) as JSON records, uncompressed, and returns
// the average record size.
func produce(ctx context.Context, addr string, g *generator, n int64) (float64, error) {
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(addr),
		kgo.DefaultProduceTopic(topic),
		kgo.ProducerBatchCompression(kgo.NoCompression()),
		kgo.ProducerBatchMaxBytes(1<<20),
		kgo.ProducerLinger(5*time.Millisecond),
		kgo.MaxBufferedRecords(1<<18),
	)
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	var failed atomic.Pointer[error]
	done := func(_ *kgo.Record, err error) {
		if err != nil {
			failed.CompareAndSwap(nil, &err)
		}
	}
	var bytes int64
	for e := range n {
		v := appendJSON(nil, g.event(e))
		bytes += int64(len(v))
		cl.Produce(ctx, &kgo.Record{Value: v}, done)
	}
	if err := cl.Flush(ctx); err != nil {
		return 0, err
	}
	if err := failed.Load(); err != nil {
		return 0, fmt.Errorf("producing: %w", *err)
	}
	return float64(bytes) / float64(n), nil
}

// idlePoll is how long the broker child waits after a round that found
// nothing to read: the continuous trigger's default poll interval
// (pipeline.ManagerOptions.PollInterval). Each round loads the source and
// output tables' metadata; polling every 10 ms cost 7% of the CPU.
const idlePoll = 200 * time.Millisecond

// brokerChild resumes the stream prepared in c.dir with a fresh Manager and
// runs the pipeline over its ingestion table, round after round, until the
// pipeline has committed the output of all c.n records. Rounds run back to
// back while there is input, as with `--trigger continuous`.
func brokerChild(ctx context.Context, c config) (result, error) {
	cat, store, closeStore, err := openStore(ctx, c.dir)
	if err != nil {
		return result{}, err
	}
	defer closeStore()
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	m := ingest.New(cat, store, logger, nil, ingest.Options{})

	text, err := brokerSQL(c.query)
	if err != nil {
		return result{}, err
	}
	name, err := ident.Parse(pipelineName)
	if err != nil {
		return result{}, err
	}
	lookup := func(ctx context.Context, n ident.Name) (*arrow.Schema, error) {
		t, err := store.Load(ctx, n)
		if errors.Is(err, table.ErrNotFound) {
			return nil, fmt.Errorf("%w: %s", pipeline.ErrUnknownTable, n)
		}
		if err != nil {
			return nil, err
		}
		return t.ArrowSchema(), nil
	}
	graph, err := pipeline.Compile(ctx, text, pipeline.CompileOptions{Catalog: name.Catalog, Schema: name.Schema, Lookup: lookup})
	if err != nil {
		return result{}, fmt.Errorf("compiling the pipeline: %w", err)
	}
	runner := pipeline.NewRunner(name, graph, store, pipeline.RunOptions{}, nil)
	defer runner.Close()

	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	var res result
	meas, err := startMeasure(c.cpuprofile)
	if err != nil {
		return result{}, err
	}
	if err := m.Start(runCtx); err != nil {
		return result{}, err
	}
	for res.Events < c.n {
		rr, err := runner.Round(ctx, nil)
		if err != nil {
			return result{}, fmt.Errorf("pipeline round after %d of %d events: %w", res.Events, c.n, err)
		}
		res.Events += rr.Rows
		res.Batches += rr.Batches
		if rr.Rows == 0 {
			select {
			case <-ctx.Done():
				st, _ := m.Status(context.Background(), streamName)
				return result{}, fmt.Errorf("the pipeline read %d of %d events (stream: %d rows ingested, state %s, last error %q): %w",
					res.Events, c.n, st.RowsIngested, st.State, st.LastError, ctx.Err())
			case <-time.After(idlePoll):
			}
		}
	}
	if err := meas.stop(&res); err != nil {
		return result{}, err
	}
	stop()
	m.Close()
	if res.Events != c.n {
		return result{}, fmt.Errorf("the pipeline read %d events, want %d", res.Events, c.n)
	}
	out, err := store.Load(ctx, ident.Name{Catalog: name.Catalog, Schema: name.Schema, Object: "q_" + c.query})
	if err != nil {
		return result{}, err
	}
	if res.OutputRows, err = out.Count(ctx); err != nil {
		return result{}, err
	}
	return res, nil
}
