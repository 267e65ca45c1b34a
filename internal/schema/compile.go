package schema

import (
	"encoding/binary"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/valyala/fastjson"
)

// kind is what a schema node decodes into.
type kind uint8

const (
	kindPlain     kind = iota // root only, no schema: the message bytes as text
	kindString                // utf8
	kindInt                   // int64
	kindFloat                 // float64
	kindBool                  // bool
	kindTimestamp             // timestamp[us, UTC] from format "date-time"
	kindDate                  // date32 from format "date"
	kindStruct                // struct from an object with properties
	kindList                  // list from an array with items
	kindJSON                  // utf8 holding the value as JSON text
	kindNull                  // Arrow null from "type": "null"
)

// JSON types a kindJSON node accepts, as bits; 0 means any.
const (
	acceptObject uint8 = 1 << iota
	acceptArray
)

// node is one compiled schema position. Nodes form a tree: a $ref is
// expanded at every use.
type node struct {
	kind     kind
	nullable bool  // JSON null is valid here
	accept   uint8 // kindJSON only
	fields   []field
	index    map[string]int // field lookup when there are many fields
	closed   bool           // additionalProperties: false, enforced by the decoder
	required []int          // the indexes of the required fields
	id       int            // kindStruct: number among the schema's structs, for Decoder.shapes
	elem     *node          // kindList
}

type field struct {
	name     string
	node     *node
	required bool
	// key is the name as a JSON object key, `"name":`, when the name
	// needs no escaping, else "". The decoder matches it against the
	// record bytes directly, without scanning the key first; when it is at
	// most 16 bytes long, as two words: k0 and k1 under masks m0 and m1.
	key            string
	k0, k1, m0, m1 uint64
}

// setKey sets the key fields of f from its name.
func (f *field) setKey() {
	for i := 0; i < len(f.name); i++ {
		if c := f.name[i]; c == '"' || c == '\\' || c < 0x20 {
			return // the name needs escaping in JSON
		}
	}
	f.key = `"` + f.name + `":`
	if len(f.key) > 16 {
		return
	}
	var buf [16]byte
	copy(buf[:], f.key)
	f.k0, f.k1 = binary.LittleEndian.Uint64(buf[:8]), binary.LittleEndian.Uint64(buf[8:])
	for i := range len(f.key) {
		if i < 8 {
			f.m0 |= 0xff << (8 * i)
		} else {
			f.m1 |= 0xff << (8 * (i - 8))
		}
	}
}

// keyAt reports whether b holds f's key at i (see field.key); never when
// f has no key.
func (f *field) keyAt(b []byte, i int) bool {
	if f.m0 != 0 && len(b)-i >= 16 {
		return (binary.LittleEndian.Uint64(b[i:])^f.k0)&f.m0 == 0 &&
			(binary.LittleEndian.Uint64(b[i+8:])^f.k1)&f.m1 == 0
	}
	return f.key != "" && len(b)-i >= len(f.key) && string(b[i:i+len(f.key)]) == f.key
}

// linearMax is the field count up to which lookup scans instead of hashing.
const linearMax = 12

// lookup returns the index of the field named key, or -1. Producers
// usually write fields in schema order, so it tries field hint first.
func (n *node) lookup(key []byte, hint int) int {
	if hint < len(n.fields) && n.fields[hint].name == string(key) {
		return hint
	}
	if n.index != nil {
		if i, ok := n.index[string(key)]; ok {
			return i
		}
		return -1
	}
	for i := range n.fields {
		if n.fields[i].name == string(key) {
			return i
		}
	}
	return -1
}

func (n *node) arrowType() arrow.DataType {
	switch n.kind {
	case kindPlain, kindString, kindJSON:
		return arrow.BinaryTypes.String
	case kindInt:
		return arrow.PrimitiveTypes.Int64
	case kindFloat:
		return arrow.PrimitiveTypes.Float64
	case kindBool:
		return arrow.FixedWidthTypes.Boolean
	case kindTimestamp:
		return &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}
	case kindDate:
		return arrow.FixedWidthTypes.Date32
	case kindNull:
		return arrow.Null
	case kindList:
		return arrow.ListOf(n.elem.arrowType())
	case kindStruct:
		fs := make([]arrow.Field, len(n.fields))
		for i, f := range n.fields {
			fs[i] = arrow.Field{Name: f.name, Type: f.node.arrowType(), Nullable: true}
		}
		return arrow.StructOf(fs...)
	}
	panic(fmt.Sprintf("schema: unknown kind %d", n.kind))
}

// expected names the JSON type a node wants, for error messages.
func (n *node) expected() string {
	var s string
	switch n.kind {
	case kindString:
		s = "string"
	case kindInt:
		s = "integer"
	case kindFloat:
		s = "number"
	case kindBool:
		s = "boolean"
	case kindTimestamp:
		s = "date-time string"
	case kindDate:
		s = "date string"
	case kindStruct:
		s = "object"
	case kindList:
		s = "array"
	case kindNull:
		return "null"
	case kindJSON:
		switch n.accept {
		case acceptObject:
			s = "object"
		case acceptArray:
			s = "array"
		default:
			s = "any JSON value"
		}
	}
	if n.nullable {
		s += " or null"
	}
	return s
}

// assertionKeywords are the keywords (all drafts) that constrain instances.
// A keyword here that the decoder does not enforce itself makes [Compile]
// keep the full validator. Keywords not listed (title, description,
// default, examples, format, $comment, $id, $schema, $anchor, content*, and
// unknown ones) are annotations.
var assertionKeywords = map[string]bool{
	"type": true, "enum": true, "const": true,
	"multipleOf": true, "maximum": true, "exclusiveMaximum": true, "minimum": true, "exclusiveMinimum": true,
	"maxLength": true, "minLength": true, "pattern": true,
	"items": true, "prefixItems": true, "additionalItems": true, "unevaluatedItems": true,
	"maxItems": true, "minItems": true, "uniqueItems": true, "contains": true, "maxContains": true, "minContains": true,
	"properties": true, "patternProperties": true, "additionalProperties": true, "unevaluatedProperties": true,
	"propertyNames": true, "maxProperties": true, "minProperties": true, "required": true,
	"dependentRequired": true, "dependentSchemas": true, "dependencies": true,
	"allOf": true, "anyOf": true, "oneOf": true, "not": true, "if": true, "then": true, "else": true,
	"$ref": true, "$dynamicRef": true, "$recursiveRef": true,
}

const (
	maxNodes   = 10000 // after $ref expansion
	maxNesting = 64    // nested schema levels
)

// mapper turns a schema document into a node tree.
type mapper struct {
	root  *fastjson.Value
	draft int  // 4, 6, 7, 2019 or 2020
	full  bool // some keyword needs the full validator
	refs  []string
	nodes int
	objs  int // struct nodes numbered so far (node.id)
}

func unsupported(ptr, format string, args ...any) error {
	return fmt.Errorf("%w: at #%s: %s", ErrUnsupportedSchema, ptr, fmt.Sprintf(format, args...))
}

func invalid(ptr, format string, args ...any) error {
	return fmt.Errorf("%w: at #%s: %s", ErrInvalidSchema, ptr, fmt.Sprintf(format, args...))
}

// escapePtr escapes a key for a JSON pointer (RFC 6901).
func escapePtr(s string) string {
	if !strings.ContainsAny(s, "~/") {
		return s
	}
	return strings.NewReplacer("~", "~0", "/", "~1").Replace(s)
}

type kv struct {
	key string
	val *fastjson.Value
}

// entries lists an object's members in document order.
func entries(o *fastjson.Object) []kv {
	var out []kv
	o.Visit(func(k []byte, v *fastjson.Value) { out = append(out, kv{string(k), v}) })
	return out
}

func (m *mapper) node(sv *fastjson.Value, ptr string, depth int, nestedID bool) (*node, error) {
	m.nodes++
	if m.nodes > maxNodes {
		return nil, unsupported(ptr, "the schema expands to more than %d subschemas", maxNodes)
	}
	if depth > maxNesting {
		return nil, unsupported(ptr, "nesting deeper than %d levels", maxNesting)
	}
	switch sv.Type() {
	case fastjson.TypeTrue:
		return &node{kind: kindJSON, nullable: true}, nil
	case fastjson.TypeFalse:
		m.full = true // only the full validator knows nothing matches
		return &node{kind: kindJSON, nullable: true}, nil
	case fastjson.TypeObject:
	default:
		return nil, invalid(ptr, "a schema must be an object or a boolean, got %s", describe(sv))
	}
	o := sv.GetObject()
	if ptr != "" && o.Get("$id") != nil {
		nestedID = true
	}
	if o.Get("$dynamicRef") != nil || o.Get("$recursiveRef") != nil {
		return nil, unsupported(ptr, "$dynamicRef and $recursiveRef are not supported; use $ref")
	}
	if ref := o.Get("$ref"); ref != nil {
		return m.ref(o, ref, ptr, depth, nestedID)
	}

	used := map[string]bool{}
	n, err := m.shape(o, ptr, depth, nestedID, used)
	if err != nil {
		return nil, err
	}
	for _, e := range entries(o) {
		if assertionKeywords[e.key] && !used[e.key] {
			m.full = true
		}
	}
	return n, nil
}

// shape maps a schema object without $ref, recording in used the
// assertion keywords the decoder enforces exactly.
func (m *mapper) shape(o *fastjson.Object, ptr string, depth int, nestedID bool, used map[string]bool) (*node, error) {
	// anyOf/oneOf: [X, {"type": "null"}] is how generators (pydantic, ...)
	// spell "nullable X".
	if o.Get("type") == nil && o.Get("properties") == nil && o.Get("items") == nil {
		for _, kw := range []string{"anyOf", "oneOf"} {
			alts := o.Get(kw)
			if alts == nil || alts.Type() != fastjson.TypeArray || len(alts.GetArray()) != 2 {
				continue
			}
			a := alts.GetArray()
			var x int
			switch {
			case isNullSchema(a[0]) && !isNullSchema(a[1]):
				x = 1
			case isNullSchema(a[1]) && !isNullSchema(a[0]):
				x = 0
			default:
				continue
			}
			n, err := m.node(a[x], ptr+"/"+kw+"/"+strconv.Itoa(x), depth+1, nestedID)
			if err != nil {
				return nil, err
			}
			if kw == "oneOf" && n.nullable {
				m.full = true // null would match both branches, so oneOf rejects it
			}
			n.nullable = true
			used[kw] = true
			return n, nil
		}
	}

	types, err := typeSet(o, ptr)
	if err != nil {
		return nil, err
	}
	used["type"] = true
	if types == nil { // no "type": anything, unless the shape says more
		switch {
		case o.Get("properties") != nil:
			types = []string{"object", "null"}
		case o.Get("items") != nil:
			types = []string{"array", "null"}
		default:
			return &node{kind: kindJSON, nullable: true}, nil
		}
	}
	n := &node{}
	var rest []string
	hasNumber := false
	for _, t := range types {
		switch t {
		case "null":
			n.nullable = true
		case "number":
			hasNumber = true
			rest = append(rest, t)
		default:
			rest = append(rest, t)
		}
	}
	if hasNumber && len(rest) == 2 && (rest[0] == "integer" || rest[1] == "integer") {
		rest = []string{"number"} // every integer is a number
	}
	switch len(rest) {
	case 0:
		n.kind = kindNull
		n.nullable = true
		return n, nil
	case 1:
	default:
		return nil, unsupported(ptr+"/type", `type [%s] mixes %d types, but a column has one type; `+
			`supported: one of "string", "integer", "number", "boolean", "object", "array", `+
			`optionally with "null" (and ["integer", "number"], which means "number")`,
			quoteList(types), len(rest))
	}

	switch rest[0] {
	case "string":
		n.kind = kindString
		if f := o.Get("format"); f != nil {
			switch string(f.GetStringBytes()) {
			case "date-time":
				n.kind = kindTimestamp
			case "date":
				n.kind = kindDate
			}
		}
	case "integer":
		n.kind = kindInt
	case "number":
		n.kind = kindFloat
	case "boolean":
		n.kind = kindBool
	case "object":
		return n, m.object(n, o, ptr, depth, nestedID, used)
	case "array":
		items := o.Get("items")
		if items == nil || items.Type() == fastjson.TypeArray || o.Get("prefixItems") != nil {
			n.kind, n.accept = kindJSON, acceptArray
			return n, nil
		}
		elem, err := m.node(items, ptr+"/items", depth+1, nestedID)
		if err != nil {
			return nil, err
		}
		n.kind, n.elem = kindList, elem
		used["items"] = true
	}
	return n, nil
}

func (m *mapper) object(n *node, o *fastjson.Object, ptr string, depth int, nestedID bool, used map[string]bool) error {
	if ap := o.Get("additionalProperties"); ap != nil {
		switch {
		case ap.Type() == fastjson.TypeTrue, ap.Type() == fastjson.TypeObject && ap.GetObject().Len() == 0:
			used["additionalProperties"] = true
		case ap.Type() == fastjson.TypeFalse && o.Get("patternProperties") == nil:
			n.closed = true
			used["additionalProperties"] = true
		}
	}
	props := o.Get("properties")
	if props == nil || props.Type() != fastjson.TypeObject || props.GetObject().Len() == 0 {
		used["properties"] = true
		n.kind, n.accept = kindJSON, acceptObject
		if n.closed {
			n.closed = false
			used["additionalProperties"] = false // {} only: left to the full validator
		}
		if r := o.Get("required"); r != nil && len(r.GetArray()) == 0 {
			used["required"] = true
		}
		return nil
	}
	n.kind = kindStruct
	n.id, m.objs = m.objs, m.objs+1
	used["properties"] = true
	for _, e := range entries(props.GetObject()) {
		child, err := m.node(e.val, ptr+"/properties/"+escapePtr(e.key), depth+1, nestedID)
		if err != nil {
			return err
		}
		n.fields = append(n.fields, field{name: e.key, node: child})
		n.fields[len(n.fields)-1].setKey()
	}
	if len(n.fields) > linearMax {
		n.index = make(map[string]int, len(n.fields))
		for i, f := range n.fields {
			n.index[f.name] = i
		}
	}
	if r := o.Get("required"); r != nil {
		all := true
		for _, name := range r.GetArray() {
			i := n.lookup(name.GetStringBytes(), 0)
			if i < 0 {
				all = false // presence of an undeclared property: left to the full validator
				continue
			}
			if !n.fields[i].required {
				n.fields[i].required = true
				n.required = append(n.required, i)
			}
		}
		slices.Sort(n.required) // a missing one is reported in field order
		used["required"] = all
	}
	return nil
}

// ref expands a local $ref in place.
func (m *mapper) ref(o *fastjson.Object, ref *fastjson.Value, ptr string, depth int, nestedID bool) (*node, error) {
	s := string(ref.GetStringBytes())
	if !strings.HasPrefix(s, "#") {
		return nil, unsupported(ptr+"/$ref", `$ref %q: only references into this document, like "#/$defs/name", are supported`, s)
	}
	if nestedID {
		return nil, unsupported(ptr+"/$ref", "$ref %q inside a subschema that has its own $id is not supported", s)
	}
	frag, err := url.PathUnescape(s[1:])
	if err != nil {
		return nil, invalid(ptr+"/$ref", "$ref %q: %v", s, err)
	}
	if frag != "" && frag[0] != '/' {
		return nil, unsupported(ptr+"/$ref", `$ref %q: anchors are not supported; use a JSON pointer like "#/$defs/name"`, s)
	}
	target, viaID, ok := resolvePointer(m.root, frag)
	if !ok {
		return nil, invalid(ptr+"/$ref", "$ref %q does not resolve", s)
	}
	for _, r := range m.refs {
		if r == frag {
			return nil, unsupported(ptr+"/$ref", "$ref %q is recursive, and Arrow types cannot be recursive", s)
		}
	}
	m.refs = append(m.refs, frag)
	n, err := m.node(target, frag, depth+1, viaID)
	m.refs = m.refs[:len(m.refs)-1]
	if err != nil {
		return nil, err
	}
	if m.draft >= 2019 {
		// Siblings of $ref apply too; the decoder only enforces the target.
		for _, e := range entries(o) {
			if e.key != "$ref" && assertionKeywords[e.key] {
				m.full = true
			}
		}
	} // Before 2019-09, siblings of $ref are ignored.
	return n, nil
}

// resolvePointer follows a JSON pointer (RFC 6901) from root. viaID
// reports whether it passed through a subschema (other than root) with an
// $id, which would change how $refs inside resolve.
func resolvePointer(root *fastjson.Value, ptr string) (v *fastjson.Value, viaID bool, ok bool) {
	v = root
	if ptr == "" {
		return v, false, true
	}
	for i, tok := range strings.Split(ptr[1:], "/") {
		if i > 0 && v.Type() == fastjson.TypeObject && v.Get("$id") != nil {
			viaID = true
		}
		tok = strings.NewReplacer("~1", "/", "~0", "~").Replace(tok)
		switch v.Type() {
		case fastjson.TypeObject:
			v = v.GetObject().Get(tok)
		case fastjson.TypeArray:
			k, err := strconv.Atoi(tok)
			a := v.GetArray()
			if err != nil || k < 0 || k >= len(a) {
				return nil, false, false
			}
			v = a[k]
		default:
			return nil, false, false
		}
		if v == nil {
			return nil, false, false
		}
	}
	return v, viaID, true
}

// typeSet returns the names in "type" (nil when absent).
func typeSet(o *fastjson.Object, ptr string) ([]string, error) {
	t := o.Get("type")
	switch {
	case t == nil:
		return nil, nil
	case t.Type() == fastjson.TypeString:
		return []string{string(t.GetStringBytes())}, nil
	case t.Type() == fastjson.TypeArray:
		var out []string
		for _, e := range t.GetArray() {
			out = append(out, string(e.GetStringBytes()))
		}
		return out, nil
	}
	return nil, invalid(ptr+"/type", "type must be a string or an array of strings")
}

// isNullSchema reports whether v is {"type": "null"} (or ["null"]), give or
// take annotations.
func isNullSchema(v *fastjson.Value) bool {
	if v.Type() != fastjson.TypeObject {
		return false
	}
	types, err := typeSet(v.GetObject(), "")
	if err != nil || len(types) != 1 || types[0] != "null" {
		return false
	}
	for _, e := range entries(v.GetObject()) {
		if e.key != "type" && assertionKeywords[e.key] {
			return false
		}
	}
	return true
}

func quoteList(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = strconv.Quote(s)
	}
	return strings.Join(q, ", ")
}
