package ingest

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/sluice-dev/sluice/internal/broker"
	"github.com/sluice-dev/sluice/internal/demo"
	"github.com/sluice-dev/sluice/internal/ident"
	"github.com/sluice-dev/sluice/internal/source/kafka"
	"github.com/sluice-dev/sluice/internal/table"
)

// TestChunkedBatches ingests batches large enough to reach the committer
// in chunks (see chunkRows), written while the runner decodes the rest of
// the batch, while compactions race the commits: every record must land
// exactly once, and the offsets must end where the records do.
func TestChunkedBatches(t *testing.T) {
	e := newEnv(t)
	if err := broker.CreateTopic(context.Background(), e.prod, "orders", 2); err != nil {
		t.Fatal(err)
	}
	spec := fmt.Sprintf(`name: main.demo.orders
source:
  kafka: {subscribe: orders}
connection: {bootstrap_servers: "%s"}
ingestion:
  destination: main.demo.orders_ingestion
  commit_interval: 100ms
  commit_max_records: 40000
`, e.broker.Addr())
	if _, err := e.create(spec); err != nil {
		t.Fatal(err)
	}
	name, _ := ident.Parse("main.demo.orders_ingestion")
	stop := make(chan struct{})
	var optimized atomic.Int64
	var wg sync.WaitGroup
	stopOptimizing := sync.OnceFunc(func() { close(stop); wg.Wait() })
	t.Cleanup(stopOptimizing) // before the env's cleanup closes the store
	// Compactions race the streamed appends.
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			st, err := e.store.Optimize(context.Background(), name, table.OptimizeOptions{MinInputFiles: 2})
			if err != nil {
				t.Errorf("optimize: %v", err)
				return
			}
			if st.FilesRewritten > 0 {
				optimized.Add(1)
			}
		}
	})
	const rounds, per = 3, 30000 // per partition: a round is 1.5 batches
	for r := range rounds {
		for p := range int32(2) {
			vals := make([]string, per)
			for j := range vals {
				vals[j] = fmt.Sprintf("v%d", r*per+j)
			}
			e.produce("orders", p, "", vals...)
		}
	}
	rows := e.waitRows("main.demo.orders_ingestion", ColValue, 2*rounds*per)
	stopOptimizing()
	for i, r := range rows {
		p, off := int32(i/(rounds*per)), int64(i%(rounds*per))
		if r.partition != p || r.offset != off || r.value != fmt.Sprintf("v%d", off) {
			t.Fatalf("row %d = %+v, want partition %d offset %d", i, r, p, off)
		}
	}
	tbl, err := e.store.Load(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := tbl.SnapshotProperties()[PropOffsets], fmt.Sprintf(`{"orders":{"0":%d,"1":%d}}`, rounds*per, rounds*per); got != want {
		t.Fatalf("offsets = %s, want %s", got, want)
	}
	t.Logf("%d compactions rewrote files while ingesting", optimized.Load())
}

// TestStreamedAppendAbort checks that a batch abandoned in the middle (its
// runner left before sealing it) commits nothing, and that the next batch
// commits normally.
func TestStreamedAppendAbort(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db, err := table.OpenSQLite(filepath.Join(dir, "catalog.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	store, err := table.Open(ctx, table.Options{DB: db, Warehouse: filepath.Join(dir, "warehouse")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	key, value := mustCompile(t, `{"type":"string"}`), mustCompile(t, demo.OrderSchema)
	name, _ := ident.Parse("main.demo.orders_ingestion")
	tbl, err := store.Create(ctx, name, IngestionSchema(key, value), table.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	b := newBatch(memory.DefaultAllocator, key, value, kafka.Offsets{}, kafka.Offsets{})
	defer b.release()
	recs := demoRecords(20)
	now := time.Now()
	chunk := func(rs []Record) arrow.RecordBatch {
		for i := range rs {
			b.add(&rs[i], now)
		}
		return b.takeChunk()
	}
	c := &committer{tbl: tbl}

	c.write(ctx, chunk(recs[:10]))
	c.write(ctx, chunk(recs[10:15]))
	c.cur.abort()
	c.cur = nil
	if err := tbl.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if id := tbl.SnapshotID(); id != 0 {
		t.Fatalf("an abandoned batch made snapshot %d", id)
	}

	c.write(ctx, chunk(recs[15:]))
	a := c.cur
	if err := a.finish(map[string]string{PropOffsets: "x"}); err != nil {
		t.Fatal(err)
	}
	a.release()
	if n, err := tbl.Count(ctx); err != nil || n != 5 {
		t.Fatalf("Count = %d, %v; want the 5 rows of the committed chunk", n, err)
	}
	if got := tbl.SnapshotProperties()[PropOffsets]; got != "x" {
		t.Fatalf("offsets = %q, want x", got)
	}
}
