// Package node assembles one running sluice instance: the data directory,
// the metadata database and catalog, the Iceberg table store, the embedded
// Kafka-protocol broker (unless an external Kafka is used), the ingestion
// manager, the HTTP API and, with Demo, the demo stream and its generator.
//
// Data directory layout (see docs/format.md):
//
//	DATA/catalog.db    SQLite: sluice's catalog and the Iceberg SQL catalog
//	DATA/secret.key    the key that seals secrets (mode 0600)
//	DATA/warehouse/    Iceberg tables: CATALOG/SCHEMA/TABLE/{data,metadata}
//	DATA/broker/       the embedded broker's topics and records
package node

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-dev/sluice/internal/broker"
	"github.com/sluice-dev/sluice/internal/catalog"
	"github.com/sluice-dev/sluice/internal/demo"
	"github.com/sluice-dev/sluice/internal/feature"
	"github.com/sluice-dev/sluice/internal/feature/window"
	"github.com/sluice-dev/sluice/internal/ident"
	"github.com/sluice-dev/sluice/internal/ingest"
	"github.com/sluice-dev/sluice/internal/online"
	"github.com/sluice-dev/sluice/internal/pipeline"
	"github.com/sluice-dev/sluice/internal/publish"
	"github.com/sluice-dev/sluice/internal/server"
	"github.com/sluice-dev/sluice/internal/stream"
	"github.com/sluice-dev/sluice/internal/table"
)

// Options configures a node. EnsureDefaults documents every default.
type Options struct {
	// DataDir holds all state. Default "./sluice-data".
	DataDir string
	// BrokerAddr is where the embedded broker listens, or, with NoBroker,
	// the external Kafka's bootstrap address. Default "127.0.0.1:9092".
	BrokerAddr string
	// NoBroker uses an external Kafka at BrokerAddr instead of the embedded one.
	NoBroker bool
	// HTTPAddr is where the REST API listens. Default "127.0.0.1:8080".
	HTTPAddr string
	// Demo creates the demo stream (if missing) and produces orders to it.
	Demo bool
	// DemoRate is the demo's events per second. Default 20.
	DemoRate float64
	// Ingest configures the ingestion manager.
	Ingest ingest.Options
	// Pipelines configures the pipeline manager (Store and Catalog are
	// the node's).
	Pipelines pipeline.ManagerOptions
	// Online is the online feature store: "" for the embedded store in
	// DataDir/online, or a redis:// URL.
	Online string
}

// EnsureDefaults fills in defaults.
func (o *Options) EnsureDefaults() {
	if o.DataDir == "" {
		o.DataDir = "sluice-data"
	}
	if o.BrokerAddr == "" {
		o.BrokerAddr = "127.0.0.1:9092"
	}
	if o.HTTPAddr == "" {
		o.HTTPAddr = "127.0.0.1:8080"
	}
	if o.DemoRate <= 0 {
		o.DemoRate = 20
	}
}

// Node is a started instance. Close stops it.
type Node struct {
	opts    Options
	logger  *slog.Logger
	db      *sql.DB
	Catalog *catalog.Catalog
	Tables  *table.Store
	Streams *ingest.Manager
	// Pipelines runs pipelines; those with a continuous or interval
	// trigger resume when the node starts.
	Pipelines *pipeline.Manager
	// Online is the online feature store; Publisher syncs feature tables
	// to it.
	Online    online.Store
	Publisher *publish.Publisher
	Broker    *broker.Broker // nil with NoBroker
	kafka     *kgo.Client
	httpSrv   *http.Server
	httpLn    net.Listener
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	closeMu   sync.Once
}

// Start brings a node up. ctx bounds only the start; the node runs until
// Close.
func Start(ctx context.Context, opts Options, logger *slog.Logger) (_ *Node, err error) {
	opts.EnsureDefaults()
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	n := &Node{opts: opts, logger: logger}
	defer func() {
		if err != nil {
			n.Close()
		}
	}()
	if err := os.MkdirAll(opts.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("creating data directory: %w", err)
	}
	dataDir, _ := filepath.Abs(opts.DataDir)

	if !opts.NoBroker {
		n.Broker, err = broker.Start(broker.Options{Addr: opts.BrokerAddr, DataDir: filepath.Join(dataDir, "broker")}, logger)
		if err != nil {
			return nil, err
		}
		logger.Info("embedded Kafka broker started", "addr", n.Broker.Addr(), "data", filepath.Join(dataDir, "broker"))
	}
	n.db, err = table.OpenSQLite(filepath.Join(dataDir, "catalog.db"))
	if err != nil {
		return nil, err
	}
	key, err := catalog.LoadOrCreateKey(filepath.Join(dataDir, "secret.key"))
	if err != nil {
		return nil, err
	}
	if n.Catalog, err = catalog.Open(ctx, catalog.Options{DB: n.db, SecretKey: key}); err != nil {
		return nil, err
	}
	if n.Tables, err = table.Open(ctx, table.Options{DB: n.db, Warehouse: filepath.Join(dataDir, "warehouse")}, logger); err != nil {
		return nil, err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if n.Broker != nil {
		opts.Ingest.EmbeddedBroker = n.Broker.Addr()
	}
	n.Streams = ingest.New(n.Catalog, n.Tables, logger, reg, opts.Ingest)
	if n.kafka, err = kgo.NewClient(kgo.SeedBrokers(n.BrokerAddr()), kgo.ClientID("sluice-admin"),
		kgo.AllowAutoTopicCreation(), kgo.ProducerLinger(20*time.Millisecond)); err != nil {
		return nil, err
	}

	runCtx, cancel := context.WithCancel(context.Background())
	n.cancel = cancel
	if err := n.Streams.Start(runCtx); err != nil {
		return nil, err
	}

	if opts.Online == "" {
		n.Online, err = online.OpenEmbedded(filepath.Join(dataDir, "online"), logger, nil)
	} else {
		n.Online, err = online.OpenRedis(ctx, logger, online.RedisOptions{URL: opts.Online})
	}
	if err != nil {
		return nil, fmt.Errorf("opening the online store (--online): %w", err)
	}
	n.Publisher = publish.New(n.Tables, n.Online, logger)

	po := opts.Pipelines
	po.Store, po.Catalog = n.Tables, n.Catalog
	if po.Publisher == nil {
		po.Publisher = n.Publisher
	}
	n.Pipelines = pipeline.NewManager(po, logger)
	if err := n.Pipelines.Resume(ctx); err != nil {
		return nil, fmt.Errorf("resuming pipelines: %w", err)
	}

	api := server.New(server.Deps{Catalog: n.Catalog, Tables: n.Tables, Streams: n.Streams, Pipelines: n.Pipelines,
		Online: n.Online, Publisher: n.Publisher, Features: feature.New(n.Tables, n.Catalog, logger, feature.Options{}), Gatherer: reg, Kafka: n.kafka, Logger: logger})
	n.httpLn, err = net.Listen("tcp", opts.HTTPAddr)
	if err != nil {
		return nil, fmt.Errorf("listening for the REST API on %s (use --http to pick another address): %w", opts.HTTPAddr, err)
	}
	n.httpSrv = &http.Server{Handler: api.Handler(), ReadHeaderTimeout: 10 * time.Second}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		if err := n.httpSrv.Serve(n.httpLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("REST API stopped", "err", err)
		}
	}()
	logger.Info("REST API listening", "url", n.URL())
	logger.Info("data directory", "path", dataDir)

	if opts.Demo {
		if err := n.startDemo(ctx, runCtx); err != nil {
			return nil, fmt.Errorf("starting the demo: %w", err)
		}
	}
	return n, nil
}

// BrokerAddr is the Kafka bootstrap address the node uses by default.
func (n *Node) BrokerAddr() string {
	if n.Broker != nil {
		return n.Broker.Addr()
	}
	return n.opts.BrokerAddr
}

// URL is the base URL of the REST API.
func (n *Node) URL() string { return "http://" + n.httpLn.Addr().String() }

func (n *Node) startDemo(ctx, runCtx context.Context) error {
	if existing, err := n.Catalog.GetStream(ctx, demo.StreamName); errors.Is(err, catalog.ErrNotFound) {
		if err := broker.CreateTopic(ctx, n.kafka, demo.Topic, 3); err != nil && !errors.Is(err, broker.ErrTopicExists) {
			return err
		}
		bootstrap := stream.EmbeddedBroker // follows the embedded broker wherever it listens
		if n.Broker == nil {
			bootstrap = n.BrokerAddr()
		}
		spec, err := stream.Parse(demo.StreamSpec(bootstrap))
		if err != nil {
			return err
		}
		if _, err := n.Streams.Create(ctx, spec, "demo"); err != nil {
			return err
		}
		// The demo's owner is "demo"; let the local user read and manage it.
		for _, who := range []string{localUser()} {
			if err := n.Catalog.Grant(ctx, demo.Destination, who, catalog.PrivAll); err != nil {
				return err
			}
		}
	} else if err != nil {
		return err
	} else if spec, perr := stream.Parse(existing.Spec); perr == nil &&
		spec.Connection.BootstrapServers != stream.EmbeddedBroker && spec.Connection.BootstrapServers != n.BrokerAddr() {
		// The stream keeps the address it was created with.
		n.logger.Warn("the demo stream reads from another broker address than this one; it will not see the demo's records",
			"stream_bootstrap", spec.Connection.BootstrapServers, "broker", n.BrokerAddr(),
			"fix", "start with --broker-addr "+spec.Connection.BootstrapServers+", or `sluice stream delete "+demo.StreamName+"` and restart")
	}
	if err := n.startDemoPipeline(ctx, demo.Pipeline, demo.PipelineSQL); err != nil {
		return err
	}
	fspec, err := window.ParseSpec([]byte(demo.FeaturesSpec))
	if err != nil {
		return fmt.Errorf("the demo feature table: %w", err)
	}
	if err := n.startDemoPipeline(ctx, fspec.PipelineName(), fspec.SQL()); err != nil {
		return err
	}
	g := demo.NewGenerator(uint64(time.Now().UnixNano()))
	g.BadEvery = 100
	// Order ids continue after the orders the topic already holds (one
	// per record), so that a restarted demo does not repeat them.
	if ends, err := kadm.NewClient(n.kafka).ListEndOffsets(ctx, demo.Topic); err == nil {
		var held int64
		ends.Each(func(o kadm.ListedOffset) {
			if o.Err == nil {
				held += o.Offset
			}
		})
		g.ContinueAfter(uint64(held))
	} else {
		n.logger.Warn("demo: could not read how many orders the topic holds; order ids start at 1 again", "err", err)
	}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		if err := demo.Produce(runCtx, n.kafka, demo.Topic, n.opts.DemoRate, g); err != nil {
			n.logger.Error("demo generator stopped", "err", err)
		}
	}()
	n.logger.Info("demo stream running", "stream", demo.StreamName, "topic", demo.Topic, "rate_per_s", n.opts.DemoRate, "pipeline", demo.Pipeline)
	return nil
}

// startDemoPipeline creates a demo pipeline (the orders pipeline, or the
// one a windowed feature table compiles to) over the demo stream's table,
// owned by "demo", and starts it with trigger continuous. A demo pipeline
// that exists already is left as it is: Resume has restarted it unless it
// was stopped. Either way the local user holds ALL on its tables.
func (n *Node) startDemoPipeline(ctx context.Context, pname, sql string) error {
	name, err := ident.Parse(pname)
	if err != nil {
		return err
	}
	_, err = n.Catalog.GetPipeline(ctx, pname)
	created := errors.Is(err, catalog.ErrNotFound)
	if err != nil && !created {
		return err
	}
	if created {
		spec := pipeline.Spec{Name: pname, SQL: sql, Trigger: "continuous"}
		if _, err := n.Pipelines.Run(ctx, spec, pipeline.UpdateRequest{}, "demo"); err != nil {
			return fmt.Errorf("creating the demo pipeline %s: %w", pname, err)
		}
	}
	g, err := n.Pipelines.Compile(ctx, name, sql)
	if err != nil {
		return err
	}
	tables := []string{pipeline.EventLogTable(name).String()}
	for _, d := range g.Tables() {
		tables = append(tables, d.Key())
	}
	for _, tbl := range tables {
		if err := n.Catalog.Grant(ctx, tbl, localUser(), catalog.PrivAll); err != nil {
			return err
		}
	}
	if created {
		n.logger.Info("demo pipeline created", "pipeline", pname, "trigger", "continuous")
	}
	return nil
}

// Close stops the node: the HTTP API, then ingestion (each stream commits
// what it has read), then the broker and the databases.
func (n *Node) Close() {
	n.closeMu.Do(func() {
		if n.httpSrv != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_ = n.httpSrv.Shutdown(ctx)
			cancel()
		}
		if n.cancel != nil {
			n.cancel()
		}
		if n.Pipelines != nil {
			n.Pipelines.Close()
		}
		if n.Streams != nil {
			n.Streams.Close()
		}
		n.wg.Wait()
		if n.Online != nil {
			_ = n.Online.Close()
		}
		if n.kafka != nil {
			n.kafka.Close()
		}
		if n.Broker != nil {
			_ = n.Broker.Close()
		}
		if n.Tables != nil {
			_ = n.Tables.Close()
		}
		if n.db != nil {
			_ = n.db.Close()
		}
	})
}
