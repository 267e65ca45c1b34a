package schema

import (
	"testing"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// TestCheckAgreesWithAppend: Check accepts exactly what Append accepts,
// with the same error, and appends nothing.
func TestCheckAgreesWithAppend(t *testing.T) {
	s, err := Compile([]byte(`{"type":"object","properties":{"id":{"type":"string"},"n":{"type":"integer","minimum":0}},"required":["id"]}`))
	if err != nil {
		t.Fatal(err)
	}
	docs := map[string]string{
		"valid":       `{"id":"a","n":3}`,
		"wrong type":  `{"id":1}`,
		"missing":     `{"n":1}`,
		"minimum":     `{"id":"a","n":-1}`,
		"not json":    `{"id":`,
		"extra props": `{"id":"a","zzz":[1,2]}`,
	}
	d := s.NewDecoder()
	for name, doc := range docs {
		t.Run(name, func(t *testing.T) {
			b := array.NewBuilder(memory.NewGoAllocator(), s.ArrowType())
			defer b.Release()
			cerr := d.Check([]byte(doc))
			if b.Len() != 0 {
				t.Fatal("Check appended")
			}
			aerr := d.Append(b, []byte(doc))
			if (cerr == nil) != (aerr == nil) || cerr != nil && cerr.Error() != aerr.Error() {
				t.Fatalf("Check = %v, Append = %v", cerr, aerr)
			}
		})
	}
}
