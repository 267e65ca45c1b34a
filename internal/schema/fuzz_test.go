package schema

import (
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"unicode/utf8"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// FuzzDecode feeds arbitrary bytes to a decoder for the orders schema,
// between two valid records. Invariants:
//   - Append never panics;
//   - on error, the error is a *DecodeError and the builder length is
//     unchanged;
//   - on success, the builder grows by exactly one row;
//   - accepted ⇒ the reference validator (formats asserted) accepts, and
//     the row's order_id and amount are what encoding/json reads;
//   - the record after it decodes as usual, and the array is valid;
//   - AppendColumn agrees with Append: same error, equal arrays.
func FuzzDecode(f *testing.F) {
	for _, seed := range []string{
		ordersPayload,
		`{"order_id":"a","amount":1,"order_time":"2024-05-01T00:00:00Z"}`,
		`{"order_id":"a","amount":1.0e2,"quantity":3.0,"order_time":"2016-12-31T23:59:60Z","x":[{"y":null}]}`,
		`{"order_id":"\u00e9\ud83d\ude00","amount":-0,"order_time":"2024-05-01T00:00:00.5-23:59"}`,
		`{"order_id":"a","amount":1,"order_time":"2024-02-30T00:00:00Z"}`,
		`{"order_id":null,"amount":"1","order_time":1}`,
		`{"order_id":"a","amount":NaN}`,
		`{"order_id":"a","order_id":"b","amount":1,"order_time":"2024-05-01T00:00:00Z"}`,
		`[]`, `null`, `"x"`, ``, `{`, "{\"order_id\":\"\xff\"}", `{"order_id":"\ud800"}`,
	} {
		f.Add([]byte(seed))
	}
	s := mustCompile(f, ordersSchema)
	ref := reference(f, ordersSchema)
	valid := []byte(`{"order_id":"last","amount":2.5,"order_time":"2024-05-01T00:00:00Z"}`)
	f.Fuzz(func(t *testing.T, data []byte) {
		d := s.NewDecoder()
		b := array.NewBuilder(memory.DefaultAllocator, s.ArrowType())
		defer b.Release()
		c := s.NewColumn()
		if err := d.Append(b, valid); err != nil {
			t.Fatal(err)
		}
		if err := d.AppendColumn(c, valid); err != nil {
			t.Fatal(err)
		}
		err := d.Append(b, data)
		if cerr := d.AppendColumn(c, data); fmt.Sprint(cerr) != fmt.Sprint(err) {
			t.Fatalf("AppendColumn error = %v, Append error = %v", cerr, err)
		}
		if err != nil {
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("error %v is a %T, want *DecodeError", err, err)
			}
			if b.Len() != 1 {
				t.Fatalf("rejected (%v), but the builder length is %d, want 1", err, b.Len())
			}
		} else {
			if b.Len() != 2 {
				t.Fatalf("accepted, but the builder length is %d, want 2", b.Len())
			}
			if ok, refErr := refAccepts(ref, data); !ok {
				t.Fatalf("accepted %q, which the reference rejects: %v", data, refErr)
			}
			if !utf8.Valid(data) {
				t.Fatalf("accepted invalid UTF-8 %q", data)
			}
		}
		if err := d.Append(b, valid); err != nil {
			t.Fatal(err)
		}
		if err := d.AppendColumn(c, valid); err != nil {
			t.Fatal(err)
		}
		arr := b.NewArray()
		defer arr.Release()
		sameArrays(t, arr, c)
		if err := array.ValidateFull(arr); err != nil {
			t.Fatalf("invalid array: %v", err)
		}
		if got := rowJSON(t, arr, arr.Len()-1); got !=
			`{"amount":2.5,"customer_id":null,"order_id":"last","order_time":"2024-05-01T00:00:00Z","product":null,"quantity":null}` {
			t.Fatalf("row after the fuzzed record = %s", got)
		}
		if err == nil {
			var want, got map[string]any // not structs: those match keys case-insensitively
			if jerr := json.Unmarshal(data, &want); jerr != nil {
				t.Fatalf("accepted %q, which encoding/json rejects: %v", data, jerr)
			}
			if jerr := json.Unmarshal([]byte(rowJSON(t, arr, 1)), &got); jerr != nil {
				t.Fatal(jerr)
			}
			for _, k := range []string{"order_id", "amount"} {
				if !jsonEqual(got[k], want[k]) {
					t.Fatalf("row %s = %v, record %q has %v", k, got[k], data, want[k])
				}
			}
		}
	})
}

// FuzzScan checks the JSON scanner against encoding/json: whatever the
// scanner accepts is valid JSON and valid UTF-8; and valid JSON that is
// valid UTF-8 without \u escapes (which may be lone surrogates) is accepted.
func FuzzScan(f *testing.F) {
	for _, seed := range []string{ordersPayload, `[1,2.5e-3,-0,true,false,null,{"a":{}}]`, `"\ud83d\ude00"`, `01`, `1.`, `{"a" 1}`, " \t\n1\r"} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		err := scanJSON(data)
		std := json.Valid(data) && utf8.Valid(data)
		if err == nil && !std {
			t.Fatalf("scanner accepts %q, encoding/json does not", data)
		}
		if err != nil && std && !containsUEscape(data) {
			t.Fatalf("scanner rejects %q: %v", data, err)
		}
		if err != nil && (err.off < 0 || err.off > len(data)) {
			t.Fatalf("error offset %d out of range", err.off)
		}
	})
}

func containsUEscape(b []byte) bool {
	for i := 0; i+1 < len(b); i++ {
		if b[i] == '\\' && b[i+1] == 'u' {
			return true
		}
	}
	return false
}
