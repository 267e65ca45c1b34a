package pipeline

import (
	"slices"
	"strings"
	"testing"

	"github.com/sluice-dev/sluice/internal/publish"
)

// TestDialect runs queries that exercise the dialect's corners over the
// docs' orders (docsOrders) and checks the rows of the last table.
func TestDialect(t *testing.T) {
	for _, tc := range []struct {
		name, sql string
		want      []string
	}{
		{"subquery in FROM and STREAM without parentheses", `
CREATE STREAMING TABLE out AS
SELECT id, amt * 2 AS doubled FROM (SELECT value.order_id AS id, value.amount AS amt FROM STREAM main.demo.orders_ingestion) AS s
WHERE amt > 20;`, []string{`{"doubled":60,"id":"o5"}`, `{"doubled":80,"id":"o7"}`}},
		{"struct.* and a temporary view chain", `
CREATE TEMPORARY VIEW v1 AS SELECT value.* FROM STREAM(orders_ingestion);
CREATE TEMPORARY VIEW v2 AS SELECT order_id, product FROM STREAM(v1) WHERE product = 'pen';
CREATE STREAMING TABLE out AS SELECT * FROM STREAM(v2);`, []string{`{"order_id":"o3","product":"pen"}`, `{"order_id":"o6","product":"pen"}`}},
		{"DISTINCT, GROUP BY position, first, last, avg, min", `
CREATE MATERIALIZED VIEW d AS SELECT DISTINCT value.product AS product FROM orders_ingestion;
CREATE MATERIALIZED VIEW out AS
SELECT value.product AS product, min(value.amount) AS lo, avg(value.amount) AS mean, first(value.order_id) AS f, last(value.order_id) AS l, count(value.customer_id) AS n
FROM orders_ingestion GROUP BY 1;`, []string{
			`{"f":"o1","l":"o7","lo":-1,"mean":19.8,"n":5,"product":"book"}`,
			`{"f":"o3","l":"o6","lo":5,"mean":6,"n":2,"product":"pen"}`}},
		{"semi and anti joins, USING", `
CREATE TEMPORARY VIEW orders AS SELECT value.order_id AS order_id, value.customer_id AS customer_id FROM STREAM(orders_ingestion);
CREATE STREAMING TABLE known AS SELECT order_id FROM STREAM(orders) LEFT SEMI JOIN customers USING (customer_id);
CREATE STREAMING TABLE out AS SELECT order_id FROM STREAM(orders) o LEFT ANTI JOIN customers c ON o.customer_id = c.customer_id AND c.tier = 'gold';`,
			[]string{`{"order_id":"o2"}`, `{"order_id":"o4"}`, `{"order_id":"o5"}`, `{"order_id":"o6"}`, `{"order_id":"o7"}`}},
		{"CASE, IN, BETWEEN, LIKE, CAST, string and time functions", `
CREATE STREAMING TABLE out AS
SELECT upper(value.product) AS p,
       CASE WHEN value.amount BETWEEN 10 AND 20 THEN 'mid' WHEN value.amount > 20 THEN 'high' ELSE 'low' END AS band,
       CAST(value.amount AS BIGINT) AS whole,
       date_trunc('minute', value.order_time) AS minute
FROM STREAM(orders_ingestion)
WHERE value.customer_id IN ('c1', 'c2') AND value.product LIKE 'b%';`, []string{
			`{"band":"mid","minute":"2024-05-01T12:01:00Z","p":"BOOK","whole":20}`,
			`{"band":"mid","minute":"2024-05-01T12:00:00Z","p":"BOOK","whole":10}`}},
		{"update output mode merges on the primary key", `
CREATE STREAMING TABLE out (PRIMARY KEY (product))
TBLPROPERTIES ('pipelines.output_mode' = 'update') AS
SELECT value.product AS product, count(*) AS n, sum(value.amount) AS total
FROM STREAM(orders_ingestion) GROUP BY value.product;`, []string{`{"n":2,"product":"pen","total":12}`, `{"n":5,"product":"book","total":99}`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			src := e.create("main.demo.orders_ingestion", ordersSchema)
			cust := e.create("main.demo.customers", mustSchema(t, "customer_id STRING, tier STRING"))
			e.appendJSON(cust, `[{"customer_id":"c1","tier":"gold"},{"customer_id":"c2","tier":"silver"}]`)
			e.appendOrders(src, docsOrders[:4]...)
			g := e.compile("main.demo.p", tc.sql)
			r := NewRunner(e.name("main.demo.p"), g, e.store, RunOptions{}, nil)
			defer r.Close()
			if _, err := r.Round(e.ctx, nil); err != nil {
				t.Fatal(err)
			}
			// A second micro-batch: streaming tables add to the first.
			e.appendOrders(src, docsOrders[4:]...)
			if _, err := r.Round(e.ctx, nil); err != nil {
				t.Fatal(err)
			}
			got := e.rows("main.demo.out")
			want := slices.Clone(tc.want)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Fatalf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
		})
	}
}

// TestPrimaryKeyMerge checks feature-table writes: rows merge on (keys,
// timestamp); a newer row for the same key and time replaces the older one,
// new times append.
func TestPrimaryKeyMerge(t *testing.T) {
	e := newEnv(t)
	src := e.create("main.demo.orders_ingestion", ordersSchema)
	g := e.compile("main.demo.p", `
CREATE STREAMING TABLE features (PRIMARY KEY (customer_id, ts TIMESERIES)) AS
SELECT value.customer_id AS customer_id, value.order_time AS ts, value.amount AS last_amount
FROM STREAM(orders_ingestion);`)
	r := NewRunner(e.name("main.demo.p"), g, e.store, RunOptions{}, nil)
	defer r.Close()
	e.appendOrders(src, order{"o1", "c1", "x", 1, at(0, 0)}, order{"o2", "c1", "x", 2, at(1, 0)}, order{"o3", "c1", "x", 3, at(1, 0)})
	if _, err := r.Round(e.ctx, nil); err != nil {
		t.Fatal(err)
	}
	e.appendOrders(src, order{"o4", "c1", "x", 4, at(0, 0)}, order{"o5", "c2", "x", 5, at(0, 0)})
	if _, err := r.Round(e.ctx, nil); err != nil {
		t.Fatal(err)
	}
	got := e.rows("main.demo.features", "customer_id", "ts", "last_amount")
	want := []string{
		`{"customer_id":"c1","last_amount":3,"ts":"2024-05-01T12:01:00Z"}`,
		`{"customer_id":"c1","last_amount":4,"ts":"2024-05-01T12:00:00Z"}`,
		`{"customer_id":"c2","last_amount":5,"ts":"2024-05-01T12:00:00Z"}`,
	}
	if !slices.Equal(got, want) {
		t.Fatalf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// The second round replaced a row: an overwrite that the online sync
	// may apply without clearing the table's online rows first.
	tbl, err := e.store.Load(e.ctx, e.name("main.demo.features"))
	if err != nil {
		t.Fatal(err)
	}
	if p := tbl.SnapshotProperties(); p[publish.PropMerge] != "true" {
		t.Errorf("the merge's snapshot properties %v lack %s=true", p, publish.PropMerge)
	}
}
