package schema

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/sluice-dev/sluice/internal/bufpool"
)

// reference compiles schema with the reference implementation. Formats are
// asserted because the decoder always asserts date-time and date (the
// schemas here use no other format).
func reference(t testing.TB, schema string) *jsonschema.Schema {
	t.Helper()
	doc, err := jsonschema.UnmarshalJSON(strings.NewReader(schema))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	if err := c.AddResource("ref:///s.json", doc); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile("ref:///s.json")
	if err != nil {
		t.Fatal(err)
	}
	return sch
}

// refAccepts reports whether data is JSON that the reference validator
// accepts.
func refAccepts(sch *jsonschema.Schema, data []byte) (bool, error) {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		return false, err
	}
	err = sch.Validate(doc)
	return err == nil, err
}

// diffSchemas are schemas whose every feature the decoder either checks
// exactly or hands to the full validator.
var diffSchemas = map[string]string{
	"orders":          ordersSchema,
	"shop":            shopSchema,
	"shop + fallback": withFallback(shopSchema),
	"keywords": `{"type":"object","properties":{
		"s":{"type":"string","minLength":1,"maxLength":3,"pattern":"^[a-z]*$"},
		"n":{"type":"integer","minimum":0,"exclusiveMaximum":100,"multipleOf":2},
		"e":{"enum":["a","b",1,null]},
		"c":{"const":"x"},
		"o":{"oneOf":[{"type":"integer"},{"type":"string"}]},
		"u":{"type":"array","items":{"type":"integer"},"uniqueItems":true,"maxItems":2}},
		"minProperties":1,"dependentRequired":{"s":["n"]}}`,
	"pydantic": `{"type":"object","title":"Order","properties":{
		"id":{"type":"integer","title":"Id"},
		"note":{"anyOf":[{"type":"string"},{"type":"null"}],"default":null},
		"addr":{"anyOf":[{"$ref":"#/$defs/Addr"},{"type":"null"}]},
		"alt":{"oneOf":[{"type":"null"},{"$ref":"#/$defs/Addr"}]},
		"when":{"anyOf":[{"type":"string","format":"date-time"},{"type":"null"}]}},
		"required":["id","note"],
		"$defs":{"Addr":{"type":"object","properties":{"city":{"type":"string"},"zip":{"type":"string"}},"required":["city"]}}}`,
	"draft-07 $ref siblings are ignored": `{"$schema":"http://json-schema.org/draft-07/schema#","type":"object",
		"properties":{"a":{"$ref":"#/definitions/a","type":"string"},"d":{"type":"string","format":"date"}},
		"definitions":{"a":{"type":"integer"}}}`,
	"array root": `{"type":["array","null"],"items":{"type":"number"}}`,
	"JSON text": `{"type":"object","properties":{
		"o":{"type":"object"},"a":{"type":"array"},"x":{},
		"closed":{"type":"object","properties":{"k":{"type":"boolean"}},"additionalProperties":false,"required":["k"]},
		"empty":{"type":"object","additionalProperties":false}}}`,
	"draft-04":        `{"$schema":"http://json-schema.org/draft-04/schema#","type":"object","properties":{"i":{"type":"integer"},"m":{"type":"number","maximum":5,"exclusiveMaximum":true}}}`,
	"nullable nested": `{"type":"object","properties":{"c":{"type":["object","null"],"properties":{"t":{"type":["string","null"],"format":"date-time"},"n":{"type":["integer","number"]}},"required":["t"]},"l":{"type":["array","null"],"items":{"type":["boolean","null"]}}}}`,
}

// TestDifferential checks that Append accepts a record iff the reference
// validator does, over generated records that are mostly valid, with
// random type changes, dropped and extra properties, and broken JSON.
func TestDifferential(t *testing.T) {
	for name, schema := range diffSchemas {
		t.Run(name, func(t *testing.T) {
			s := mustCompile(t, schema)
			ref := reference(t, schema)
			var root any
			if err := json.Unmarshal([]byte(schema), &root); err != nil {
				t.Fatal(err)
			}
			g := &gen{r: rand.New(rand.NewPCG(1, uint64(len(name)))), root: root}
			d := s.NewDecoder()
			b := array.NewBuilder(memory.DefaultAllocator, s.ArrowType())
			defer b.Release()
			// A pooled column: each batch after the first decodes into
			// the buffers of the one before, released by sameArrays.
			pool := bufpool.New(64 << 20)
			c := s.NewPooledColumn(pool)
			accepted := 0
			const n = 3000
			for i := range n {
				data := g.record()
				before := b.Len()
				err := d.Append(b, data)
				if cerr := d.AppendColumn(c, data); fmt.Sprint(cerr) != fmt.Sprint(err) {
					t.Fatalf("record %d %s: AppendColumn error = %v, Append error = %v", i, data, cerr, err)
				}
				want, refErr := refAccepts(ref, data)
				if !utf8.Valid(data) {
					// encoding/json replaces invalid UTF-8; the decoder rejects it.
					want, refErr = false, errors.New("invalid UTF-8")
				}
				if err != nil && want && strings.Contains(err.Error(), "out of the int64 range") {
					// Documented: an integer that does not fit the int64
					// column is rejected, though JSON Schema accepts it.
					want = false
				}
				if got := err == nil; got != want {
					t.Fatalf("record %d %s:\nAppend error: %v\nreference: %v", i, data, err, refErr)
				}
				if err == nil {
					accepted++
					if b.Len() != before+1 {
						t.Fatalf("record %d: builder length %d, want %d", i, b.Len(), before+1)
					}
				} else if b.Len() != before {
					t.Fatalf("record %d: builder length changed on error", i)
				}
				if i%700 == 699 { // batches of rows, into a column that reserved room
					arr := b.NewArray()
					sameArrays(t, arr, c)
					arr.Release()
				}
			}
			arr := b.NewArray()
			defer arr.Release()
			if err := array.ValidateFull(arr); err != nil {
				t.Fatal(err)
			}
			sameArrays(t, arr, c)
			if pool.Held() == 0 {
				t.Error("released arrays gave no buffer back to the pool")
			}
			t.Logf("accepted %d of %d records", accepted, n)
			// Both outcomes must be well represented for the test to mean much.
			if accepted < n/20 || accepted > n*19/20 {
				t.Errorf("accepted %d of %d records; the generator is unbalanced", accepted, n)
			}
		})
	}
}

// gen generates JSON records guided by a schema.
type gen struct {
	r    *rand.Rand
	root any
}

type member struct {
	k string
	v any
}

type object []member // keeps member order

var (
	dateTimes = []string{
		"2024-05-01T12:30:45Z", "2024-05-01T12:30:45.123456789+05:30", "1999-12-31t23:59:59z",
		"2016-12-31T23:59:60Z", "2016-12-31T23:59:60+01:00", "2024-02-30T00:00:00Z", "2024-05-01 12:30:45Z",
		"2024-05-01T24:00:00Z", "2024-05-01T12:30:45", "2024-05-01T12:30:45.Z", "2024-05-01T12:30:45+0530", "2024-05-01",
	}
	dates   = []string{"2024-05-01", "2024-02-29", "2023-02-29", "2024-13-01", "2024-5-1", "0000-01-01", "2024-05-01T00:00:00Z"}
	strs    = []string{"", "a", "ab", "abc", "x", "héllo", `q"uote`, "tab\there", "A"}
	numbers = []string{"0", "-0", "1", "2", "-3", "7", "98", "100", "2.0", "1e2", "1.5", "-0.25", "3.000", "12E-1", "1e-2", "4.5e1"}
)

func (g *gen) pick(n int) int { return g.r.IntN(n) }

// randomValue is any JSON value.
func (g *gen) randomValue(depth int) any {
	switch g.pick(9) {
	case 0:
		return nil
	case 1:
		return g.pick(2) == 0
	case 2, 3:
		return json.Number(numbers[g.pick(len(numbers))])
	case 4:
		return strs[g.pick(len(strs))]
	case 5:
		return dateTimes[g.pick(len(dateTimes))]
	case 6:
		return dates[g.pick(len(dates))]
	case 7:
		if depth > 2 {
			return nil
		}
		return []any{g.randomValue(depth + 1)}
	default:
		if depth > 2 {
			return "deep"
		}
		return object{{"k", g.randomValue(depth + 1)}}
	}
}

func (g *gen) resolve(ref string) any {
	var v any = g.root
	for _, tok := range strings.Split(strings.TrimPrefix(ref, "#/"), "/") {
		v = v.(map[string]any)[tok]
	}
	return v
}

// value generates a value for schema s, mutated now and then.
func (g *gen) value(s any, depth int) any {
	if g.pick(30) == 0 || depth > 6 {
		return g.randomValue(depth)
	}
	m, ok := s.(map[string]any)
	if !ok {
		return g.randomValue(depth)
	}
	if ref, ok := m["$ref"].(string); ok {
		return g.value(g.resolve(ref), depth)
	}
	if e, ok := m["enum"].([]any); ok {
		return e[g.pick(len(e))]
	}
	if c, ok := m["const"]; ok && g.pick(2) == 0 {
		return c
	}
	for _, kw := range []string{"anyOf", "oneOf"} {
		if alts, ok := m[kw].([]any); ok {
			return g.value(alts[g.pick(len(alts))], depth)
		}
	}
	var types []string
	switch t := m["type"].(type) {
	case string:
		types = []string{t}
	case []any:
		for _, x := range t {
			types = append(types, x.(string))
		}
	default:
		return g.randomValue(depth)
	}
	switch types[g.pick(len(types))] {
	case "null":
		return nil
	case "boolean":
		return g.pick(2) == 0
	case "integer":
		return json.Number(numbers[g.pick(10)])
	case "number":
		return json.Number(numbers[g.pick(len(numbers))])
	case "string":
		switch m["format"] {
		case "date-time":
			return dateTimes[g.pick(len(dateTimes))]
		case "date":
			return dates[g.pick(len(dates))]
		}
		return strs[g.pick(len(strs))]
	case "array":
		var a []any
		for range g.pick(4) {
			a = append(a, g.value(m["items"], depth+1))
		}
		return a
	default: // object
		props, _ := m["properties"].(map[string]any)
		required := map[string]bool{}
		if r, ok := m["required"].([]any); ok {
			for _, x := range r {
				required[x.(string)] = true
			}
		}
		var o object
		// Members in a shuffled order drawn from the seeded generator (not
		// from map iteration, which would make runs differ).
		keys := slices.Sorted(maps.Keys(props))
		g.r.Shuffle(len(keys), func(i, j int) { keys[i], keys[j] = keys[j], keys[i] })
		for _, k := range keys {
			if g.pick(10) < 7 || required[k] && g.pick(20) != 0 {
				o = append(o, member{k, g.value(props[k], depth+1)})
			}
		}
		if g.pick(10) == 0 {
			// Never repeat a declared key: for {"a":"x","a":1} the reference
			// sees only the last member, while the decoder checks both.
			k := []string{"extra", "k", "sku", "zip"}[g.pick(4)]
			if _, declared := props[k]; !declared {
				o = append(o, member{k, g.randomValue(depth + 1)})
			}
		}
		return o
	}
}

func (g *gen) record() []byte {
	var buf bytes.Buffer
	emit(&buf, g.value(g.root, 0))
	data := buf.Bytes()
	switch g.pick(25) {
	case 0: // truncate
		data = data[:g.pick(len(data)+1)]
	case 1: // insert a character
		i := g.pick(len(data) + 1)
		c := []byte(`{}[]",:0 -.etn`)[g.pick(14)]
		data = append(data[:i:i], append([]byte{c}, data[i:]...)...)
	case 2: // delete a byte
		if len(data) > 0 {
			i := g.pick(len(data))
			data = append(data[:i:i], data[i+1:]...)
		}
	}
	return data
}

func emit(buf *bytes.Buffer, v any) {
	switch v := v.(type) {
	case object:
		buf.WriteByte('{')
		for i, m := range v {
			if i > 0 {
				buf.WriteByte(',')
			}
			emit(buf, m.k)
			buf.WriteByte(':')
			emit(buf, m.v)
		}
		buf.WriteByte('}')
	case []any:
		buf.WriteByte('[')
		for i, e := range v {
			if i > 0 {
				buf.WriteByte(',')
			}
			emit(buf, e)
		}
		buf.WriteByte(']')
	case map[string]any: // from an enum or const in a schema
		b, _ := json.Marshal(v)
		buf.Write(b)
	default:
		b, err := json.Marshal(v)
		if err != nil {
			panic(fmt.Sprint(v, err))
		}
		buf.Write(b)
	}
}
