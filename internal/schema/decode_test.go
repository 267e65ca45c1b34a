package schema

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// shopSchema exercises every mapping the decoder handles natively.
const shopSchema = `{
  "type": "object",
  "properties": {
    "id":       {"type": "string"},
    "amount":   {"type": "number"},
    "qty":      {"type": ["integer", "null"]},
    "paid":     {"type": "boolean"},
    "at":       {"type": "string", "format": "date-time"},
    "day":      {"type": "string", "format": "date"},
    "customer": {"type": "object", "properties": {"name": {"type": "string"}, "tier": {"type": "integer"}}, "required": ["name"]},
    "items":    {"type": "array", "items": {"$ref": "#/$defs/item"}},
    "tags":     {"type": "array", "items": {"type": "string"}},
    "meta":     {"type": "object"},
    "note":     {"anyOf": [{"type": "string"}, {"type": "null"}]}
  },
  "required": ["id", "amount"],
  "$defs": {
    "item": {"type": "object", "properties": {"sku": {"type": "string"}, "price": {"type": "number"}},
             "required": ["sku"], "additionalProperties": false}
  }
}`

// rowJSON renders row i of arr as JSON (object keys sorted).
func rowJSON(t *testing.T, arr arrow.Array, i int) string {
	t.Helper()
	b, err := json.Marshal(arr.GetOneForMarshal(i))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func mustCompile(t testing.TB, schema string) *Schema {
	t.Helper()
	s, err := Compile([]byte(schema))
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	return s
}

func TestAppend(t *testing.T) {
	tests := map[string]struct {
		schema string
		root   string // SetRoot
		data   *string
		want   string // the row as JSON, when the record is accepted
		err    string // the whole DecodeError message, when it is rejected
	}{
		"valid record": {
			schema: shopSchema,
			data: ptr(`{"id":"o1","amount":12.5,"qty":3,"paid":true,"at":"2024-05-01T12:30:45.123456+02:00","day":"2024-02-29",` +
				`"customer":{"name":"Ada","tier":2},"items":[{"sku":"a","price":1},{"sku":"b"}],"tags":["x","y"],` +
				`"meta":{"k": [1, 2]},"note":"hi"}`),
			want: `{"amount":12.5,"at":"2024-05-01T10:30:45.123456Z","customer":{"name":"Ada","tier":2},"day":"2024-02-29",` +
				`"id":"o1","items":[{"price":1,"sku":"a"},{"price":null,"sku":"b"}],"meta":"{\"k\": [1, 2]}","note":"hi",` +
				`"paid":true,"qty":3,"tags":["x","y"]}`,
		},
		"missing properties are null": {
			schema: shopSchema,
			data:   ptr(`{"id":"o2","amount":1}`),
			want: `{"amount":1,"at":null,"customer":null,"day":null,"id":"o2","items":null,"meta":null,"note":null,` +
				`"paid":null,"qty":null,"tags":null}`,
		},
		"properties not in the schema are ignored": {
			schema: shopSchema,
			data:   ptr(`{"id":"o3","extra":{"deep":[1,{"x":null}]},"amount":2,"more":"\u00e9"}`),
			want: `{"amount":2,"at":null,"customer":null,"day":null,"id":"o3","items":null,"meta":null,"note":null,` +
				`"paid":null,"qty":null,"tags":null}`,
		},
		"nil data is a null row": {
			schema: shopSchema,
			data:   nil,
			want:   `null`,
		},
		"null where the type allows it": {
			schema: shopSchema,
			data:   ptr(`{"id":"o4","amount":1,"qty":null,"note":null}`),
			want: `{"amount":1,"at":null,"customer":null,"day":null,"id":"o4","items":null,"meta":null,"note":null,` +
				`"paid":null,"qty":null,"tags":null}`,
		},
		"null where the type does not allow it": {
			schema: shopSchema,
			data:   ptr(`{"id":"o5","amount":null}`),
			err:    `amount: expected number, got null`,
		},
		"wrong type at a nested path": {
			schema: shopSchema,
			data:   ptr(`{"id":"o6","amount":1,"items":[{"sku":"a"},{"sku":"b","price":"abc"}]}`),
			err:    `items[1].price: expected number, got string "abc"`,
		},
		"root name prefixes the path": {
			schema: shopSchema,
			root:   "value",
			data:   ptr(`{"id":"o7","amount":"abc"}`),
			err:    `value.amount: expected number, got string "abc"`,
		},
		"required property missing": {
			schema: shopSchema,
			data:   ptr(`{"amount":1}`),
			err:    `id: required property missing`,
		},
		"required property missing in a nested object": {
			schema: shopSchema,
			data:   ptr(`{"id":"o8","amount":1,"customer":{"tier":1}}`),
			err:    `customer.name: required property missing`,
		},
		"additionalProperties false": {
			schema: shopSchema,
			data:   ptr(`{"id":"o9","amount":1,"items":[{"sku":"a","colour":"red"}]}`),
			err:    `items[0].colour: property not allowed (additionalProperties is false)`,
		},
		"integer written as 2.0 and 1e2": {
			schema: `{"type":"array","items":{"type":"integer"}}`,
			data:   ptr(`[2.0, 1e2, -0, 9223372036854775807, -9223372036854775808, 12300e-2]`),
			want:   `[2,100,0,9223372036854775807,-9223372036854775808,123]`,
		},
		"integer with a fraction": {
			schema: shopSchema,
			data:   ptr(`{"id":"o10","amount":1,"qty":2.5}`),
			err:    `qty: expected integer or null, got number 2.5`,
		},
		"integer out of range": {
			schema: shopSchema,
			data:   ptr(`{"id":"o11","amount":1,"qty":9223372036854775808}`),
			err:    `qty: number 9223372036854775808 is out of the int64 range`,
		},
		"number out of range": {
			schema: shopSchema,
			data:   ptr(`{"id":"o12","amount":1e999}`),
			err:    `amount: number 1e999 is out of the float64 range`,
		},
		"invalid date-time": {
			schema: shopSchema,
			data:   ptr(`{"id":"o13","amount":1,"at":"2024-13-01T00:00:00Z"}`),
			err:    `at: invalid date-time "2024-13-01T00:00:00Z": month out of range`,
		},
		"invalid date": {
			schema: shopSchema,
			data:   ptr(`{"id":"o14","amount":1,"day":"2023-02-29"}`),
			err:    `day: invalid date "2023-02-29": day out of range`,
		},
		"string escapes": {
			schema: `{"type":"object","properties":{"s":{"type":"string"}}}`,
			data:   ptr(`{"s":"caf\u00e9 \"q\" \ud83d\ude00 \\ \/ \n"}`),
			want:   `{"s":"café \"q\" 😀 \\ / \n"}`,
		},
		"root string reads the bytes as text": {
			schema: `{"type":"string"}`,
			data:   ptr(`u1 "quoted"`),
			want:   `"u1 \"quoted\""`,
		},
		"root string with a pattern validates the text": {
			schema: `{"type":"string","pattern":"^u[0-9]+$"}`,
			data:   ptr(`u12`),
			want:   `"u12"`,
		},
		"JSON text keeps the source bytes": {
			schema: `{"type":"object","properties":{"any":{}}}`,
			data:   ptr(`{"any": [ 1, "a\u0041", {"b" :null} ] }`),
			want:   `{"any":"[ 1, \"a\\u0041\", {\"b\" :null} ]"}`,
		},
		"JSON text of the wrong type": {
			schema: `{"type":"object","properties":{"meta":{"type":"object"}}}`,
			data:   ptr(`{"meta":[1]}`),
			err:    `meta: expected object, got array`,
		},
		"repeated key: the last one wins": {
			schema: `{"type":"object","properties":{"a":{"type":"integer"}}}`,
			data:   ptr(`{"a":1,"a":2}`),
			want:   `{"a":2}`,
		},
		"root of the wrong type": {
			schema: shopSchema,
			data:   ptr(`[1,2]`),
			err:    `expected object, got array`,
		},
		"invalid JSON": {
			schema: shopSchema,
			data:   ptr(`{"id":"o15","amount":1,}`),
			err:    `invalid JSON at byte 23: unexpected '}' looking for beginning of object key`,
		},
		"invalid JSON after a schema violation": {
			schema: shopSchema,
			data:   ptr(`{"id":5,"amount":1`),
			err:    `invalid JSON at byte 18: unexpected end of input`,
		},
		"NaN is not JSON": {
			schema: shopSchema,
			data:   ptr(`{"id":"x","amount":NaN}`),
			err:    `invalid JSON at byte 19: unexpected 'N' looking for beginning of value`,
		},
		"control character in a string": {
			schema: `{"type":"object","properties":{"s":{"type":"string"}}}`,
			data:   ptr("{\"s\":\"a\tb\"}"),
			err:    `invalid JSON at byte 7: control character 0x09 in string`,
		},
		"invalid UTF-8 in a string": {
			schema: `{"type":"object","properties":{"s":{"type":"string"}}}`,
			data:   ptr("{\"s\":\"a\xffb\"}"),
			err:    `invalid JSON at byte 7: invalid UTF-8 in string`,
		},
		"invalid UTF-8 in a root string": {
			schema: `{"type":"string"}`,
			data:   ptr("a\xffb"),
			err:    `invalid UTF-8 at byte 1`,
		},
		"root string failing its pattern": {
			schema: `{"type":"string","pattern":"^u[0-9]+$"}`,
			data:   ptr(`x1`),
			err:    `'x1' does not match pattern '^u[0-9]+$'`,
		},
		"lone surrogate escape": {
			schema: `{"type":"object","properties":{"s":{"type":"string"}}}`,
			data:   ptr(`{"s":"\ud800x"}`),
			err:    `invalid JSON at byte 6: lone UTF-16 surrogate in \u escape`,
		},
		"trailing data": {
			schema: `{"type":"integer"}`,
			data:   ptr(`1 2`),
			err:    `invalid JSON at byte 2: unexpected '2' after top-level value`,
		},
		"empty record is not JSON": {
			schema: `{"type":"integer"}`,
			data:   ptr(``),
			err:    `invalid JSON at byte 0: unexpected end of input`,
		},
		"keyword checked by the full validator": {
			schema: `{"type":"object","properties":{"amount":{"type":"number","minimum":0}}}`,
			data:   ptr(`{"amount":-1}`),
			err:    `amount: minimum: got -1, want 0`,
		},
		"same record without the keyword is accepted": {
			schema: `{"type":"object","properties":{"amount":{"type":"number"}}}`,
			data:   ptr(`{"amount":-1}`),
			want:   `{"amount":-1}`,
		},
		"full validator error inside an array": {
			schema: `{"type":"object","properties":{"tags":{"type":"array","items":{"type":"string","maxLength":2}}}}`,
			root:   "value",
			data:   ptr(`{"tags":["ab","abc"]}`),
			err:    `value.tags[1]: maxLength: got 3, want 2`,
		},
		"full validator accepts a valid record": {
			schema: `{"type":"object","properties":{"s":{"type":"string","enum":["a","b"]}}}`,
			data:   ptr(`{"s":"b"}`),
			want:   `{"s":"b"}`,
		},
		"plain text": {
			schema: ``,
			data:   ptr(`hello, {not json}`),
			want:   `"hello, {not json}"`,
		},
		"plain empty value": {
			schema: ``,
			data:   ptr(``),
			want:   `""`,
		},
		"plain nil": {
			schema: ``,
			data:   nil,
			want:   `null`,
		},
		"plain invalid UTF-8": {
			schema: ``,
			root:   "key",
			data:   ptr("ab\xc3"),
			err:    `key: invalid UTF-8 at byte 2`,
		},
		"odd key in a path": {
			schema: `{"type":"object","properties":{"a b":{"type":"object","properties":{"x.y":{"type":"boolean"}}}}}`,
			data:   ptr(`{"a b":{"x.y":1}}`),
			err:    `["a b"]["x.y"]: expected boolean, got number 1`,
		},
		"keys that need escaping or are long": {
			schema: `{"type":"object","properties":{"a\"b":{"type":"integer"},"c":{"type":"integer"},` +
				`"a_rather_long_property_name":{"type":"integer"},"\u00e9t\u00e9":{"type":"integer"}}}`,
			data: ptr(`{"a\"b":1,"c":2,"x":3,"a_rather_long_property_name":4,"\u00e9t\u00e9":5}`),
			want: `{"a\"b":1,"a_rather_long_property_name":4,"c":2,"été":5}`,
		},
		"keys that need escaping, out of order": {
			schema: `{"type":"object","properties":{"a\"b":{"type":"integer"},"c":{"type":"integer"},"été":{"type":"integer"}}}`,
			data:   ptr(`{"x":0,"été":5,"c":2, "a\"b" :1}`),
			want:   `{"a\"b":1,"c":2,"été":5}`,
		},
		"keys near the end of the record": {
			schema: `{"type":"object","properties":{"a":{"type":"integer"},"b":{"type":"integer"}}}`,
			data:   ptr(`{"a":1,"b":2}`),
			want:   `{"a":1,"b":2}`,
		},
		"null column": {
			schema: `{"type":"object","properties":{"n":{"type":"null"}}}`,
			data:   ptr(`{"n":null}`),
			want:   `{"n":null}`,
		},
		"null column with a value": {
			schema: `{"type":"object","properties":{"n":{"type":"null"}}}`,
			data:   ptr(`{"n":0}`),
			err:    `n: expected null, got number 0`,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			s := mustCompile(t, tc.schema)
			d := s.NewDecoder()
			d.SetRoot(tc.root)
			b := array.NewBuilder(memory.DefaultAllocator, s.ArrowType())
			defer b.Release()
			var data []byte
			if tc.data != nil {
				data = []byte(*tc.data)
			}
			err := d.Append(b, data)
			c := s.NewColumn()
			if cerr := d.AppendColumn(c, data); fmt.Sprint(cerr) != fmt.Sprint(err) {
				t.Fatalf("AppendColumn error = %v, Append error = %v", cerr, err)
			}
			if tc.err != "" {
				var de *DecodeError
				if !errors.As(err, &de) {
					t.Fatalf("Append error = %v (%T), want a *DecodeError", err, err)
				}
				if de.Error() != tc.err {
					t.Errorf("Append error:\n got %s\nwant %s", de.Error(), tc.err)
				}
				if b.Len() != 0 || c.Len() != 0 {
					t.Errorf("builder length %d, column length %d after an error, want 0", b.Len(), c.Len())
				}
				return
			}
			if err != nil {
				t.Fatalf("Append: %v", err)
			}
			arr := b.NewArray()
			defer arr.Release()
			if arr.Len() != 1 {
				t.Fatalf("array length %d, want 1", arr.Len())
			}
			if got := rowJSON(t, arr, 0); got != tc.want {
				t.Errorf("row:\n got %s\nwant %s", got, tc.want)
			}
			sameArrays(t, arr, c)
		})
	}
}

func ptr(s string) *string { return &s }

// TestAppendAfterErrors interleaves rejected records with accepted ones and
// checks that every rejection leaves the builder exactly as it was.
func TestAppendAfterErrors(t *testing.T) {
	if !mustCompile(t, withFallback(shopSchema)).NeedsValidator() {
		t.Fatal("withFallback did not add a keyword")
	}
	for _, schema := range []string{shopSchema, ordersSchema, withFallback(shopSchema)} {
		s := mustCompile(t, schema)
		d := s.NewDecoder()
		mem := memory.NewCheckedAllocator(memory.DefaultAllocator)
		b := array.NewBuilder(mem, s.ArrowType())
		c := s.NewColumn()
		records := []struct {
			data string
			ok   bool
		}{
			{`{"id":"a","amount":1,"items":[{"sku":"s1"}],"customer":{"name":"n"},"order_id":"o","order_time":"2024-01-01T00:00:00Z"}`, true},
			{`{"id":"b","amount":2,"items":[{"sku":"s2"},{"sku":7}],"order_id":"o","order_time":"2024-01-01T00:00:00Z"}`, false},
			{`{"id":"c","amount":3,"customer":{"tier":1},"order_id":"o","order_time":"2024-01-01T00:00:00Z"}`, false},
			{`{"id":"d","amount":4,"items":[{"sku":"s4","x":1}],"order_id":"o","order_time":"x"}`, false},
			{`{"id":"e","amount":`, false},
			{`{"id":"f","amount":6,"tags":["t1","t2"],"order_id":"o","order_time":"2024-01-01T00:00:06Z","quantity":6}`, true},
			{`{"id":"g","amount":"7"}`, false},
			{`{"id":"h","amount":8,"tags":["t",null],"order_id":"o","order_time":"2024-01-01T00:00:08Z"}`, false},
			{`{"id":"i","amount":9,"items":[],"order_id":"o","order_time":"2024-01-01T00:00:09Z"}`, true},
		}
		var want []string
		for i, r := range records {
			before := b.Len()
			err := d.Append(b, []byte(r.data))
			if cerr := d.AppendColumn(c, []byte(r.data)); fmt.Sprint(cerr) != fmt.Sprint(err) {
				t.Fatalf("record %d: AppendColumn error = %v, Append error = %v", i, cerr, err)
			}
			if r.ok && err != nil && schema != ordersSchema {
				t.Fatalf("record %d: %v", i, err)
			}
			if err != nil {
				if b.Len() != before {
					t.Fatalf("record %d rejected (%v) but the builder grew from %d to %d", i, err, before, b.Len())
				}
				continue
			}
			if b.Len() != before+1 {
				t.Fatalf("record %d accepted but the builder went from %d to %d", i, before, b.Len())
			}
			want = append(want, r.data)
		}
		if err := d.Append(b, nil); err != nil {
			t.Fatal(err)
		}
		if err := d.AppendColumn(c, nil); err != nil {
			t.Fatal(err)
		}
		want = append(want, "null")
		arr := b.NewArray()
		sameArrays(t, arr, c)
		if arr.Len() != len(want) {
			t.Fatalf("array length %d, want %d", arr.Len(), len(want))
		}
		if err := array.ValidateFull(arr); err != nil {
			t.Fatalf("invalid array: %v", err)
		}
		// Each accepted row must hold the values of its record.
		for i, rec := range want {
			got := rowJSON(t, arr, i)
			var recv, gotv map[string]any
			_ = json.Unmarshal([]byte(rec), &recv)
			_ = json.Unmarshal([]byte(got), &gotv)
			if rec == "null" {
				if got != "null" {
					t.Errorf("row %d = %s, want null", i, got)
				}
				continue
			}
			for k, v := range gotv {
				if rv, ok := recv[k]; ok && k != "items" && k != "tags" && k != "order_time" && k != "customer" {
					if !jsonEqual(rv, v) {
						t.Errorf("row %d field %s = %v, want %v", i, k, v, rv)
					}
				}
			}
		}
		arr.Release()
		b.Release()
		mem.AssertSize(t, 0)
	}
}

func jsonEqual(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}

// withFallback adds a keyword the decoder does not check itself, so that
// the full validator runs too.
func withFallback(schema string) string {
	return strings.Replace(schema, `"amount":   {"type": "number"}`, `"amount":   {"type": "number", "maximum": 1e9}`, 1)
}

func TestAppendWrongBuilderPanics(t *testing.T) {
	s := mustCompile(t, ordersSchema)
	b := array.NewInt64Builder(memory.DefaultAllocator)
	defer b.Release()
	defer func() {
		if r := recover(); r == nil || !strings.Contains(r.(string), "want struct<") {
			t.Errorf("recover() = %v, want a panic naming the expected type", r)
		}
	}()
	_ = s.NewDecoder().Append(b, []byte(`{}`))
}

// TestConcurrentDecoders shares one Schema (with the full validator) among
// goroutines, each with its own Decoder; run it with -race.
func TestConcurrentDecoders(t *testing.T) {
	s := mustCompile(t, withFallback(shopSchema))
	records := [][]byte{
		[]byte(`{"id":"a","amount":1,"tags":["x"]}`),
		[]byte(`{"id":"b","amount":2e9}`),
		[]byte(`{"id":"c","amount":"3"}`),
		[]byte(`{"id":"d","amount":4,"items":[{"sku":"s","price":1.5}]}`),
	}
	want := []bool{true, false, false, true}
	done := make(chan error)
	for range 4 {
		go func() {
			d := s.NewDecoder()
			b := array.NewBuilder(memory.DefaultAllocator, s.ArrowType())
			defer b.Release()
			for i := range 200 {
				k := i % len(records)
				if err := d.Append(b, records[k]); (err == nil) != want[k] {
					done <- fmt.Errorf("record %d: %v", k, err)
					return
				}
			}
			arr := b.NewArray()
			defer arr.Release()
			if arr.Len() != 100 {
				done <- fmt.Errorf("%d rows, want 100", arr.Len())
				return
			}
			done <- nil
		}()
	}
	for range 4 {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}

// sameArrays checks that the records appended to c make a valid array equal
// to want (from a builder), then that c is empty and reusable.
func sameArrays(t testing.TB, want arrow.Array, c *Column) {
	t.Helper()
	n := c.Len()
	got := c.NewArray()
	defer got.Release()
	if err := array.ValidateFull(got); err != nil {
		t.Fatalf("invalid array from the column: %v", err)
	}
	if n != got.Len() || !array.Equal(got, want) {
		t.Fatalf("column (length %d) made\n%v\nthe builder made\n%v", n, got, want)
	}
	if c.Len() != 0 {
		t.Fatalf("column length %d after NewArray, want 0", c.Len())
	}
}

// TestShapeMemo decodes records whose keys change order and whose unknown
// keys come and go (some longer than a shape's arena) with one decoder,
// and checks each outcome against a fresh decoder's.
func TestShapeMemo(t *testing.T) {
	s := mustCompile(t, `{"type":"object","properties":{"a":{"type":"integer"},"b":{"type":"string"},`+
		`"c":{"type":"object","properties":{"x":{"type":"integer"},"y":{"type":"integer"}}}},"required":["a"]}`)
	r := rand.New(rand.NewPCG(7, 8))
	members := []string{`"a":1`, `"a":"no"`, `"b":"s"`, `"b":2`, `"c":{"y":2,"x":1}`, `"c":{"x":1,"z":[1]}`, `"zz":0`,
		`"z\u007a":0`, `"a" :3`, `"\u0061":4`, `"` + strings.Repeat("k", 5000) + `":1`}
	d := s.NewDecoder()
	for i := range 3000 {
		var rec strings.Builder
		rec.WriteByte('{')
		for j := range r.IntN(5) {
			if j > 0 {
				rec.WriteByte(',')
			}
			// Mostly the same shape, sometimes another.
			k := j
			if r.IntN(4) == 0 {
				k = r.IntN(len(members))
			}
			rec.WriteString(members[k%len(members)])
		}
		rec.WriteByte('}')
		data := []byte(rec.String())
		b1 := array.NewBuilder(memory.DefaultAllocator, s.ArrowType())
		b2 := array.NewBuilder(memory.DefaultAllocator, s.ArrowType())
		err1 := d.Append(b1, data)
		err2 := s.NewDecoder().Append(b2, data)
		if fmt.Sprint(err1) != fmt.Sprint(err2) {
			t.Fatalf("record %d %.100s: error %v, a fresh decoder says %v", i, data, err1, err2)
		}
		a1, a2 := b1.NewArray(), b2.NewArray()
		if !array.Equal(a1, a2) {
			t.Fatalf("record %d %.100s: row %v, a fresh decoder makes %v", i, data, a1, a2)
		}
		a1.Release()
		a2.Release()
		b1.Release()
		b2.Release()
	}
}
