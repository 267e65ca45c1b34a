package expr

import (
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/sluice-dev/sluice/internal/sql"
)

// The test scope: table o (an order with a JSON-ish struct, as the
// pipelines read from Kafka) joined with table c (a customer). amount is
// in both, so a bare amount is ambiguous.
var (
	valueType = arrow.StructOf(
		arrow.Field{Name: "order_id", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		arrow.Field{Name: "customer_id", Type: arrow.BinaryTypes.String, Nullable: true},
		arrow.Field{Name: "amount", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
		arrow.Field{Name: "nested", Type: arrow.StructOf(arrow.Field{Name: "x", Type: arrow.PrimitiveTypes.Int32, Nullable: true}), Nullable: true},
	)
	oSchema = arrow.NewSchema([]arrow.Field{
		{Name: "order_id", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		{Name: "amount", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
		{Name: "product", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "order_time", Type: &arrow.TimestampType{Unit: arrow.Millisecond}, Nullable: true},
		{Name: "qty", Type: arrow.PrimitiveTypes.Int32, Nullable: true},
		{Name: "value", Type: valueType, Nullable: true},
		{Name: "tags", Type: arrow.ListOf(arrow.BinaryTypes.String), Nullable: true},
		{Name: "attrs", Type: arrow.MapOf(arrow.BinaryTypes.String, arrow.BinaryTypes.String), Nullable: true},
		{Name: "ok", Type: arrow.FixedWidthTypes.Boolean, Nullable: true},
		{Name: "day", Type: arrow.FixedWidthTypes.Date32, Nullable: true},
		{Name: "payload", Type: arrow.BinaryTypes.LargeString, Nullable: true},
	}, nil)
	cSchema = arrow.NewSchema([]arrow.Field{
		{Name: "customer_id", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "amount", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	}, nil)
)

const oRows = `[
{"order_id": 1, "amount": 10.5, "product": "Apple", "order_time": "2024-03-10T12:34:56.789", "qty": 3,
 "value": {"order_id": 1, "customer_id": "c1", "amount": 10.5, "nested": {"x": 7}},
 "tags": ["a", "b"], "attrs": [{"key": "k", "value": "v"}], "ok": true, "day": "2024-03-10",
 "payload": "{\"a\": 1, \"b\": \"x\", \"c\": {\"d\": [1, 2]}}"},
{"order_id": 2, "amount": -3, "product": "banana", "order_time": "2024-01-01T00:00:00", "qty": 0,
 "value": {"order_id": 2, "customer_id": null, "amount": 20, "nested": null},
 "tags": [], "attrs": [], "ok": false, "day": "2024-01-01", "payload": "not json"},
{"order_id": null, "amount": null, "product": null, "order_time": null, "qty": null, "value": null,
 "tags": null, "attrs": null, "ok": null, "day": null, "payload": null}
]`

const cRows = `[{"customer_id": "c1", "amount": 100}, {"customer_id": "c2", "amount": null}, {"customer_id": null, "amount": 1.5}]`

func testScope() *Scope {
	return NewScope(oSchema, "o").Concat(NewScope(cSchema, "c"))
}

// testBatch is o's and c's rows side by side: 3 rows, 13 columns.
func testBatch(t testing.TB) arrow.RecordBatch {
	t.Helper()
	o, _, err := array.RecordFromJSON(memory.DefaultAllocator, oSchema, strings.NewReader(oRows))
	if err != nil {
		t.Fatal(err)
	}
	defer o.Release()
	c, _, err := array.RecordFromJSON(memory.DefaultAllocator, cSchema, strings.NewReader(cRows))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Release()
	fields := append(append([]arrow.Field{}, oSchema.Fields()...), cSchema.Fields()...)
	cols := append(append([]arrow.Array{}, o.Columns()...), c.Columns()...)
	return array.NewRecordBatch(arrow.NewSchema(fields, nil), cols, 3)
}

var testNow = time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)

// bindText parses and binds src.
func bindText(src string, s *Scope) (Expr, error) {
	pe, err := sql.ParseExpr(src)
	if err != nil {
		return nil, err
	}
	return Bind(pe, s)
}

// evalText binds src against s, evaluates it on batch and prints the rows
// separated by " | ", or the error.
func evalText(t testing.TB, src string, s *Scope, batch arrow.RecordBatch) (string, Expr) {
	t.Helper()
	e, err := bindText(src, s)
	if err != nil {
		return "error: " + err.Error(), nil
	}
	mem := memory.NewCheckedAllocator(memory.DefaultAllocator)
	out, err := e.Eval(&Ctx{Mem: mem, Now: testNow}, batch)
	if err != nil {
		return "eval error: " + err.Error(), e
	}
	if out.Len() != int(batch.NumRows()) {
		t.Errorf("%s: %d rows, want %d", src, out.Len(), batch.NumRows())
	}
	if !arrow.TypeEqual(out.DataType(), e.Type()) {
		t.Errorf("%s: result type %s, Type() says %s", src, out.DataType(), e.Type())
	}
	rows := make([]string, out.Len())
	for i := range rows {
		rows[i] = FormatValue(out, i)
	}
	out.Release()
	mem.AssertSize(t, 0)
	return strings.Join(rows, " | "), e
}
