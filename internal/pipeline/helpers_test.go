package pipeline

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/sluice-dev/sluice/internal/expr"
	"github.com/sluice-dev/sluice/internal/ident"
	"github.com/sluice-dev/sluice/internal/table"
)

// ordersSchema is the ingestion table of the demo's orders stream.
var ordersSchema = arrow.NewSchema([]arrow.Field{
	{Name: "key", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "value", Type: arrow.StructOf(
		arrow.Field{Name: "order_id", Type: arrow.BinaryTypes.String, Nullable: true},
		arrow.Field{Name: "customer_id", Type: arrow.BinaryTypes.String, Nullable: true},
		arrow.Field{Name: "product", Type: arrow.BinaryTypes.String, Nullable: true},
		arrow.Field{Name: "amount", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
		arrow.Field{Name: "quantity", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		arrow.Field{Name: "order_time", Type: &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}, Nullable: true},
	), Nullable: true},
	{Name: "stream_record_timestamp", Type: &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}, Nullable: true},
	{Name: "kafka_topic", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "kafka_partition", Type: arrow.PrimitiveTypes.Int32, Nullable: true},
	{Name: "kafka_offset", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
	{Name: "record_source", Type: arrow.BinaryTypes.String, Nullable: true},
}, nil)

type env struct {
	t     *testing.T
	dir   string
	store *table.Store
	ctx   context.Context
}

func newEnv(t *testing.T) *env {
	t.Helper()
	dir := t.TempDir()
	e := &env{t: t, dir: dir, ctx: context.Background()}
	e.store = e.open()
	return e
}

// open opens a store on the env's database, as a restarted process would.
func (e *env) open() *table.Store {
	e.t.Helper()
	db, err := table.OpenSQLite(filepath.Join(e.dir, "catalog.db"))
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { db.Close() })
	s, err := table.Open(e.ctx, table.Options{DB: db, Warehouse: filepath.Join(e.dir, "warehouse")}, slog.New(slog.DiscardHandler))
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { s.Close() })
	return s
}

func (e *env) name(s string) ident.Name {
	n, err := ident.Parse(s)
	if err != nil {
		e.t.Fatal(err)
	}
	return n
}

func (e *env) create(name string, sc *arrow.Schema) *table.Table {
	e.t.Helper()
	t, err := e.store.Create(e.ctx, e.name(name), sc, table.CreateOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	return t
}

// appendJSON appends rows given as a JSON array to t, in one commit.
func (e *env) appendJSON(t *table.Table, js string) {
	e.t.Helper()
	rec, _, err := array.RecordFromJSON(memory.DefaultAllocator, t.ArrowSchema(), strings.NewReader(js))
	if err != nil {
		e.t.Fatal(err)
	}
	defer rec.Release()
	if err := t.Append(e.ctx, []arrow.RecordBatch{rec}, nil); err != nil {
		e.t.Fatal(err)
	}
}

// order is one demo order for appendOrders.
type order struct {
	id, customer, product string
	amount                float64
	at                    time.Time
}

func (e *env) appendOrders(t *table.Table, orders ...order) {
	e.t.Helper()
	var b strings.Builder
	b.WriteString("[")
	for i, o := range orders {
		if i > 0 {
			b.WriteString(",")
		}
		cust := "null"
		if o.customer != "" {
			cust = fmt.Sprintf("%q", o.customer)
		}
		fmt.Fprintf(&b, `{"key":%q,"value":{"order_id":%q,"customer_id":%s,"product":%q,"amount":%v,"quantity":1,"order_time":%q},"stream_record_timestamp":%q,"kafka_topic":"orders","kafka_partition":0,"kafka_offset":%d,"record_source":"stream"}`,
			o.id, o.id, cust, o.product, o.amount, o.at.UTC().Format(time.RFC3339Nano), o.at.UTC().Format(time.RFC3339Nano), i)
	}
	b.WriteString("]")
	e.appendJSON(t, b.String())
}

func (e *env) compile(name, src string) *Graph {
	e.t.Helper()
	n := e.name(name)
	m := NewManager(ManagerOptions{Store: e.store}, nil)
	g, err := m.Compile(e.ctx, n, src)
	if err != nil {
		e.t.Fatalf("compile: %v", err)
	}
	return g
}

// rows returns every row of table name as JSON lines, sorted.
func (e *env) rows(name string, cols ...string) []string {
	e.t.Helper()
	t, err := e.store.Load(e.ctx, e.name(name))
	if err != nil {
		e.t.Fatal(err)
	}
	rdr, err := t.Scan(e.ctx, table.ScanOptions{Columns: cols})
	if err != nil {
		e.t.Fatal(err)
	}
	defer rdr.Release()
	var out []string
	for rdr.Next() {
		var buf bytes.Buffer
		if err := array.RecordToJSON(rdr.RecordBatch(), &buf); err != nil {
			e.t.Fatal(err)
		}
		for l := range strings.Lines(buf.String()) {
			out = append(out, strings.TrimSpace(l))
		}
	}
	if err := rdr.Err(); err != nil {
		e.t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

var t0 = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)

func at(min, sec int) time.Time {
	return t0.Add(time.Duration(min)*time.Minute + time.Duration(sec)*time.Second)
}

// mustSchema reads a schema written as Spark DDL ("a STRING, b DOUBLE").
func mustSchema(t *testing.T, ddl string) *arrow.Schema {
	t.Helper()
	dt, err := expr.ParseSchema(ddl)
	if err != nil {
		t.Fatal(err)
	}
	fields := dt.(*arrow.StructType).Fields()
	for i := range fields {
		fields[i].Nullable = true
	}
	return arrow.NewSchema(fields, nil)
}
