package pipeline

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/catalog"
	"github.com/sluice-dev/sluice/internal/table"
)

// exampleSQL is the pipeline of issue 3, verbatim.
const exampleSQL = `
CREATE OR REFRESH STREAMING TABLE main.demo.orders_silver (
  CONSTRAINT valid_amount   EXPECT (value.amount > 0)              ON VIOLATION DROP ROW,
  CONSTRAINT valid_customer EXPECT (value.customer_id IS NOT NULL) ON VIOLATION FAIL UPDATE,
  CONSTRAINT recent         EXPECT (value.order_time > TIMESTAMP '2020-01-01')   -- warn: kept, counted
)
COMMENT 'Parsed and validated orders'
TBLPROPERTIES ('pipelines.reset.allowed' = 'false')
AS SELECT value.order_id, value.customer_id, value.product, value.amount, value.order_time,
          current_timestamp() AS processed_at
FROM STREAM(main.demo.orders_ingestion);

CREATE OR REFRESH STREAMING TABLE main.demo.product_revenue_5m AS
SELECT window(order_time, '5 minutes') AS w, product,
       count(order_id) AS order_count, sum(amount) AS total_revenue,
       count(DISTINCT customer_id) AS customers, max(amount) AS max_amount
FROM STREAM(main.demo.orders_silver) WATERMARK order_time DELAY OF INTERVAL 10 MINUTES
GROUP BY window(order_time, '5 minutes'), product;

CREATE OR REFRESH MATERIALIZED VIEW main.demo.top_products AS
SELECT product, sum(total_revenue) AS revenue FROM main.demo.product_revenue_5m GROUP BY product;

CREATE TEMPORARY VIEW recent_big AS SELECT * FROM STREAM(main.demo.orders_silver) WHERE amount > 100;
`

func TestExamplePipeline(t *testing.T) {
	e := newEnv(t)
	src := e.create("main.demo.orders_ingestion", ordersSchema)
	g := e.compile("main.demo.orders_pipeline", exampleSQL)

	var keys []string
	for _, d := range g.Datasets {
		keys = append(keys, d.Key())
	}
	if want := []string{"main.demo.orders_silver", "main.demo.product_revenue_5m", "main.demo.top_products", "recent_big"}; !slices.Equal(keys, want) {
		t.Fatalf("graph order %v, want %v", keys, want)
	}
	r := NewRunner(e.name("main.demo.orders_pipeline"), g, e.store, RunOptions{}, nil)
	defer r.Close()

	// Batch 1: orders in the windows [12:00, 12:05) and [12:05, 12:10);
	// one has a negative amount (dropped).
	e.appendOrders(src,
		order{"o1", "c1", "book", 10, at(0, 10)},
		order{"o2", "c2", "book", 20, at(1, 0)},
		order{"o3", "c1", "pen", 5, at(4, 59)},
		order{"o4", "c3", "book", -1, at(2, 0)},
		order{"o5", "c3", "book", 30, at(6, 0)},
	)
	if _, err := r.Round(e.ctx, nil); err != nil {
		t.Fatal(err)
	}
	if got := e.rows("main.demo.orders_silver", "order_id"); !slices.Equal(got, []string{`{"order_id":"o1"}`, `{"order_id":"o2"}`, `{"order_id":"o3"}`, `{"order_id":"o5"}`}) {
		t.Fatalf("silver: %v", got)
	}
	// The watermark is 12:06 - 10m: no window is final yet.
	if got := e.rows("main.demo.product_revenue_5m"); len(got) != 0 {
		t.Fatalf("gold before the watermark passes: %v", got)
	}
	st := statusOf(r, "main.demo.orders_silver")
	if st.DroppedByExpectations != 1 || st.Expectations[0].Failed != 1 || st.Expectations[0].Passed != 4 || st.Expectations[2].Passed != 5 {
		t.Fatalf("silver status %+v", st)
	}

	// Batch 2: an order at 12:20 moves the watermark to 12:10, closing
	// both windows; a late order for [12:00, 12:05) arrives in the same
	// batch and still counts (the watermark moves at the end of a batch).
	e.appendOrders(src,
		order{"o6", "c4", "pen", 7, at(20, 0)},
		order{"o7", "c5", "book", 40, at(3, 0)},
	)
	if _, err := r.Round(e.ctx, nil); err != nil {
		t.Fatal(err)
	}
	got := e.rows("main.demo.product_revenue_5m")
	want := []string{
		`{"customers":1,"max_amount":30,"order_count":1,"product":"book","total_revenue":30,"w":{"end":"2024-05-01T12:10:00Z","start":"2024-05-01T12:05:00Z"}}`,
		`{"customers":1,"max_amount":5,"order_count":1,"product":"pen","total_revenue":5,"w":{"end":"2024-05-01T12:05:00Z","start":"2024-05-01T12:00:00Z"}}`,
		`{"customers":3,"max_amount":40,"order_count":3,"product":"book","total_revenue":70,"w":{"end":"2024-05-01T12:05:00Z","start":"2024-05-01T12:00:00Z"}}`,
	}
	if !slices.Equal(got, want) {
		t.Fatalf("gold:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if got := e.rows("main.demo.top_products"); !slices.Equal(got, []string{`{"product":"book","revenue":100}`, `{"product":"pen","revenue":5}`}) {
		t.Fatalf("top products: %v", got)
	}

	// Batch 3: an order for the closed window [12:00, 12:05) is late and
	// dropped by the watermark.
	e.appendOrders(src, order{"o8", "c6", "pen", 9, at(1, 0)})
	if _, err := r.Round(e.ctx, nil); err != nil {
		t.Fatal(err)
	}
	if st := statusOf(r, "main.demo.product_revenue_5m"); st.DroppedByWatermark != 1 || st.Watermark == nil || !st.Watermark.Equal(at(10, 0)) {
		t.Fatalf("gold status %+v", st)
	}
	if got := e.rows("main.demo.product_revenue_5m"); len(got) != 3 {
		t.Fatalf("a late row changed the output: %v", got)
	}
	// Nothing new: a round commits nothing.
	before := snapshotOf(t, e, "main.demo.orders_silver")
	res, err := r.Round(e.ctx, nil)
	if err != nil || res.Batches != 0 {
		t.Fatalf("idle round: %+v, %v", res, err)
	}
	if snapshotOf(t, e, "main.demo.orders_silver") != before {
		t.Fatal("an idle round committed")
	}
}

func statusOf(r *Runner, name string) DatasetStatus {
	for _, s := range r.Status() {
		if s.Name == name {
			return s
		}
	}
	return DatasetStatus{}
}

func snapshotOf(t *testing.T, e *env, name string) int64 {
	tbl, err := e.store.Load(e.ctx, e.name(name))
	if err != nil {
		t.Fatal(err)
	}
	return tbl.SnapshotID()
}

func TestFailUpdate(t *testing.T) {
	e := newEnv(t)
	src := e.create("main.demo.orders_ingestion", ordersSchema)
	g := e.compile("main.demo.orders_pipeline", exampleSQL)
	r := NewRunner(e.name("main.demo.orders_pipeline"), g, e.store, RunOptions{}, nil)
	defer r.Close()
	e.appendOrders(src, order{"o1", "c1", "book", 10, at(0, 0)}, order{"o2", "", "book", 10, at(0, 1)})
	_, err := r.Round(e.ctx, nil)
	var ee *ExpectationError
	if !errors.As(err, &ee) || ee.Expectation != "valid_customer" || !strings.Contains(ee.Row, `"order_id":"o2"`) {
		t.Fatalf("want the valid_customer expectation to fail on o2, got %v", err)
	}
	if got := e.rows("main.demo.orders_silver"); len(got) != 0 {
		t.Fatalf("a failed update committed rows: %v", got)
	}
	if st := statusOf(r, "main.demo.orders_silver"); st.State != "failed" || !strings.Contains(st.Error, "valid_customer") {
		t.Fatalf("status %+v", st)
	}
}

// TestRestartResumesState checks that a runner started afresh on the same
// tables continues from the committed checkpoint, aggregation state
// included, and ends with the same tables as one that never stopped.
func TestRestartResumesState(t *testing.T) {
	const sqlText = `
CREATE STREAMING TABLE main.demo.counts AS
SELECT window(value.order_time, '1 minute') AS w, value.product AS product, count(*) AS n, sum(value.amount) AS total
FROM STREAM(main.demo.orders_ingestion) WATERMARK value.order_time DELAY OF INTERVAL 30 SECONDS
GROUP BY window(value.order_time, '1 minute'), value.product;`
	run := func(restartEvery int) []string {
		e := newEnv(t)
		src := e.create("main.demo.orders_ingestion", ordersSchema)
		g := e.compile("main.demo.p", sqlText)
		r := NewRunner(e.name("main.demo.p"), g, e.store, RunOptions{}, nil)
		for i := range 12 {
			e.appendOrders(src,
				order{"a", "c", "x", float64(i), at(i, 5)},
				order{"b", "c", "y", 1, at(i, 40)},
				order{"c", "c", "x", 2, at(i, 59)},
			)
			if restartEvery > 0 && i%restartEvery == 0 {
				r.Close()
				e.store = e.open()
				r = NewRunner(e.name("main.demo.p"), e.compile("main.demo.p", sqlText), e.store, RunOptions{}, nil)
			}
			if _, err := r.Round(e.ctx, nil); err != nil {
				t.Fatal(err)
			}
		}
		r.Close()
		return e.rows("main.demo.counts")
	}
	straight := run(0)
	if len(straight) != 22 { // the watermark 12:11:29 closes 11 minutes × 2 products
		t.Fatalf("uninterrupted run: %d rows: %v", len(straight), straight)
	}
	if restarted := run(2); !slices.Equal(restarted, straight) {
		t.Fatalf("restarted run differs:\n%s\nwant\n%s", strings.Join(restarted, "\n"), strings.Join(straight, "\n"))
	}
}

func TestStreamStaticJoin(t *testing.T) {
	e := newEnv(t)
	src := e.create("main.demo.orders_ingestion", ordersSchema)
	cust := e.create("main.demo.customers", mustSchema(t, `customer_id STRING, tier STRING`))
	e.appendJSON(cust, `[{"customer_id":"c1","tier":"gold"},{"customer_id":"c2","tier":"silver"}]`)
	g := e.compile("main.demo.p", `
CREATE STREAMING TABLE enriched AS
SELECT o.value.order_id AS order_id, c.tier
FROM STREAM(main.demo.orders_ingestion) o LEFT JOIN main.demo.customers c ON o.value.customer_id = c.customer_id;
CREATE STREAMING TABLE gold_only AS
SELECT o.value.order_id AS order_id FROM STREAM(orders_ingestion) AS o JOIN customers c ON c.customer_id = o.value.customer_id AND c.tier = 'gold';`)
	r := NewRunner(e.name("main.demo.p"), g, e.store, RunOptions{}, nil)
	defer r.Close()
	e.appendOrders(src, order{"o1", "c1", "x", 1, at(0, 0)}, order{"o2", "c2", "x", 1, at(0, 0)}, order{"o3", "c9", "x", 1, at(0, 0)})
	if _, err := r.Round(e.ctx, nil); err != nil {
		t.Fatal(err)
	}
	if got := e.rows("main.demo.enriched"); !slices.Equal(got, []string{`{"order_id":"o1","tier":"gold"}`, `{"order_id":"o2","tier":"silver"}`, `{"order_id":"o3","tier":null}`}) {
		t.Fatalf("enriched: %v", got)
	}
	if got := e.rows("main.demo.gold_only"); !slices.Equal(got, []string{`{"order_id":"o1"}`}) {
		t.Fatalf("gold only: %v", got)
	}
	// The static side is read again each micro-batch.
	e.appendJSON(cust, `[{"customer_id":"c9","tier":"gold"}]`)
	e.appendOrders(src, order{"o4", "c9", "x", 1, at(0, 0)})
	if _, err := r.Round(e.ctx, nil); err != nil {
		t.Fatal(err)
	}
	if got := e.rows("main.demo.gold_only"); !slices.Equal(got, []string{`{"order_id":"o1"}`, `{"order_id":"o4"}`}) {
		t.Fatalf("gold only after the dimension grew: %v", got)
	}
}

func TestFullRefresh(t *testing.T) {
	e := newEnv(t)
	src := e.create("main.demo.orders_ingestion", ordersSchema)
	g := e.compile("main.demo.p", `
CREATE STREAMING TABLE a AS SELECT value.order_id AS id FROM STREAM(orders_ingestion);
CREATE STREAMING TABLE b TBLPROPERTIES ('pipelines.reset.allowed' = 'false') AS SELECT value.order_id AS id FROM STREAM(orders_ingestion);`)
	r := NewRunner(e.name("main.demo.p"), g, e.store, RunOptions{}, nil)
	defer r.Close()
	e.appendOrders(src, order{"o1", "c1", "x", 1, at(0, 0)})
	if _, err := r.Round(e.ctx, nil); err != nil {
		t.Fatal(err)
	}
	e.appendOrders(src, order{"o2", "c1", "x", 1, at(0, 0)})
	if _, err := r.Round(e.ctx, map[string]bool{"main.demo.a": true}); err != nil {
		t.Fatal(err)
	}
	if got := e.rows("main.demo.a"); !slices.Equal(got, []string{`{"id":"o1"}`, `{"id":"o2"}`}) {
		t.Fatalf("after a full refresh: %v", got)
	}
	_, err := r.Round(e.ctx, map[string]bool{"main.demo.b": true})
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "pipelines.reset.allowed") {
		t.Fatalf("full refresh of a table that forbids it: %v", err)
	}
	if got := e.rows("main.demo.b"); len(got) != 2 {
		t.Fatalf("refused refresh changed the table: %v", got)
	}
}

func TestCompileErrors(t *testing.T) {
	e := newEnv(t)
	e.create("main.demo.orders_ingestion", ordersSchema)
	m := NewManager(ManagerOptions{Store: e.store}, nil)
	for _, tc := range []struct{ sql, want string }{
		{`CREATE STREAMING TABLE a AS SELECT * FROM STREAM(b); CREATE STREAMING TABLE b AS SELECT * FROM STREAM(a);`, "cycle: main.demo.a → main.demo.b → main.demo.a"},
		{`CREATE STREAMING TABLE a AS SELECT * FROM STREAM(nope);`, "line 1, column 43: main.demo.a: unknown table main.demo.nope"},
		{`CREATE STREAMING TABLE a AS SELECT value.amout FROM STREAM(orders_ingestion);`, `amout`},
		{`CREATE STREAMING TABLE a AS SELECT value.amount FROM orders_ingestion;`, "write FROM STREAM(main.demo.orders_ingestion)"},
		{`CREATE MATERIALIZED VIEW a AS SELECT value.amount FROM STREAM(orders_ingestion);`, "remove STREAM()"},
		{`CREATE STREAMING TABLE a AS SELECT key, count(*) AS n FROM STREAM(orders_ingestion) GROUP BY key HAVING n > 1 AND value.amount > 0;`, "value.amount must be in GROUP BY"},
		{`CREATE STREAMING TABLE a AS SELECT window(value.order_time, '1 minute') AS w, count(*) AS n FROM STREAM(orders_ingestion) WATERMARK stream_record_timestamp DELAY OF INTERVAL 1 MINUTE GROUP BY window(value.order_time, '1 minute');`, "is not the watermark's column"},
		{`CREATE STREAMING TABLE a TBLPROPERTIES ('pipelines.output_mode' = 'append') AS SELECT key, count(*) AS n FROM STREAM(orders_ingestion) GROUP BY key;`, "watermark"},
		{`CREATE STREAMING TABLE a AS SELECT key, key FROM STREAM(orders_ingestion);`, `two columns named "key"`},
		{`CREATE STREAMING TABLE a (CONSTRAINT c EXPECT (value.amount) ON VIOLATION DROP ROW) AS SELECT key FROM STREAM(orders_ingestion);`, "boolean"},
		{`CREATE STREAMING TABLE a AS SELECT key FROM STREAM(orders_ingestion) WHERE count(*) > 1;`, "aggregate function count is not allowed in WHERE"},
		{`CREATE STREAMING TABLE a AS SELECT key FROM STREAM(orders_ingestion)
WHERE`, "line 2, column 6"},
		{`CREATE STREAMING TABLE a (PRIMARY KEY (key)) TBLPROPERTIES ('online' = 'true', 'ttl' = '7d') AS SELECT key, value.amount AS amount FROM STREAM(orders_ingestion);`,
			"line 1, column 80: main.demo.a: ttl needs a timestamp key: declare one with TIMESERIES, PRIMARY KEY (key, ts TIMESERIES), or drop ttl"},
		{`CREATE STREAMING TABLE a (PRIMARY KEY (key)) TBLPROPERTIES ('sluice.ttl' = '7d') AS SELECT key, value.amount AS amount FROM STREAM(orders_ingestion);`, "ttl needs a timestamp key"},
	} {
		_, err := m.Compile(e.ctx, e.name("main.demo.p"), tc.sql)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s\n  got  %v\n  want …%s…", tc.sql, err, tc.want)
		}
	}
}

// TestMaintenance checks that a pipeline compacts its tables as it goes
// and keeps producing the same rows, with a downstream streaming table
// reading across the compactions.
func TestMaintenance(t *testing.T) {
	e := newEnv(t)
	src := e.create("main.demo.orders_ingestion", ordersSchema)
	g := e.compile("main.demo.p", `
CREATE STREAMING TABLE a AS SELECT value.order_id AS id FROM STREAM(orders_ingestion);
CREATE STREAMING TABLE b AS SELECT id FROM STREAM(a) WHERE id != 'o3';`)
	var events []Event
	r := NewRunner(e.name("main.demo.p"), g, e.store, RunOptions{MaintainEvery: 2}, func(ev Event) { events = append(events, ev) })
	defer r.Close()
	var want []string
	for i := range 7 {
		id := fmt.Sprintf("o%d", i)
		e.appendOrders(src, order{id, "c", "x", 1, at(i, 0)})
		if _, err := r.Round(e.ctx, nil); err != nil {
			t.Fatalf("round %d: %v", i, err)
		}
		if id != "o3" {
			want = append(want, fmt.Sprintf(`{"id":%q}`, id))
		}
	}
	// Maintenance runs beside the rounds; its passes are over once
	// WaitMaintenance returns.
	r.WaitMaintenance()
	if got := e.rows("main.demo.b"); !slices.Equal(got, want) {
		t.Fatalf("b after maintenance: %v, want %v", got, want)
	}
	n := 0
	for _, ev := range events {
		if ev.Type == "maintenance" {
			n++
		}
	}
	if n < 4 {
		t.Fatalf("%d maintenance events, want one every 2 commits of each table", n)
	}
}

// TestContinuousWakesOnCommit checks that an idle continuous pipeline runs
// as soon as this process commits to its source, not at its next poll:
// with a poll interval of an hour, every append must still come through.
func TestContinuousWakesOnCommit(t *testing.T) {
	e := newEnv(t)
	src := e.create("main.demo.orders_ingestion", ordersSchema)
	db, err := table.OpenSQLite(filepath.Join(e.dir, "catalog.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	cat, err := catalog.Open(e.ctx, catalog.Options{DB: db})
	if err != nil {
		t.Fatal(err)
	}
	m := NewManager(ManagerOptions{Store: e.store, Catalog: cat, PollInterval: time.Hour}, nil)
	defer m.Close()
	if _, err := m.Run(e.ctx, Spec{Name: "main.demo.p", Trigger: "continuous",
		SQL: `CREATE STREAMING TABLE a AS SELECT value.order_id AS id FROM STREAM(orders_ingestion);`}, UpdateRequest{}, ""); err != nil {
		t.Fatal(err)
	}
	var want []string
	for i := range 4 {
		id := fmt.Sprintf("o%d", i)
		e.appendOrders(src, order{id, "c", "x", 1, at(i, 0)})
		want = append(want, fmt.Sprintf(`{"id":%q}`, id))
		deadline := time.Now().Add(20 * time.Second)
		for {
			if got := e.rows("main.demo.a"); slices.Equal(got, want) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("append %d not processed after 20s (poll interval 1h): %v, want %v", i, e.rows("main.demo.a"), want)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}
