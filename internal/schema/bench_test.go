package schema

import (
	"testing"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// ordersSchema is the orders stream payload schema used by benchmarks,
// tests and the fuzzer.
const ordersSchema = `{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "title": "order",
  "type": "object",
  "properties": {
    "order_id":    {"type": "string"},
    "customer_id": {"type": "string"},
    "product":     {"type": "string"},
    "amount":      {"type": "number"},
    "quantity":    {"type": "integer"},
    "order_time":  {"type": "string", "format": "date-time"}
  },
  "required": ["order_id", "amount", "order_time"]
}`

// ordersPayload is a typical ~200-byte order event.
const ordersPayload = `{"order_id":"ord-2024-000123456","customer_id":"cust-0098765",` +
	`"product":"Wireless Noise-Cancelling Headphones, Midnight Blue","amount":249.99,` +
	`"quantity":2,"order_time":"2024-05-01T12:30:45.123456Z"}`

func benchAppend(b *testing.B, schema string) {
	s, err := Compile([]byte(schema))
	if err != nil {
		b.Fatal(err)
	}
	d := s.NewDecoder()
	bld := array.NewBuilder(memory.DefaultAllocator, s.ArrowType())
	defer bld.Release()
	data := []byte(ordersPayload)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	const batch = 4096 // rows per Arrow batch, as an ingest loop would cut them
	for i := 0; b.Loop(); i++ {
		if err := d.Append(bld, data); err != nil {
			b.Fatal(err)
		}
		if i%batch == batch-1 {
			bld.NewArray().Release()
		}
	}
}

// BenchmarkAppendColumn decodes the orders payload into a Column.
func BenchmarkAppendColumn(b *testing.B) {
	s := mustCompile(b, ordersSchema)
	d := s.NewDecoder()
	c := s.NewColumn()
	data := []byte(ordersPayload)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	const batch = 4096 // rows per Arrow batch, as an ingest loop would cut them
	for i := 0; b.Loop(); i++ {
		if err := d.AppendColumn(c, data); err != nil {
			b.Fatal(err)
		}
		if i%batch == batch-1 {
			c.NewArray().Release()
		}
	}
}

// BenchmarkAppend decodes the orders payload with the decoder alone.
func BenchmarkAppend(b *testing.B) { benchAppend(b, ordersSchema) }

// BenchmarkAppendFullValidator decodes the same payload with a schema that
// adds "minimum", so every record also goes through the full validator.
func BenchmarkAppendFullValidator(b *testing.B) {
	benchAppend(b, `{"type":"object","properties":{"order_id":{"type":"string"},"customer_id":{"type":"string"},`+
		`"product":{"type":"string"},"amount":{"type":"number","minimum":0},"quantity":{"type":"integer"},`+
		`"order_time":{"type":"string","format":"date-time"}},"required":["order_id","amount","order_time"]}`)
}

// BenchmarkParse measures the decode pass alone (syntax, schema checks,
// tape), without appending to builders.
func BenchmarkParse(b *testing.B) {
	s, err := Compile([]byte(ordersSchema))
	if err != nil {
		b.Fatal(err)
	}
	d := s.NewDecoder()
	data := []byte(ordersPayload)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		d.b, d.tape, d.idx, d.buf = data, d.tape[:0], d.idx[:0], d.buf[:0]
		d.i = 0
		if vio := d.parse(s.root, 1); vio != nil {
			b.Fatal(vio.reason)
		}
	}
}
