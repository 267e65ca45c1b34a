package schema_test

import (
	"encoding/json"
	"fmt"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/sluice-dev/sluice/internal/schema"
)

func Example() {
	s, err := schema.Compile([]byte(`{
	  "type": "object",
	  "properties": {
	    "order_id": {"type": "string"},
	    "amount":   {"type": "number"},
	    "at":       {"type": "string", "format": "date-time"}
	  },
	  "required": ["order_id"]
	}`))
	if err != nil {
		panic(err)
	}
	fmt.Println(s.ArrowType())

	b := array.NewBuilder(memory.DefaultAllocator, s.ArrowType())
	defer b.Release()
	d := s.NewDecoder() // one per goroutine
	d.SetRoot("value")
	for _, msg := range []string{
		`{"order_id":"o-1","amount":12.5,"at":"2024-05-01T12:30:00+02:00"}`,
		`{"order_id":"o-2","amount":"12.5"}`,
		`{"amount":1}`,
	} {
		if err := d.Append(b, []byte(msg)); err != nil {
			fmt.Println("rejected:", err)
		}
	}
	_ = d.Append(b, nil) // a Kafka record without a value
	arr := b.NewArray()
	defer arr.Release()
	for i := range arr.Len() {
		row, _ := json.Marshal(arr.GetOneForMarshal(i))
		fmt.Println(string(row))
	}
	// Output:
	// struct<order_id: utf8 nullable, amount: float64 nullable, at: timestamp[us, tz=UTC] nullable>
	// rejected: value.amount: expected number, got string "12.5"
	// rejected: value.order_id: required property missing
	// {"amount":12.5,"at":"2024-05-01T10:30:00Z","order_id":"o-1"}
	// null
}
