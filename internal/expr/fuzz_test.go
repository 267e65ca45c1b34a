package expr

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/sluice-dev/sluice/internal/sql"
)

// FuzzBind parses arbitrary text as an expression, binds it against the
// test scope and evaluates it on the test batch and on a slice of it
// (non-zero offsets). Invariants:
//   - nothing panics;
//   - a bound expression's Eval returns Type() and one row per input row,
//     or an error;
//   - evaluation leaks no memory;
//   - binding errors are *Error.
//
// The seed corpus is every expression of the golden files and the tests.
func FuzzBind(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.golden")
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		for _, c := range parseGolden(string(data)) {
			f.Add(c.input)
		}
	}
	for _, s := range fuzzSeeds {
		f.Add(s)
	}
	batch := testBatch(f)
	defer batch.Release()
	slice := batch.NewSlice(1, 3)
	defer slice.Release()
	scope := testScope()
	f.Fuzz(func(t *testing.T, src string) {
		pe, err := sql.ParseExpr(src)
		if err != nil {
			return
		}
		e, err := Bind(pe, scope)
		if err != nil {
			if _, ok := err.(*Error); !ok {
				t.Fatalf("%q: error of type %T: %v", src, err, err)
			}
			return
		}
		_ = e.String()
		for _, in := range []arrow.RecordBatch{batch, slice} {
			mem := memory.NewCheckedAllocator(memory.DefaultAllocator)
			out, err := e.Eval(&Ctx{Mem: mem, Now: testNow}, in)
			if err != nil {
				continue
			}
			if out.Len() != int(in.NumRows()) {
				t.Fatalf("%q: %d rows from %d", src, out.Len(), in.NumRows())
			}
			if !arrow.TypeEqual(out.DataType(), e.Type()) {
				t.Fatalf("%q: result %s, Type() %s", src, out.DataType(), e.Type())
			}
			for i := range out.Len() {
				_ = FormatValue(out, i)
			}
			out.Release()
			mem.AssertSize(t, 0)
		}
	})
}

var fuzzSeeds = []string{
	"o.amount * 2 > 10 AND product LIKE 'a%'",
	"CASE WHEN ok THEN tags[0] ELSE lower(product) END",
	"from_json(payload, 'a INT, c STRUCT<d: ARRAY<INT>>').c.d[1] + 1",
	"date_trunc('month', order_time + INTERVAL 1 MONTH)",
	"coalesce(value.nested.x, qty, 0) % 2 = 0",
	"substring(product, -3, 2) || concat_ws(',', tags)",
	"to_timestamp('2024-01-02 03:04', 'yyyy-MM-dd HH:mm')",
	"get_json_object(payload, '$.c.d[0]')",
	"order_id IN (1, 2, NULL) OR NOT ok",
	"greatest(order_time, day)",
	"struct(order_id, product).product",
	"array(1, order_id, qty)[2]",
	"attrs['k'] IS NULL",
}
