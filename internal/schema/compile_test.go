package schema

import (
	"errors"
	"strings"
	"testing"
)

func TestCompileMapping(t *testing.T) {
	tests := map[string]struct {
		schema    string
		want      string // arrow.DataType.String()
		validator bool   // NeedsValidator
	}{
		"plain (no schema)": {
			schema: ``,
			want:   `utf8`,
		},
		"orders": {
			schema: ordersSchema,
			want: `struct<order_id: utf8 nullable, customer_id: utf8 nullable, product: utf8 nullable, ` +
				`amount: float64 nullable, quantity: int64 nullable, order_time: timestamp[us, tz=UTC] nullable>`,
		},
		"field order is the document's, not alphabetical": {
			schema: `{"type":"object","properties":{"zeta":{"type":"string"},"alpha":{"type":"integer"},"mid":{"type":"boolean"}}}`,
			want:   `struct<zeta: utf8 nullable, alpha: int64 nullable, mid: bool nullable>`,
		},
		"scalar root": {
			schema: `{"type":"string"}`,
			want:   `utf8`,
		},
		"nested object": {
			schema: `{"type":"object","properties":{"customer":{"type":"object","properties":{"name":{"type":"string"},"tier":{"type":"integer"}}}}}`,
			want:   `struct<customer: struct<name: utf8 nullable, tier: int64 nullable> nullable>`,
		},
		"array of objects": {
			schema: `{"type":"array","items":{"type":"object","properties":{"sku":{"type":"string"},"price":{"type":"number"}}}}`,
			want:   `list<item: struct<sku: utf8 nullable, price: float64 nullable>, nullable>`,
		},
		"array of arrays": {
			schema: `{"type":"array","items":{"type":"array","items":{"type":"integer"}}}`,
			want:   `list<item: list<item: int64, nullable>, nullable>`,
		},
		"date-time and date": {
			schema: `{"type":"object","properties":{"at":{"type":"string","format":"date-time"},"day":{"type":"string","format":"date"},"mail":{"type":"string","format":"email"}}}`,
			want:   `struct<at: timestamp[us, tz=UTC] nullable, day: date32 nullable, mail: utf8 nullable>`,
		},
		"object without properties is JSON text": {
			schema: `{"type":"object"}`,
			want:   `utf8`,
		},
		"array without items is JSON text": {
			schema: `{"type":"array"}`,
			want:   `utf8`,
		},
		"empty schema is JSON text": {
			schema: `{"type":"object","properties":{"any":{},"t":true}}`,
			want:   `struct<any: utf8 nullable, t: utf8 nullable>`,
		},
		"nullable union": {
			schema: `{"type":"object","properties":{"a":{"type":["string","null"]},"b":{"type":["null","integer"]}}}`,
			want:   `struct<a: utf8 nullable, b: int64 nullable>`,
		},
		"integer or number is number": {
			schema: `{"type":["integer","number"]}`,
			want:   `float64`,
		},
		"null type": {
			schema: `{"type":"null"}`,
			want:   `null`,
		},
		"pydantic optional (anyOf with null)": {
			schema: `{"type":"object","properties":{"note":{"anyOf":[{"type":"string"},{"type":"null"}],"default":null,"title":"Note"}}}`,
			want:   `struct<note: utf8 nullable>`,
		},
		"properties without type is an object": {
			schema: `{"properties":{"a":{"type":"boolean"}}}`,
			want:   `struct<a: bool nullable>`,
		},
		"local $ref into $defs, used twice": {
			schema: `{"type":"object","properties":{"bill":{"$ref":"#/$defs/addr"},"ship":{"$ref":"#/$defs/addr","description":"where to"}},` +
				`"$defs":{"addr":{"type":"object","properties":{"city":{"type":"string"}}}}}`,
			want: `struct<bill: struct<city: utf8 nullable> nullable, ship: struct<city: utf8 nullable> nullable>`,
		},
		"draft-07 definitions": {
			schema: `{"$schema":"http://json-schema.org/draft-07/schema#","type":"object","properties":{"p":{"$ref":"#/definitions/p"}},` +
				`"definitions":{"p":{"type":"number"}}}`,
			want: `struct<p: float64 nullable>`,
		},
		"$ref with an escaped pointer": {
			schema: `{"type":"object","properties":{"a":{"$ref":"#/$defs/a~1b"}},"$defs":{"a/b":{"type":"integer"}}}`,
			want:   `struct<a: int64 nullable>`,
		},
		"additionalProperties false is enforced natively": {
			schema: `{"type":"object","properties":{"a":{"type":"string"}},"additionalProperties":false,"required":["a"]}`,
			want:   `struct<a: utf8 nullable>`,
		},
		"minimum needs the validator": {
			schema:    `{"type":"object","properties":{"a":{"type":"number","minimum":0}}}`,
			want:      `struct<a: float64 nullable>`,
			validator: true,
		},
		"enum needs the validator": {
			schema:    `{"type":"string","enum":["a","b"]}`,
			want:      `utf8`,
			validator: true,
		},
		"required of an undeclared property needs the validator": {
			schema:    `{"type":"object","properties":{"a":{"type":"string"}},"required":["b"]}`,
			want:      `struct<a: utf8 nullable>`,
			validator: true,
		},
		"$ref sibling assertion needs the validator": {
			schema:    `{"type":"object","properties":{"a":{"$ref":"#/$defs/n","maximum":3}},"$defs":{"n":{"type":"integer"}}}`,
			want:      `struct<a: int64 nullable>`,
			validator: true,
		},
		"patternProperties disables the native additionalProperties check": {
			schema:    `{"type":"object","properties":{"a":{"type":"string"}},"patternProperties":{"^x_":{}},"additionalProperties":false}`,
			want:      `struct<a: utf8 nullable>`,
			validator: true,
		},
		"draft-04 always uses the validator": {
			schema:    `{"$schema":"http://json-schema.org/draft-04/schema#","type":"object","properties":{"a":{"type":"integer"}}}`,
			want:      `struct<a: int64 nullable>`,
			validator: true,
		},
		"annotations and unknown keywords are ignored": {
			schema: `{"$id":"https://example.com/o.json","$comment":"c","title":"t","description":"d","examples":[{}],"x-kafka":1,` +
				`"type":"object","properties":{"a":{"type":"string","default":"x","deprecated":true,"format":"uuid"}}}`,
			want: `struct<a: utf8 nullable>`,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			s, err := Compile([]byte(tc.schema))
			if err != nil {
				t.Fatalf("Compile: %v", err)
			}
			if got := s.ArrowType().String(); got != tc.want {
				t.Errorf("ArrowType:\n got %s\nwant %s", got, tc.want)
			}
			if got := s.NeedsValidator(); got != tc.validator {
				t.Errorf("NeedsValidator = %v, want %v", got, tc.validator)
			}
			if got := s.IsPlain(); got != (tc.schema == "") {
				t.Errorf("IsPlain = %v", got)
			}
			if tc.schema != "" && string(s.Raw()) != tc.schema {
				t.Errorf("Raw = %q", s.Raw())
			}
		})
	}
}

func TestCompileErrors(t *testing.T) {
	tests := map[string]struct {
		schema string
		is     error
		want   []string // substrings of the message
	}{
		"not JSON": {
			schema: `{"type":"object",}`,
			is:     ErrInvalidSchema,
			want:   []string{"invalid JSON at byte 17"},
		},
		"unknown type name": {
			schema: `{"type":"object","properties":{"a":{"type":"strin"}}}`,
			is:     ErrInvalidSchema,
			want:   []string{"#/properties/a/type", "value must be one of"},
		},
		"bad keyword value": {
			schema: `{"type":"integer","minimum":"zero"}`,
			is:     ErrInvalidSchema,
			want:   []string{"#/minimum", "want number"},
		},
		"duplicate key": {
			schema: `{"type":"object","properties":{"a":{"type":"string"},"a":{"type":"integer"}}}`,
			is:     ErrInvalidSchema,
			want:   []string{`#/properties`, `duplicate key "a"`},
		},
		"mixed union": {
			schema: `{"type":"object","properties":{"id":{"type":["string","integer"]}}}`,
			is:     ErrUnsupportedSchema,
			want:   []string{`#/properties/id/type`, `type ["string", "integer"] mixes 2 types`, `supported: one of "string"`, `optionally with "null"`},
		},
		"mixed union with null": {
			schema: `{"type":["string","boolean","null"]}`,
			is:     ErrUnsupportedSchema,
			want:   []string{`at #/type:`, `mixes 2 types`},
		},
		"remote $ref": {
			schema: `{"type":"object","properties":{"a":{"$ref":"https://example.com/other.json"}}}`,
			is:     ErrUnsupportedSchema,
			want:   []string{`https://example.com/other.json`, `only references into this document`},
		},
		"relative file $ref": {
			schema: `{"type":"object","properties":{"a":{"$ref":"other.json#/x"}}}`,
			is:     ErrUnsupportedSchema,
			want:   []string{`other.json`},
		},
		"dangling $ref": {
			schema: `{"type":"object","properties":{"a":{"$ref":"#/$defs/nope"}}}`,
			is:     ErrInvalidSchema,
			want:   []string{`#/$defs/nope`},
		},
		"recursive $ref": {
			schema: `{"type":"object","properties":{"name":{"type":"string"},"children":{"type":"array","items":{"$ref":"#"}}}}`,
			is:     ErrUnsupportedSchema,
			want:   []string{`#/properties/children/items/$ref`, `recursive`},
		},
		"recursive $ref through $defs": {
			schema: `{"$ref":"#/$defs/node","$defs":{"node":{"type":"object","properties":{"next":{"$ref":"#/$defs/node"}}}}}`,
			is:     ErrUnsupportedSchema,
			want:   []string{`recursive`},
		},
		"anchor $ref": {
			schema: `{"type":"object","properties":{"a":{"$ref":"#thing"}},"$defs":{"t":{"$anchor":"thing","type":"string"}}}`,
			is:     ErrUnsupportedSchema,
			want:   []string{`anchors are not supported`},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			s, err := Compile([]byte(tc.schema))
			if err == nil {
				t.Fatalf("Compile succeeded with type %s", s.ArrowType())
			}
			if !errors.Is(err, tc.is) {
				t.Errorf("error %q does not wrap %v", err, tc.is)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}
