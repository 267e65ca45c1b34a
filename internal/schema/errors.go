package schema

import (
	"errors"
	"strconv"
	"strings"

	"github.com/valyala/fastjson"
)

// ErrInvalidSchema is wrapped by the errors [Compile] returns when the
// document is not a valid JSON Schema (not JSON, duplicate keys, or rejected
// by the draft's metaschema, or a $ref that does not resolve).
var ErrInvalidSchema = errors.New("schema: invalid JSON Schema")

// ErrUnsupportedSchema is wrapped by the errors [Compile] returns when the
// document is a valid JSON Schema that has no Arrow mapping: type unions
// other than T or [T, "null"], recursive or remote $ref, $dynamicRef.
var ErrUnsupportedSchema = errors.New("schema: unsupported JSON Schema")

// DecodeError is returned by [Decoder.Append] for a record that is not valid
// JSON or violates the schema.
type DecodeError struct {
	// Path locates the offending value, e.g. "value.items[2].sku". It starts
	// with the decoder's root name (see [Decoder.SetRoot]) and is empty for
	// an error about the whole document when no root name is set.
	Path string
	// Reason says what is wrong, e.g. `expected number, got string "abc"`.
	Reason string
}

func (e *DecodeError) Error() string {
	if e.Path == "" {
		return e.Reason
	}
	return e.Path + ": " + e.Reason
}

// seg is one step of a path: an object key or an array index.
type seg struct {
	key   string
	index int // used when key == "" && isIndex
	isIdx bool
}

// violation is a decode error under construction. Segments are appended
// innermost first while the error unwinds, so the happy path never
// allocates a path.
type violation struct {
	segs   []seg
	reason string
	syntax bool // the shared errSyntax; never mutated
}

func (v *violation) under(s seg) *violation {
	if !v.syntax {
		v.segs = append(v.segs, s)
	}
	return v
}

func (v *violation) toError(root string) *DecodeError {
	var b strings.Builder
	b.WriteString(root)
	for i := len(v.segs) - 1; i >= 0; i-- {
		writeSeg(&b, v.segs[i])
	}
	return &DecodeError{Path: b.String(), Reason: v.reason}
}

func writeSeg(b *strings.Builder, s seg) {
	switch {
	case s.isIdx:
		b.WriteByte('[')
		b.WriteString(strconv.Itoa(s.index))
		b.WriteByte(']')
	case isIdent(s.key):
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(s.key)
	default:
		b.WriteByte('[')
		b.WriteString(strconv.Quote(s.key))
		b.WriteByte(']')
	}
}

// isIdent reports whether a key can be written after a dot in a path.
func isIdent(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '_' || c == '-' || c == '$' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && c >= '0' && c <= '9' {
			continue
		}
		return false
	}
	return true
}

// describe renders a JSON value for an error message: its JSON type and, for
// scalars, a (truncated) rendering of the value.
func describe(v *fastjson.Value) string {
	switch v.Type() {
	case fastjson.TypeString:
		s := string(v.GetStringBytes())
		const max = 40
		if len(s) > max {
			s = strings.ToValidUTF8(s[:max], "") + "…"
		}
		return "string " + strconv.Quote(s)
	case fastjson.TypeNumber:
		s := string(v.MarshalTo(nil))
		if len(s) > 40 {
			s = s[:40] + "…"
		}
		return "number " + s
	case fastjson.TypeTrue:
		return "boolean true"
	case fastjson.TypeFalse:
		return "boolean false"
	case fastjson.TypeNull:
		return "null"
	case fastjson.TypeObject:
		return "object"
	case fastjson.TypeArray:
		return "array"
	}
	return "unknown value"
}
