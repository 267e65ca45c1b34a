package server

import (
	"encoding/json"
	"math"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/sluice-dev/sluice/internal/online"
)

// The serving hot path (POST /get-online-features) reads and writes JSON
// by hand: encoding/json's reflection, its map[string]any and []any
// building and its per-value boxing were a third of a request's CPU.

// parseOnlineFeaturesRequest decodes the usual shape of an
// OnlineFeaturesRequest without reflection: an object with at most the keys
// "features" (an array of strings), "entities" (an object of arrays of
// strings, numbers, booleans and nulls) and "full_feature_names" (a
// boolean), each at most once, strings without escapes, and nothing but
// whitespace after the object. It reports false for anything else (valid
// or not), and the caller decodes the body with encoding/json instead,
// which also words the error for invalid bodies.
//
// Invariants (FuzzParseOnlineFeaturesRequest checks them): it never
// panics, and when it reports true, decoding body with encoding/json (as
// decodeJSON does: DisallowUnknownFields) succeeds and gives an equal
// request (reflect.DeepEqual, so nil and empty slices are told apart).
//
// Feature references are interned in refs (nil: not interned), so that a
// client that asks for the same features again does not allocate them.
func parseOnlineFeaturesRequest(body []byte, req *OnlineFeaturesRequest, refs *internTable) bool {
	p := jsonParser{b: body, refs: refs}
	if !p.consume('{') {
		return false
	}
	var seenFeatures, seenEntities, seenFull bool
	if p.consume('}') {
		return p.end()
	}
	for {
		key, ok := p.rawString()
		if !ok || !p.consume(':') {
			return false
		}
		switch string(key) {
		case "features":
			if seenFeatures {
				return false
			}
			seenFeatures = true
			if req.Features, ok = p.stringArray(); !ok {
				return false
			}
		case "entities":
			if seenEntities {
				return false
			}
			seenEntities = true
			if req.Entities, ok = p.entities(); !ok {
				return false
			}
		case "full_feature_names":
			if seenFull {
				return false
			}
			seenFull = true
			switch {
			case p.literal("true"):
				req.FullFeatureNames = true
			case p.literal("false"):
				req.FullFeatureNames = false
			default:
				return false
			}
		default:
			return false
		}
		if p.consume(',') {
			continue
		}
		if p.consume('}') {
			return p.end()
		}
		return false
	}
}

// jsonParser is a cursor over a JSON text for parseOnlineFeaturesRequest.
// Its methods skip leading whitespace and report false on anything they do
// not handle.
type jsonParser struct {
	b    []byte
	i    int
	refs *internTable
}

// internTable interns strings, up to maxInterned of them. Its methods are
// safe for concurrent use; the zero value is ready.
type internTable struct {
	mu sync.RWMutex
	m  map[string]string
}

const maxInterned = 4096

// intern returns b as a string, the same string for the same bytes while
// the table has room.
func (t *internTable) intern(b []byte) string {
	if t == nil {
		return string(b)
	}
	t.mu.RLock()
	s, ok := t.m[string(b)]
	t.mu.RUnlock()
	if ok {
		return s
	}
	s = string(b)
	t.mu.Lock()
	if t.m == nil {
		t.m = make(map[string]string)
	}
	if len(t.m) < maxInterned {
		t.m[s] = s
	}
	t.mu.Unlock()
	return s
}

func (p *jsonParser) ws() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

// consume skips whitespace and c, reporting whether c was next.
func (p *jsonParser) consume(c byte) bool {
	p.ws()
	if p.i < len(p.b) && p.b[p.i] == c {
		p.i++
		return true
	}
	return false
}

// end reports whether only whitespace is left.
func (p *jsonParser) end() bool {
	p.ws()
	return p.i == len(p.b)
}

func (p *jsonParser) literal(s string) bool {
	p.ws()
	if len(p.b)-p.i >= len(s) && string(p.b[p.i:p.i+len(s)]) == s {
		p.i += len(s)
		return true
	}
	return false
}

// rawString reads a string without escapes or control characters and with
// valid UTF-8, returning its bytes (aliasing the input).
func (p *jsonParser) rawString() ([]byte, bool) {
	if !p.consume('"') {
		return nil, false
	}
	start := p.i
	ascii := true
	for ; p.i < len(p.b); p.i++ {
		c := p.b[p.i]
		switch {
		case c == '"':
			s := p.b[start:p.i]
			p.i++
			if !ascii && !utf8.Valid(s) {
				return nil, false
			}
			return s, true
		case c == '\\' || c < 0x20:
			return nil, false
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	return nil, false
}

func (p *jsonParser) stringArray() ([]string, bool) {
	if !p.consume('[') {
		return nil, false
	}
	out := make([]string, 0, 16)
	if p.consume(']') {
		return out, true
	}
	for {
		s, ok := p.rawString()
		if !ok {
			return nil, false
		}
		out = append(out, p.refs.intern(s))
		if p.consume(',') {
			continue
		}
		return out, p.consume(']')
	}
}

func (p *jsonParser) entities() (map[string][]any, bool) {
	if !p.consume('{') {
		return nil, false
	}
	out := make(map[string][]any, 1)
	if p.consume('}') {
		return out, true
	}
	for {
		k, ok := p.rawString()
		if !ok || !p.consume(':') {
			return nil, false
		}
		if _, dup := out[string(k)]; dup {
			return nil, false
		}
		vs, ok := p.scalarArray()
		if !ok {
			return nil, false
		}
		out[string(k)] = vs
		if p.consume(',') {
			continue
		}
		return out, p.consume('}')
	}
}

func (p *jsonParser) scalarArray() ([]any, bool) {
	if !p.consume('[') {
		return nil, false
	}
	out := make([]any, 0, 4)
	if p.consume(']') {
		return out, true
	}
	for {
		v, ok := p.scalar()
		if !ok {
			return nil, false
		}
		out = append(out, v)
		if p.consume(',') {
			continue
		}
		return out, p.consume(']')
	}
}

// scalar reads a string, number, boolean or null as encoding/json decodes
// it into an any.
func (p *jsonParser) scalar() (any, bool) {
	p.ws()
	if p.i == len(p.b) {
		return nil, false
	}
	switch c := p.b[p.i]; {
	case c == '"':
		s, ok := p.rawString()
		return string(s), ok
	case c == '-' || c >= '0' && c <= '9':
		return p.number()
	case p.literal("true"):
		return true, true
	case p.literal("false"):
		return false, true
	case p.literal("null"):
		return nil, true
	}
	return nil, false
}

// number reads a number in JSON's grammar (RFC 8259, section 6) as a
// float64; a number out of float64's range is left to encoding/json (an
// error there).
func (p *jsonParser) number() (any, bool) {
	start := p.i
	digits := func() int {
		n := 0
		for p.i < len(p.b) && p.b[p.i] >= '0' && p.b[p.i] <= '9' {
			p.i++
			n++
		}
		return n
	}
	if p.b[p.i] == '-' {
		p.i++
	}
	if p.i < len(p.b) && p.b[p.i] == '0' {
		p.i++
	} else if digits() == 0 {
		return nil, false
	}
	if p.i < len(p.b) && p.b[p.i] == '.' {
		p.i++
		if digits() == 0 {
			return nil, false
		}
	}
	if p.i < len(p.b) && (p.b[p.i] == 'e' || p.b[p.i] == 'E') {
		p.i++
		if p.i < len(p.b) && (p.b[p.i] == '+' || p.b[p.i] == '-') {
			p.i++
		}
		if digits() == 0 {
			return nil, false
		}
	}
	f, err := strconv.ParseFloat(string(p.b[start:p.i]), 64)
	if err != nil {
		return nil, false
	}
	return f, true
}

// appendJSONString appends s as json.Marshal writes it: HTML characters
// (<, >, &) escaped, invalid UTF-8 replaced with U+FFFD, U+2028 and U+2029
// escaped.
func appendJSONString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		if b := s[i]; b < utf8.RuneSelf {
			if b >= 0x20 && b != '"' && b != '\\' && b != '<' && b != '>' && b != '&' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '\\', '"':
				dst = append(dst, '\\', b)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hex[b>>4], hex[b&0xF])
			}
			i++
			start = i
			continue
		}
		c, size := utf8.DecodeRuneInString(s[i:])
		if c == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if c == '\u2028' || c == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hex[c&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// appendJSONFloat appends f as json.Marshal writes a float64 (ES6 number
// formatting); NaN and infinities, which JSON cannot hold, as null.
func appendJSONFloat(dst []byte, f float64) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return append(dst, "null"...)
	}
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	dst = strconv.AppendFloat(dst, f, format, -1, 64)
	if format == 'e' {
		// e-09 to e-9
		if n := len(dst); n >= 4 && dst[n-4] == 'e' && dst[n-3] == '-' && dst[n-2] == '0' {
			dst[n-2] = dst[n-1]
			dst = dst[:n-1]
		}
	}
	return dst
}

// appendJSONAny appends a value decoded from a request (an entity key) as
// json.Marshal writes it.
func appendJSONAny(dst []byte, v any) []byte {
	switch x := v.(type) {
	case nil:
		return append(dst, "null"...)
	case string:
		return appendJSONString(dst, x)
	case float64:
		return appendJSONFloat(dst, x)
	case bool:
		return strconv.AppendBool(dst, x)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return append(dst, "null"...)
	}
	return append(dst, b...)
}

// appendOnlineValue appends a feature value as the response shows it (see
// onlineJSON).
func appendOnlineValue(dst []byte, v online.Value) []byte {
	switch v.Kind() {
	case online.KindBool:
		return strconv.AppendBool(dst, v.Bool())
	case online.KindInt64:
		return strconv.AppendInt(dst, v.Int64(), 10)
	case online.KindFloat64:
		return appendJSONFloat(dst, v.Float64())
	case online.KindString:
		return appendJSONString(dst, v.Str())
	case online.KindTimestamp:
		dst = append(dst, '"')
		dst = v.Time().UTC().AppendFormat(dst, time.RFC3339Nano)
		return append(dst, '"')
	}
	return append(dst, "null"...)
}
