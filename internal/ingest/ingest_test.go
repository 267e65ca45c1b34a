package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-dev/sluice/internal/broker"
	"github.com/sluice-dev/sluice/internal/catalog"
	"github.com/sluice-dev/sluice/internal/ident"
	"github.com/sluice-dev/sluice/internal/schema"
	"github.com/sluice-dev/sluice/internal/stream"
	"github.com/sluice-dev/sluice/internal/table"
)

// env is a real sluice ingestion stack for one test: an in-process broker,
// a SQLite catalog and an Iceberg warehouse in a temporary directory.
type env struct {
	t      *testing.T
	dir    string
	broker *broker.Broker
	db     interface{ Close() error }
	cat    *catalog.Catalog
	store  *table.Store
	m      *Manager
	cancel context.CancelFunc
	prod   *kgo.Client
}

func testOptions() Options {
	return Options{DiscoveryInterval: 200 * time.Millisecond, FetchMaxWait: 100 * time.Millisecond,
		MinBackoff: 50 * time.Millisecond, MaxBackoff: 500 * time.Millisecond, ConnectTimeout: 3 * time.Second,
		MaintainEvery: 5, BackfillCheckInterval: 50 * time.Millisecond}
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{t: t, dir: t.TempDir()}
	b, err := broker.Start(broker.Options{Addr: "127.0.0.1:0"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	e.broker = b
	t.Cleanup(func() { e.broker.Close() })
	e.prod, err = kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.AllowAutoTopicCreation(), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.prod.Close)
	e.open()
	return e
}

// open starts (or restarts) the catalog, store and manager on e.dir.
func (e *env) open() {
	t := e.t
	ctx := context.Background()
	db, err := table.OpenSQLite(filepath.Join(e.dir, "catalog.db"))
	if err != nil {
		t.Fatal(err)
	}
	key, err := catalog.LoadOrCreateKey(filepath.Join(e.dir, "secret.key"))
	if err != nil {
		t.Fatal(err)
	}
	e.cat, err = catalog.Open(ctx, catalog.Options{DB: db, SecretKey: key})
	if err != nil {
		t.Fatal(err)
	}
	e.store, err = table.Open(ctx, table.Options{DB: db, Warehouse: filepath.Join(e.dir, "warehouse")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.DiscardHandler)
	if os.Getenv("SLUICE_TEST_LOG") != "" {
		logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	e.m = New(e.cat, e.store, logger, nil, testOptions())
	runCtx, cancel := context.WithCancel(context.Background())
	e.cancel = cancel
	if err := e.m.Start(runCtx); err != nil {
		t.Fatal(err)
	}
	e.db = db
	t.Cleanup(e.close)
}

func (e *env) close() {
	if e.m == nil {
		return
	}
	e.cancel()
	e.m.Close()
	e.store.Close()
	e.db.Close()
	e.m = nil
}

func (e *env) create(spec string) (*stream.Spec, error) {
	s, err := stream.Parse([]byte(spec))
	if err != nil {
		return nil, err
	}
	_, err = e.m.Create(context.Background(), s, "alice")
	return s, err
}

func (e *env) produce(topic string, partition int32, key string, values ...string) {
	e.t.Helper()
	var recs []*kgo.Record
	for _, v := range values {
		r := &kgo.Record{Topic: topic, Partition: partition, Value: []byte(v)}
		if key != "" {
			r.Key = []byte(key)
		}
		recs = append(recs, r)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.prod.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		e.t.Fatal(err)
	}
}

type row struct {
	topic     string
	partition int32
	offset    int64
	value     string
}

// rows reads every row of table name, ordered by topic, partition, offset.
func (e *env) rows(name string, valueCol string) []row {
	e.t.Helper()
	n, _ := ident.Parse(name)
	tbl, err := e.store.Load(context.Background(), n)
	if err != nil {
		e.t.Fatal(err)
	}
	rdr, err := tbl.Scan(context.Background(), table.ScanOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	defer rdr.Release()
	var out []row
	for rdr.Next() {
		rec := rdr.RecordBatch()
		idx := func(c string) int { return rec.Schema().FieldIndices(c)[0] }
		topics := rec.Column(idx(ColTopic)).(*array.String)
		parts := rec.Column(idx(ColPartition)).(*array.Int32)
		offs := rec.Column(idx(ColOffset)).(*array.Int64)
		vals := rec.Column(idx(valueCol))
		for i := 0; i < int(rec.NumRows()); i++ {
			out = append(out, row{topics.Value(i), parts.Value(i), offs.Value(i), vals.ValueStr(i)})
		}
	}
	if err := rdr.Err(); err != nil {
		e.t.Fatal(err)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.topic != b.topic {
			return a.topic < b.topic
		}
		if a.partition != b.partition {
			return a.partition < b.partition
		}
		return a.offset < b.offset
	})
	return out
}

// waitRows waits (bounded) until table name holds want rows, then checks
// it holds no more.
func (e *env) waitRows(name, valueCol string, want int) []row {
	e.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		rows := e.rows(name, valueCol)
		if len(rows) >= want {
			if len(rows) > want {
				e.t.Fatalf("%s has %d rows, want %d: %v", name, len(rows), want, rows)
			}
			return rows
		}
		if time.Now().After(deadline) {
			st, _ := e.m.Status(context.Background(), "main.demo.orders")
			e.t.Fatalf("%s has %d rows after 30s, want %d (status %+v)", name, len(rows), want, st)
		}
		time.Sleep(20 * time.Millisecond) // polling a table for an outcome, not synchronising
	}
}

const ordersSchema = `{"type":"object","properties":{"order_id":{"type":"string"},"amount":{"type":"number"},"order_time":{"type":"string","format":"date-time"}},"required":["order_id"]}`

func ordersSpec(bootstrap, source string) string {
	return fmt.Sprintf(`name: main.demo.orders
source:
  kafka: {%s}
connection: {bootstrap_servers: "%s"}
schema:
  payload: {json_schema: '%s'}
ingestion:
  destination: main.demo.orders_ingestion
  commit_interval: 100ms
`, source, bootstrap, ordersSchema)
}

func order(id string, amount float64) string {
	return fmt.Sprintf(`{"order_id":%q,"amount":%v,"order_time":"2026-11-23T10:00:00Z"}`, id, amount)
}

func TestIngestExactlyFromCreation(t *testing.T) {
	e := newEnv(t)
	if err := broker.CreateTopic(context.Background(), e.prod, "orders", 2); err != nil {
		t.Fatal(err)
	}
	e.produce("orders", 0, "", order("before-0", 1), order("before-1", 2))
	e.produce("orders", 1, "", order("before-2", 3))
	if _, err := e.create(ordersSpec(e.broker.Addr(), "subscribe: orders")); err != nil {
		t.Fatal(err)
	}
	// Everything produced after Create returns is ingested, none before.
	e.produce("orders", 0, "k", order("a", 10), order("b", 20), `{"order_id":"bad","amount":"x"}`, `not json`)
	e.produce("orders", 1, "", order("c", 30))
	rows := e.waitRows("main.demo.orders_ingestion", ColValue, 3)
	want := []row{{"orders", 0, 2, `{"order_id":"a","amount":10,"order_time":"2026-11-23T10:00:00Z"}`}}
	if rows[0].offset != want[0].offset || rows[0].partition != 0 || rows[2].partition != 1 || rows[2].offset != 1 {
		t.Fatalf("rows = %v", rows)
	}
	q := e.waitRows("main.demo.orders_ingestion_quarantine", ColReason, 2)
	if q[0].offset != 4 || q[1].offset != 5 {
		t.Fatalf("quarantine = %v", q)
	}
	t.Logf("quarantine reasons: %q, %q", q[0].value, q[1].value)
	st, err := e.m.Status(context.Background(), "main.demo.orders")
	if err != nil || st.RowsIngested != 3 || st.RowsQuarantined != 2 || st.State != StateRunning {
		t.Fatalf("status = %+v, %v", st, err)
	}
}

func TestIngestResumesAfterRestart(t *testing.T) {
	e := newEnv(t)
	if _, err := e.create(ordersSpec(e.broker.Addr(), "subscribe: orders")); err != nil {
		t.Fatal(err)
	}
	e.produce("orders", 0, "", order("a", 1), order("b", 2))
	e.waitRows("main.demo.orders_ingestion", ColValue, 2)
	e.close()
	// Produced while sluice is down: ingested after the restart, once.
	e.produce("orders", 0, "", order("c", 3), `{"amount":1}`)
	e.open()
	e.produce("orders", 0, "", order("d", 4))
	rows := e.waitRows("main.demo.orders_ingestion", ColValue, 4)
	for i, r := range rows {
		if want := []int64{0, 1, 2, 4}[i]; r.offset != want {
			t.Fatalf("row %d offset %d, want %d: %v", i, r.offset, want, rows)
		}
	}
	e.waitRows("main.demo.orders_ingestion_quarantine", ColReason, 1)
}

func TestSubscriptionModes(t *testing.T) {
	cases := map[string]struct {
		source   string
		topics   map[string]int32 // created before the stream
		produce  map[string]int32 // topic -> partition to produce one record to
		later    string           // topic created after the stream (pattern mode)
		wantRows int
	}{
		"subscribe list": {source: "subscribe: 'a1,a2'", topics: map[string]int32{"a1": 1, "a2": 1, "a3": 1},
			produce: map[string]int32{"a1": 0, "a2": 0, "a3": 0}, wantRows: 2},
		"pattern": {source: `subscribe_pattern: "ev-.*"`, topics: map[string]int32{"ev-1": 1, "xev-2": 1},
			produce: map[string]int32{"ev-1": 0, "xev-2": 0}, later: "ev-new", wantRows: 2},
		"assign": {source: `assign: '{"p":[1]}'`, topics: map[string]int32{"p": 2},
			produce: map[string]int32{"p": 1}, wantRows: 1},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			for tp, n := range c.topics {
				if err := broker.CreateTopic(context.Background(), e.prod, tp, n); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := e.create(ordersSpec(e.broker.Addr(), c.source)); err != nil {
				t.Fatal(err)
			}
			for tp, p := range c.produce {
				e.produce(tp, p, "", order(tp, 1))
			}
			if name == "assign" {
				e.produce("p", 0, "", order("unassigned", 1))
			}
			if c.later != "" {
				// A topic that appears after the stream was created is
				// consumed from its start.
				e.produce(c.later, 0, "", order("late", 1))
			}
			rows := e.waitRows("main.demo.orders_ingestion", ColValue, c.wantRows)
			for _, r := range rows {
				if r.topic == "a3" || r.topic == "xev-2" || r.partition == 0 && r.topic == "p" {
					t.Fatalf("ingested a record the subscription does not select: %v", r)
				}
			}
		})
	}
}

func TestCreateRejects(t *testing.T) {
	e := newEnv(t)
	if _, err := e.create(ordersSpec(e.broker.Addr(), "subscribe: orders")); err != nil {
		t.Fatal(err)
	}
	cases := map[string]struct {
		spec string
		is   error
		msg  string
	}{
		"destination of another stream": {
			spec: `{name: main.demo.other, source: {kafka: {subscribe: t}}, connection: {bootstrap_servers: "` + e.broker.Addr() + `"}, ingestion: {destination: main.demo.orders_ingestion}}`,
			is:   ErrExists, msg: "belongs to stream main.demo.orders"},
		"same name": {
			spec: `{name: main.demo.orders, source: {kafka: {subscribe: t}}, connection: {bootstrap_servers: "` + e.broker.Addr() + `"}, ingestion: {destination: main.demo.x}}`,
			is:   ErrExists, msg: "already exists"},
		"bad schema": {
			spec: `{name: main.demo.s2, source: {kafka: {subscribe: t}}, connection: {bootstrap_servers: "` + e.broker.Addr() + `"}, schema: {payload: {json_schema: {type: objekt}}}, ingestion: {destination: main.demo.y}}`,
			is:   ErrInvalid, msg: "schema.payload.json_schema"},
		"unreachable broker": {
			spec: `{name: main.demo.s3, source: {kafka: {subscribe: t}}, connection: {bootstrap_servers: "127.0.0.1:1"}, ingestion: {destination: main.demo.z}}`,
			is:   ErrUnavailable, msg: "cannot reach the brokers at 127.0.0.1:1"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := e.create(c.spec)
			if !errors.Is(err, c.is) || !contains(err.Error(), c.msg) {
				t.Fatalf("err = %v; want %v containing %q", err, c.is, c.msg)
			}
		})
	}
	// Nothing was left behind by the failed creates.
	names, err := e.store.List(context.Background(), "main", "demo")
	if err != nil || len(names) != 2 {
		t.Fatalf("tables after failed creates: %v, %v", names, err)
	}
	list, _ := e.cat.ListStreams(context.Background(), "", "", 0)
	if len(list) != 1 {
		t.Fatalf("streams after failed creates: %d", len(list))
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

func TestDeleteStream(t *testing.T) {
	e := newEnv(t)
	if _, err := e.create(ordersSpec(e.broker.Addr(), "subscribe: orders")); err != nil {
		t.Fatal(err)
	}
	e.produce("orders", 0, "", order("a", 1))
	e.waitRows("main.demo.orders_ingestion", ColValue, 1)
	if err := e.m.Delete(context.Background(), "main.demo.orders"); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"main.demo.orders_ingestion", "main.demo.orders_ingestion_quarantine"} {
		name, _ := ident.Parse(n)
		if _, err := e.store.Load(context.Background(), name); !errors.Is(err, table.ErrNotFound) {
			t.Fatalf("table %s after delete: %v", n, err)
		}
	}
	if _, err := e.cat.GetStream(context.Background(), "main.demo.orders"); !errors.Is(err, catalog.ErrNotFound) {
		t.Fatalf("stream after delete: %v", err)
	}
	// The name and destination can be used again.
	if _, err := e.create(ordersSpec(e.broker.Addr(), "subscribe: orders")); err != nil {
		t.Fatal(err)
	}
}

// TestCreateAfterInterruptedCreate: a create that crashed after making the
// tables but before recording the stream does not block the next create.
func TestCreateAfterInterruptedCreate(t *testing.T) {
	e := newEnv(t)
	spec, err := stream.Parse([]byte(ordersSpec(e.broker.Addr(), "subscribe: orders")))
	if err != nil {
		t.Fatal(err)
	}
	// What the crashed create left: both tables, no stream.
	if _, err := e.store.Create(context.Background(), spec.DestinationName(), IngestionSchema(mustCompile(t, ordersSchema), mustCompile(t, "")),
		table.CreateOptions{Properties: map[string]string{PropStream: spec.Name}}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.create(ordersSpec(e.broker.Addr(), "subscribe: orders")); err != nil {
		t.Fatalf("create after an interrupted create: %v", err)
	}
	// A table that is not such a leftover is never dropped.
	if _, err := e.store.Create(context.Background(), ident.Name{Catalog: "main", Schema: "demo", Object: "mine"}, QuarantineSchema, table.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	_, err = e.create(`{name: main.demo.s9, source: {kafka: {subscribe: t}}, connection: {bootstrap_servers: "` + e.broker.Addr() + `"}, ingestion: {destination: main.demo.mine}}`)
	if !errors.Is(err, ErrExists) || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("create over a user's table: %v", err)
	}
}

func mustCompile(t testing.TB, s string) *schema.Schema {
	t.Helper()
	var raw []byte
	if s != "" {
		raw = []byte(s)
	}
	sc, err := schema.Compile(raw)
	if err != nil {
		t.Fatal(err)
	}
	return sc
}

// TestEmbeddedBootstrap: a stream whose bootstrap_servers is "embedded"
// reaches the embedded broker wherever it listens now, and is refused
// clearly by a server that embeds none.
func TestEmbeddedBootstrap(t *testing.T) {
	e := newEnv(t)
	e.m.opts.EmbeddedBroker = e.broker.Addr() // no runner exists yet to read it
	if _, err := e.create(`{name: main.demo.orders, source: {kafka: {subscribe: orders}}, connection: {bootstrap_servers: embedded},
ingestion: {destination: main.demo.orders_ingestion, commit_interval: 50ms}}`); err != nil {
		t.Fatal(err)
	}
	e.produce("orders", 0, "", "a", "b")
	e.waitRows("main.demo.orders_ingestion", ColValue, 2)

	other := newEnv(t) // a server without an embedded broker
	_, err := other.create(`{name: main.demo.s2, source: {kafka: {subscribe: t}}, connection: {bootstrap_servers: embedded}, ingestion: {destination: main.demo.s2_ingestion}}`)
	var fe *stream.FieldError
	if !errors.As(err, &fe) || fe.Field != "connection.bootstrap_servers" || !strings.Contains(err.Error(), "no embedded broker") {
		t.Fatalf("create on a server without an embedded broker: %v", err)
	}
}
