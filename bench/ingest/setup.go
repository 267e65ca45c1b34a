package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-dev/sluice/internal/broker"
	"github.com/sluice-dev/sluice/internal/catalog"
	"github.com/sluice-dev/sluice/internal/demo"
	"github.com/sluice-dev/sluice/internal/ingest"
	"github.com/sluice-dev/sluice/internal/source/kafka"
	"github.com/sluice-dev/sluice/internal/stream"
	"github.com/sluice-dev/sluice/internal/table"
)

// env is the parent's side: the broker holding the records and one
// prepared stream directory per run.
type env struct {
	broker         *broker.Broker
	dirs           []string
	avgKey         float64
	avgValue       float64
	produceSeconds float64
	commitInterval time.Duration
}

func (e *env) close() { e.broker.Close() }

// setup starts the broker, creates the topic, prepares one stream per run
// on the still empty topic (so each starts at offset 0 of every partition,
// as Manager.Create fixes the end offsets), and then produces the records.
func setup(ctx context.Context, c config, root string) (*env, error) {
	b, err := broker.Start(broker.Options{Addr: "127.0.0.1:0"}, nil)
	if err != nil {
		return nil, err
	}
	e := &env{broker: b}
	ok := false
	defer func() {
		if !ok {
			b.Close()
		}
	}()
	c.addr = b.Addr()

	admin, err := kgo.NewClient(kgo.SeedBrokers(c.addr))
	if err != nil {
		return nil, err
	}
	defer admin.Close()
	if err := broker.CreateTopic(ctx, admin, demo.Topic, int32(c.partitions)); err != nil {
		return nil, err
	}

	spec, err := stream.Parse(demo.StreamSpec(c.addr))
	if err != nil {
		return nil, err
	}
	e.commitInterval = spec.Ingestion.CommitInterval.D()
	for i := range c.runs {
		dir := streamDir(root, i)
		if err := createStream(ctx, c, dir); err != nil {
			return nil, fmt.Errorf("preparing the stream of run %d: %w", i+1, err)
		}
		e.dirs = append(e.dirs, dir)
	}

	began := time.Now()
	if e.avgKey, e.avgValue, err = produce(ctx, c); err != nil {
		return nil, err
	}
	e.produceSeconds = time.Since(began).Seconds()

	ends, err := kadm.NewClient(admin).ListEndOffsets(ctx, demo.Topic)
	if err != nil {
		return nil, err
	}
	var total int64
	ends.Each(func(o kadm.ListedOffset) { total += o.Offset })
	if total != c.n {
		return nil, fmt.Errorf("topic holds %d records after producing, want %d", total, c.n)
	}
	ok = true
	return e, nil
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

// createStream creates the demo stream in dir through the product path
// (Manager.Create) and stops it again before any record exists.
func createStream(ctx context.Context, c config, dir string) error {
	cat, store, closeStore, err := openStore(ctx, dir)
	if err != nil {
		return err
	}
	defer closeStore()
	spec, err := stream.Parse(demo.StreamSpec(c.addr))
	if err != nil {
		return err
	}
	spec.Ingestion.CommitMaxRecords = c.commitMaxRecords
	m := ingest.New(cat, store, nil, nil, ingest.Options{})
	mctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if err := m.Start(mctx); err != nil {
		return err
	}
	s, err := m.Create(ctx, spec, "bench")
	m.Close()
	if err != nil {
		return err
	}
	start, err := kafka.DecodeOffsets(string(s.StartOffsets))
	if err != nil {
		return err
	}
	for p := range int32(c.partitions) {
		if o, ok := start.Get(demo.Topic, p); !ok || o != 0 {
			return fmt.Errorf("stream starts at %s, want offset 0 of every partition", start)
		}
	}
	return nil
}

// produce writes c.n demo orders, batched and uncompressed (compression
// would add the same decompression cost to both measurements and flatter
// the ratio), and returns the average key and value sizes.
func produce(ctx context.Context, c config) (avgKey, avgValue float64, err error) {
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(c.addr),
		kgo.DefaultProduceTopic(demo.Topic),
		kgo.ProducerBatchCompression(kgo.NoCompression()),
		kgo.ProducerBatchMaxBytes(1<<20),
		kgo.ProducerLinger(5*time.Millisecond),
		kgo.MaxBufferedRecords(1<<18),
	)
	if err != nil {
		return 0, 0, err
	}
	defer cl.Close()
	var failed atomic.Pointer[error]
	done := func(_ *kgo.Record, err error) {
		if err != nil {
			failed.CompareAndSwap(nil, &err)
		}
	}
	g := demo.NewGenerator(1)
	var keyBytes, valueBytes int64
	for range c.n {
		k, v := g.Next(time.Now(), nil, nil)
		keyBytes += int64(len(k))
		valueBytes += int64(len(v))
		cl.Produce(ctx, &kgo.Record{Key: k, Value: v}, done)
	}
	if err := cl.Flush(ctx); err != nil {
		return 0, 0, err
	}
	if err := failed.Load(); err != nil {
		return 0, 0, fmt.Errorf("producing: %w", *err)
	}
	return float64(keyBytes) / float64(c.n), float64(valueBytes) / float64(c.n), nil
}
