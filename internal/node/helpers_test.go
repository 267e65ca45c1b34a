package node_test

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/sluice-dev/sluice/internal/ident"
	"github.com/sluice-dev/sluice/internal/ingest"
	"github.com/sluice-dev/sluice/internal/node"
	"github.com/sluice-dev/sluice/internal/table"
	"github.com/sluice-dev/sluice/internal/testutil/sluicetest"
)

// testLogger logs warnings and errors to the test's output, everything with
// SLUICE_TEST_LOG set.
func testLogger(t testing.TB) *slog.Logger {
	lv := slog.LevelWarn
	if os.Getenv("SLUICE_TEST_LOG") != "" {
		lv = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: lv}))
}

// startNode starts a node with its embedded broker and REST API on free
// ports and a fresh data directory, with ingestion tuned for short tests,
// and closes it at cleanup.
func startNode(t testing.TB) *node.Node {
	t.Helper()
	n, err := node.Start(sluicetest.Context(t), node.Options{
		DataDir:    t.TempDir(),
		BrokerAddr: "127.0.0.1:0",
		HTTPAddr:   "127.0.0.1:0",
		Ingest: ingest.Options{FetchMaxWait: 100 * time.Millisecond, DiscoveryInterval: 500 * time.Millisecond,
			MinBackoff: 50 * time.Millisecond, MaxBackoff: time.Second},
	}, testLogger(t))
	if err != nil {
		t.Fatalf("starting node: %v", err)
	}
	t.Cleanup(n.Close)
	return n
}

// tableRow is the part of an ingestion or quarantine row the tests compare.
type tableRow struct {
	Topic     string
	Partition int32
	Offset    int64
	// Value is value.<field> of an ingestion table (the field given to
	// scanTable), or raw_value of a quarantine table.
	Value string
}

func (r tableRow) String() string {
	return fmt.Sprintf("%s/%d@%d=%q", r.Topic, r.Partition, r.Offset, r.Value)
}

// pos is where a record is in its topic.
type pos struct {
	partition int32
	offset    int64
}

// scanTable reads every row of table name in store, sorted by topic,
// partition and offset. field names the value struct's field reported as
// Value for an ingestion table.
func scanTable(t testing.TB, store *table.Store, name, field string) []tableRow {
	t.Helper()
	var out []tableRow
	eachBatch(t, store, name, table.ScanOptions{}, func(rec arrow.RecordBatch) {
		topics := column[*array.String](t, rec, ingest.ColTopic)
		parts := column[*array.Int32](t, rec, ingest.ColPartition)
		offs := column[*array.Int64](t, rec, ingest.ColOffset)
		var value func(i int) string
		if idx := rec.Schema().FieldIndices(ingest.ColRawValue); len(idx) > 0 {
			raw := rec.Column(idx[0]).(*array.Binary)
			value = func(i int) string { return string(raw.Value(i)) }
		} else {
			st := column[*array.Struct](t, rec, ingest.ColValue)
			fi, ok := st.DataType().(*arrow.StructType).FieldIdx(field)
			if !ok {
				t.Fatalf("%s: value has no field %q", name, field)
			}
			f := st.Field(fi).(*array.String)
			value = func(i int) string {
				if st.IsNull(i) || f.IsNull(i) {
					return "<null>"
				}
				return f.Value(i)
			}
		}
		for i := range int(rec.NumRows()) {
			out = append(out, tableRow{topics.Value(i), parts.Value(i), offs.Value(i), value(i)})
		}
	})
	slices.SortFunc(out, func(a, b tableRow) int {
		return cmp.Or(cmp.Compare(a.Topic, b.Topic), cmp.Compare(a.Partition, b.Partition), cmp.Compare(a.Offset, b.Offset))
	})
	return out
}

// eachBatch scans table name in store with opts and calls f with every
// record batch, which is valid only during the call.
func eachBatch(t testing.TB, store *table.Store, name string, opts table.ScanOptions, f func(arrow.RecordBatch)) {
	t.Helper()
	ctx := sluicetest.Context(t)
	id, err := ident.Parse(name)
	if err != nil {
		t.Fatal(err)
	}
	tbl, err := store.Load(ctx, id)
	if err != nil {
		t.Fatalf("loading %s: %v", name, err)
	}
	rdr, err := tbl.Scan(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer rdr.Release()
	for rdr.Next() {
		f(rdr.RecordBatch())
	}
	if err := rdr.Err(); err != nil {
		t.Fatalf("scanning %s: %v", name, err)
	}
}

func column[A arrow.Array](t testing.TB, rec arrow.RecordBatch, name string) A {
	t.Helper()
	idx := rec.Schema().FieldIndices(name)
	if len(idx) != 1 {
		t.Fatalf("no column %s in %s", name, rec.Schema())
	}
	a, ok := rec.Column(idx[0]).(A)
	if !ok {
		t.Fatalf("column %s is %T", name, rec.Column(idx[0]))
	}
	return a
}

// openStore opens the table store of a data directory that no process is
// serving (the node is stopped), and closes it at cleanup.
func openStore(t testing.TB, dataDir string) *table.Store {
	t.Helper()
	db, err := table.OpenSQLite(filepath.Join(dataDir, "catalog.db"))
	if err != nil {
		t.Fatal(err)
	}
	store, err := table.Open(context.Background(), table.Options{DB: db, Warehouse: filepath.Join(dataDir, "warehouse")}, nil)
	if err != nil {
		db.Close()
		t.Fatal(err)
	}
	var once sync.Once
	t.Cleanup(func() {
		once.Do(func() { store.Close(); db.Close() })
	})
	return store
}

// withStore runs f on the store of a stopped node's data directory and
// closes it before returning, so that the node can be started again.
func withStore(t testing.TB, dataDir string, f func(*table.Store)) {
	t.Helper()
	db, err := table.OpenSQLite(filepath.Join(dataDir, "catalog.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	store, err := table.Open(context.Background(), table.Options{DB: db, Warehouse: filepath.Join(dataDir, "warehouse")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	f(store)
}

// syncBuffer is a bytes.Buffer safe for one writer and concurrent readers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// feastResults is the part of a /get-online-features response the tests
// check: per requested name (the entity key first), values and statuses.
type feastResults []struct {
	Values   []any    `json:"values"`
	Statuses []string `json:"statuses"`
}

// getOnlineFeatures reads features (table:column names) of the entities
// of key over HTTP, in Feast's format.
func getOnlineFeatures(t testing.TB, api *sluicetest.Client, key string, entities []string, features ...string) feastResults {
	t.Helper()
	var resp struct {
		Results feastResults `json:"results"`
	}
	if err := api.Do(sluicetest.Context(t), "POST", "/get-online-features", map[string]any{
		"features": features,
		"entities": map[string][]string{key: entities},
	}, 200, &resp); err != nil {
		t.Fatal(err)
	}
	return resp.Results
}
