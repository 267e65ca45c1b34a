// Package schema maps a stream's JSON Schema to an Arrow type and decodes
// Kafka message bytes straight into Arrow builders.
//
// [Compile] reads the schema once: it checks the document with the full
// JSON Schema compiler (santhosh-tekuri/jsonschema, draft 2020-12 unless
// "$schema" says otherwise) and builds a decode plan. The mapping is:
//
//	string                     utf8
//	string, format date-time   timestamp[us, UTC] (RFC 3339)
//	string, format date        date32
//	integer                    int64   (1.0 and 1e2 are integers)
//	number                     float64 (integers accepted)
//	boolean                    bool
//	null                       null
//	object with properties     struct, fields in the document's order
//	array with items           list of the items' type
//	object without properties,
//	array without items, {}    utf8 holding the value as JSON text
//	[T, "null"]                T; every Arrow field is nullable anyway
//	anyOf/oneOf [T, null]      T
//	no schema                  utf8 holding the message bytes
//
// A schema whose root is a plain string ({"type": "string"}, the usual key
// schema) reads the message bytes as text, as Kafka's StringDeserializer
// does: the key u1 is the string "u1", not invalid JSON. Other roots are
// JSON documents. A subschema with "properties" but no "type" is read as
// an object (or null). Local "$ref"s ("#/$defs/x", "#/definitions/x") are expanded.
//
// [Decoder.Append] validates while it extracts, in one pass over the bytes
// with no allocation: JSON syntax (strict RFC 8259 and UTF-8), types,
// required, additionalProperties: false, and the date-time and date
// formats. When the schema uses any other assertion keyword (minimum, enum,
// pattern, oneOf, ...), Append also runs the full validator on the record,
// about 20 times slower. Either way a record is accepted iff it is valid
// against the schema, with these deliberate differences, all rejections
// of records the reference validator would accept: the date-time and date
// formats are always asserted; an integer outside int64 or a number
// outside float64 is rejected; invalid UTF-8 and \u escapes of lone UTF-16
// surrogates are rejected (encoding/json would substitute U+FFFD); every
// occurrence of a repeated key must be valid (the last one is kept, as in
// encoding/json); and a subschema read as an object because it has
// "properties" rejects non-object values. A nil record (a Kafka tombstone
// or missing key) is null whatever the schema says.
//
// [Decoder.AppendColumn] decodes the same way into a [Column], which holds
// the values in plain Go slices and makes an Arrow array of them without
// copying: several times cheaper per value than Arrow builders, for
// callers that build whole batches (ingestion).
package schema

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/valyala/fastjson"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
)

// Schema is a compiled stream schema. It is immutable and safe for
// concurrent use; decode with one [Decoder] per goroutine.
type Schema struct {
	raw  []byte
	root *node
	dt   arrow.DataType
	full *jsonschema.Schema // non-nil when Append must also run the full validator
	objs int                // struct nodes in root
}

// resourceURL names the schema document inside the jsonschema compiler.
const resourceURL = "sluice:///schema.json"

// Compile compiles a JSON Schema document. raw == nil or empty means "no
// schema": the column is a plain string holding the message bytes as UTF-8
// text, and a nil Kafka key or value is null.
//
// Errors wrap [ErrInvalidSchema] when raw is not a valid JSON Schema and
// [ErrUnsupportedSchema] when it is valid but has no Arrow mapping; both
// name the location in the document as a JSON pointer. Compile keeps a copy
// of raw, so the caller may reuse it.
func Compile(raw []byte) (*Schema, error) {
	if len(raw) == 0 {
		return &Schema{root: &node{kind: kindPlain, nullable: true}, dt: arrow.BinaryTypes.String}, nil
	}
	raw = bytes.Clone(raw)
	if err := scanJSON(raw); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidSchema, err)
	}
	var p fastjson.Parser
	root, err := p.ParseBytes(raw)
	if err != nil { // unreachable after scanJSON; kept for safety
		return nil, fmt.Errorf("%w: %v", ErrInvalidSchema, err)
	}
	if err := noDuplicateKeys(root, ""); err != nil {
		return nil, err
	}

	full, err := compileFull(raw)
	if err != nil {
		return nil, err
	}

	m := &mapper{root: root, draft: draftOf(root), refs: []string{""}}
	n, err := m.node(root, "", 0, false)
	if err != nil {
		return nil, err
	}
	s := &Schema{raw: raw, root: n, dt: n.arrowType(), objs: m.objs}
	if m.full || m.draft == 4 { // draft-04 has its own integer and exclusive* rules
		s.full = full
	}
	return s, nil
}

// ArrowType returns the column type: a struct for an object schema, utf8
// when there is no schema, and so on (see the package documentation).
func (s *Schema) ArrowType() arrow.DataType { return s.dt }

// textRoot reports whether a message is read as text rather than parsed as
// JSON: with no schema, and with a schema whose root is a plain string
// (as Kafka's StringDeserializer reads keys: the bytes u1, not "u1").
func (s *Schema) textRoot() bool {
	return s.root.kind == kindPlain || s.root.kind == kindString
}

// IsPlain reports whether no schema was given.
func (s *Schema) IsPlain() bool { return s.root.kind == kindPlain }

// Raw returns the document as given to [Compile], or nil when plain. The
// caller must not modify it.
func (s *Schema) Raw() []byte { return s.raw }

// NeedsValidator reports whether [Decoder.Append] runs the full JSON Schema
// validator on every record (about 20× slower), because the schema uses
// assertion keywords the decoder does not enforce itself.
func (s *Schema) NeedsValidator() bool { return s.full != nil }

// noDuplicateKeys rejects objects with a repeated key anywhere in the
// document: JSON parsers disagree about which one wins.
func noDuplicateKeys(v *fastjson.Value, ptr string) error {
	switch v.Type() {
	case fastjson.TypeObject:
		seen := map[string]bool{}
		for _, e := range entries(v.GetObject()) {
			if seen[e.key] {
				return invalid(ptr, "duplicate key %q", e.key)
			}
			seen[e.key] = true
			if err := noDuplicateKeys(e.val, ptr+"/"+escapePtr(e.key)); err != nil {
				return err
			}
		}
	case fastjson.TypeArray:
		for i, e := range v.GetArray() {
			if err := noDuplicateKeys(e, fmt.Sprintf("%s/%d", ptr, i)); err != nil {
				return err
			}
		}
	}
	return nil
}

// draftOf reads "$schema" from the root; the default is 2020-12.
func draftOf(root *fastjson.Value) int {
	s := string(root.GetStringBytes("$schema"))
	switch {
	case strings.Contains(s, "draft-04"):
		return 4
	case strings.Contains(s, "draft-06"):
		return 6
	case strings.Contains(s, "draft-07"):
		return 7
	case strings.Contains(s, "2019-09"):
		return 2019
	}
	return 2020
}

// noLoader refuses every external document.
type noLoader struct{}

func (noLoader) Load(url string) (any, error) {
	return nil, errors.New("remote references are not supported")
}

// compileFull compiles raw with the reference implementation. It is how
// Compile checks validity, and its result validates records when the
// decoder alone is not enough.
func compileFull(raw []byte) (*jsonschema.Schema, error) {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidSchema, err)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.UseLoader(noLoader{})
	if err := c.AddResource(resourceURL, doc); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidSchema, err)
	}
	sch, err := c.Compile(resourceURL)
	if err == nil {
		return sch, nil
	}
	var (
		sve *jsonschema.SchemaValidationError
		lue *jsonschema.LoadURLError
	)
	switch {
	case errors.As(err, &sve):
		var ve *jsonschema.ValidationError
		if errors.As(sve.Err, &ve) {
			loc, reason := firstLeaf(ve)
			var ptr strings.Builder
			for _, tok := range loc {
				ptr.WriteByte('/')
				ptr.WriteString(escapePtr(tok))
			}
			return nil, fmt.Errorf("%w: at #%s: %s", ErrInvalidSchema, ptr.String(), reason)
		}
	case errors.As(err, &lue):
		return nil, fmt.Errorf("%w: cannot load %q: only references into this document, like \"#/$defs/name\", are supported",
			ErrUnsupportedSchema, strings.TrimPrefix(lue.URL, "sluice:///"))
	}
	return nil, fmt.Errorf("%w: %s", ErrInvalidSchema, strings.ReplaceAll(err.Error(), resourceURL, ""))
}

var printer = message.NewPrinter(language.English)

// firstLeaf picks the most specific causes of a validation error
// deterministically: the leaves at the smallest instance location. It
// returns that location's tokens and their messages, noting how many causes
// elsewhere were left out.
func firstLeaf(ve *jsonschema.ValidationError) (loc []string, reason string) {
	type leaf struct {
		loc, msg string
		toks     []string
	}
	var leaves []leaf
	var walk func(e *jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		if len(e.Causes) == 0 {
			leaves = append(leaves, leaf{strings.Join(e.InstanceLocation, "\x00"), e.ErrorKind.LocalizedString(printer), e.InstanceLocation})
			return
		}
		for _, c := range e.Causes {
			walk(c)
		}
	}
	walk(ve)
	sort.Slice(leaves, func(i, j int) bool {
		if leaves[i].loc != leaves[j].loc {
			return leaves[i].loc < leaves[j].loc
		}
		return leaves[i].msg < leaves[j].msg
	})
	var msgs []string
	for _, l := range leaves {
		if l.loc == leaves[0].loc && !slices.Contains(msgs, l.msg) {
			msgs = append(msgs, l.msg)
		}
	}
	reason = strings.Join(msgs, "; ")
	if n := len(leaves) - len(msgs); n > 0 {
		reason += fmt.Sprintf(" (and %d more)", n)
	}
	return leaves[0].toks, reason
}
