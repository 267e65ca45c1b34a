package schema

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/santhosh-tekuri/jsonschema/v6"
)

// Decoder decodes records of one [Schema] into Arrow builders. A Decoder is
// not goroutine-safe; use one per goroutine. It reuses its scratch buffers
// from call to call, so decoding a valid record does not allocate.
//
// Decoding is one pass over the bytes, driven by the compiled schema: it
// checks JSON syntax and the schema while it records the values on a tape,
// and only when the whole record is valid does it replay the tape into the
// builder. That is how a rejected record leaves the builder untouched.
// [Decoder.AppendColumn] into a [Column], whose rows can be cut off again,
// skips the tape: it appends values as it parses them, and cuts a record
// that fails part way off the column (direct.go).
type Decoder struct {
	s      *Schema
	b      []byte  // the record being decoded; not retained after Append
	i      int     // read offset in b
	tape   []cell  // decoded values, replayed into the builder
	idx    []int32 // per struct on the tape: tape index of each field's value, -1 if missing
	buf    []byte  // unescaped strings
	pos    int     // replay offset in tape
	root   string
	dates  dateMemo      // the last date parsed
	shapes []shape       // per struct node (node.id): the keys of the last objects
	last   array.Builder // the last builder whose type was checked
	sink   *sink         // last's tree of builders, for replay
	// directMode says whether AppendColumn decodes in one pass (direct.go):
	// 0 not known yet, 1 yes, -1 no.
	directMode int8
}

// shape remembers, for one struct node, the key met at each position of
// the objects decoded last that the field expected next did not match
// (an unknown property, or fields out of schema order): records of a
// topic mostly have the same keys in the same order, so the next object
// likely has the same key there, which the decoder then matches as bytes
// without scanning and looking it up.
type shape struct {
	keys  []shapeKey
	arena []byte // the keys' bytes
}

type shapeKey struct {
	off, len int32 // `"key":` is arena[off:off+len]; len 0: nothing known
	f        int32 // the field index, or -1 for an unknown property
}

// shapeArenaMax bounds a shape's arena: when keys keep changing, it is
// reset rather than grown.
const shapeArenaMax = 4096

// match returns the field index remembered for the key at position k if
// b holds that key at i, and the key's length.
func (s *shape) match(k int, b []byte, i int) (f, n int, ok bool) {
	if k >= len(s.keys) {
		return 0, 0, false
	}
	e := s.keys[k]
	if e.len == 0 || len(b)-i < int(e.len) || string(b[i:i+int(e.len)]) != string(s.arena[e.off:e.off+e.len]) {
		return 0, 0, false
	}
	return int(e.f), int(e.len), true
}

// remember records key (`"key":`, as in the record) at position k.
func (s *shape) remember(k int, key []byte, f int) {
	if len(s.arena)+len(key) > shapeArenaMax {
		s.arena, s.keys = s.arena[:0], s.keys[:0]
		if len(key) > shapeArenaMax {
			return
		}
	}
	for len(s.keys) <= k {
		s.keys = append(s.keys, shapeKey{})
	}
	s.keys[k] = shapeKey{off: int32(len(s.arena)), len: int32(len(key)), f: int32(f)}
	s.arena = append(s.arena, key...)
}

// sink is one builder of the tree Append fills, with its concrete type
// resolved once per builder rather than once per value. The children of a
// struct or list builder stay the same for the builder's lifetime.
type sink struct {
	n      *node
	any    array.Builder
	str    *array.BinaryBuilder
	i64    *array.Int64Builder
	f64    *array.Float64Builder
	boo    *array.BooleanBuilder
	ts     *array.TimestampBuilder
	d32    *array.Date32Builder
	list   *array.ListBuilder
	st     *array.StructBuilder
	elem   *sink  // list
	fields []sink // struct
}

// newSink resolves the builder tree b for n. b's type is n's Arrow type.
func newSink(n *node, b array.Builder) *sink {
	s := &sink{}
	s.init(n, b)
	return s
}

func (s *sink) init(n *node, b array.Builder) {
	s.n, s.any = n, b
	switch n.kind {
	case kindPlain, kindString, kindJSON:
		s.str = b.(*array.StringBuilder).BinaryBuilder
	case kindInt:
		s.i64 = b.(*array.Int64Builder)
	case kindFloat:
		s.f64 = b.(*array.Float64Builder)
	case kindBool:
		s.boo = b.(*array.BooleanBuilder)
	case kindTimestamp:
		s.ts = b.(*array.TimestampBuilder)
	case kindDate:
		s.d32 = b.(*array.Date32Builder)
	case kindList:
		s.list = b.(*array.ListBuilder)
		s.elem = newSink(n.elem, s.list.ValueBuilder())
	case kindStruct:
		s.st = b.(*array.StructBuilder)
		s.fields = make([]sink, len(n.fields))
		for f := range n.fields {
			s.fields[f].init(n.fields[f].node, s.st.FieldBuilder(f))
		}
	}
}

// cell is one decoded value on the tape. It holds no pointers, so the
// tape costs the garbage collector nothing.
type cell struct {
	// i is the int64, float64 bits, bool (0/1), timestamp or date32; a
	// list's length; a struct's offset in idx; or a string's offset in
	// the record (or in buf, with cellInBuf).
	i    int64
	n    int32 // a string's length; a struct's end (tape index after its last cell)
	flag uint8
}

const (
	cellNull  uint8 = 1 << iota // null or missing; nothing below it is on the tape
	cellInBuf                   // the string is in buf (it had escapes), not in the record
)

// NewDecoder returns a decoder for s.
func (s *Schema) NewDecoder() *Decoder { return &Decoder{s: s} }

// SetRoot sets the name that starts every [DecodeError.Path], e.g. "key"
// or "value". The default is "", which gives paths like "items[2].sku".
func (d *Decoder) SetRoot(name string) { d.root = name }

// Append decodes data and appends exactly one value to b, whose type must be
// the schema's [Schema.ArrowType] (Append panics otherwise). data == nil (a
// missing Kafka key or value) appends null.
//
// On any error nothing is appended, b is unchanged and the error is a
// *[DecodeError] locating the violation, e.g.
// `value.amount: expected number, got string "abc"` or
// `invalid JSON at byte 17: ...`. The decoder and b stay usable.
//
// Append does not retain data.
func (d *Decoder) Append(b array.Builder, data []byte) error {
	if b != d.last {
		if !arrow.TypeEqual(b.Type(), d.s.dt) {
			panic(fmt.Sprintf("schema: Append to a %s builder, want %s", b.Type(), d.s.dt))
		}
		d.last, d.sink = b, newSink(d.s.root, b)
	}
	if data == nil {
		b.AppendNull()
		return nil
	}
	err := d.decode(data)
	switch {
	case err != nil:
	case d.s.textRoot():
		appendBytes(d.sink.str, data)
	default:
		d.pos = 0
		d.replay(d.sink)
	}
	d.b = nil // do not retain data
	return err
}

// Check returns the error [Decoder.Append] would return for data, without
// appending anything. A caller that appends one record into several
// builders (a Kafka key and value) checks every part before appending any,
// so that a refused record leaves no builder ahead of the others.
func (d *Decoder) Check(data []byte) error {
	if data == nil {
		return nil
	}
	err := d.decode(data)
	d.b = nil // do not retain data
	return err
}

// decode parses and checks data, leaving its values on the tape for replay.
func (d *Decoder) decode(data []byte) error {
	if d.s.textRoot() {
		if !validUTF8(data) {
			return &DecodeError{Path: d.root, Reason: fmt.Sprintf("invalid UTF-8 at byte %d", invalidUTF8At(data))}
		}
		if d.s.full != nil { // e.g. pattern or enum: validate the string as a JSON document
			quoted, _ := json.Marshal(string(data))
			if err := d.validate(quoted); err != nil {
				return err
			}
		}
		return nil
	}
	d.b, d.tape, d.idx, d.buf = data, d.tape[:0], d.idx[:0], d.buf[:0]
	d.i = skipWS(data, 0)
	vio := d.parse(d.s.root, 1)
	if vio == nil && skipWS(data, d.i) != len(data) {
		vio = errSyntax
	}
	if vio != nil {
		// A document that is not JSON is reported as such, whatever
		// schema violation the decoder met first.
		if err := scanJSON(data); err != nil {
			return &DecodeError{Path: d.root, Reason: err.Error()}
		}
		return vio.toError(d.root)
	}
	if d.s.full != nil {
		if err := d.validate(data); err != nil {
			return err
		}
	}
	return nil
}

// validUTF8 is utf8.Valid, faster on short ASCII text such as Kafka keys.
func validUTF8(b []byte) bool {
	i := 0
	for ; i+8 <= len(b); i += 8 {
		if binary.LittleEndian.Uint64(b[i:])&msb != 0 {
			return utf8.Valid(b[i:])
		}
	}
	for ; i < len(b); i++ {
		if b[i] >= utf8.RuneSelf {
			return utf8.Valid(b[i:])
		}
	}
	return true
}

func invalidUTF8At(b []byte) int {
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && size <= 1 {
			return i
		}
		i += size
	}
	return len(b)
}

func (d *Decoder) push(c cell) { d.tape = append(d.tape, c) }

// errSyntax marks a syntax error met while decoding; Append then reports
// the scanner's precise message instead.
var errSyntax = &violation{syntax: true, reason: "invalid JSON"}

// typeErr reports that the value at d.i does not have the type n wants.
func (d *Decoder) typeErr(n *node) *violation {
	return &violation{reason: "expected " + n.expected() + ", got " + describeAt(d.b, d.i)}
}

// describeAt renders the JSON value at b[i] for an error message.
func describeAt(b []byte, i int) string {
	if i >= len(b) {
		return "nothing"
	}
	const max = 40
	raw := func() string {
		end, err := scanValue(b, i, 1)
		if err != nil {
			return "invalid value"
		}
		s := string(b[i:end])
		if len(s) > max {
			s = strings.ToValidUTF8(s[:max], "") + "…"
		}
		return s
	}
	switch c := b[i]; {
	case c == '"':
		return "string " + raw()
	case c == '-' || c >= '0' && c <= '9':
		return "number " + raw()
	case c == 't' || c == 'f':
		return "boolean " + raw()
	case c == 'n':
		return "null"
	case c == '{':
		return "object"
	case c == '[':
		return "array"
	}
	return "invalid value"
}

// parse decodes the value at d.i, which sits at nesting depth, for node n:
// it checks syntax and schema and pushes the value's cells. On success d.i
// is just after the value.
func (d *Decoder) parse(n *node, depth int) *violation {
	b, i := d.b, d.i
	if i >= len(b) || depth > maxDepth {
		return errSyntax
	}
	c := b[i]
	if c == 'n' {
		if len(b)-i < 4 || string(b[i:i+4]) != "null" {
			return errSyntax
		}
		if !n.nullable {
			return d.typeErr(n)
		}
		d.i = i + 4
		d.push(cell{flag: cellNull})
		return nil
	}
	switch n.kind {
	case kindString, kindTimestamp, kindDate:
		if c != '"' {
			return d.typeErr(n)
		}
		s, escaped, ok := d.str()
		if !ok {
			return errSyntax
		}
		switch n.kind {
		case kindString:
			if escaped {
				d.push(cell{i: int64(len(d.buf) - len(s)), n: int32(len(s)), flag: cellInBuf})
			} else {
				d.push(cell{i: int64(d.i - 1 - len(s)), n: int32(len(s))})
			}
		case kindTimestamp:
			us, reason := d.dates.dateTime(s)
			if reason != "" {
				return &violation{reason: "invalid date-time " + strconv.Quote(string(s)) + ": " + reason}
			}
			d.push(cell{i: us})
		case kindDate:
			days, reason := d.dates.date(s)
			if reason != "" {
				return &violation{reason: "invalid date " + strconv.Quote(string(s)) + ": " + reason}
			}
			d.push(cell{i: int64(days)})
		}
	case kindInt, kindFloat:
		if c != '-' && (c < '0' || c > '9') {
			return d.typeErr(n)
		}
		end, msg := scanNumber(b, i)
		if msg != "" {
			return errSyntax
		}
		text := b2s(b[i:end])
		if n.kind == kindInt {
			v, r := parseInt(text)
			switch r {
			case numNotInteger:
				return d.typeErr(n)
			case numOutOfRange:
				return &violation{reason: "number " + text + " is out of the int64 range"}
			}
			d.push(cell{i: v})
		} else {
			f, ok := parseFloat(text)
			if !ok {
				return &violation{reason: "number " + text + " is out of the float64 range"}
			}
			d.push(cell{i: int64(math.Float64bits(f))})
		}
		d.i = end
	case kindBool:
		switch {
		case c == 't' && len(b)-i >= 4 && string(b[i:i+4]) == "true":
			d.push(cell{i: 1})
			d.i = i + 4
		case c == 'f' && len(b)-i >= 5 && string(b[i:i+5]) == "false":
			d.push(cell{i: 0})
			d.i = i + 5
		default:
			return d.typeErr(n)
		}
	case kindNull:
		return d.typeErr(n)
	case kindJSON:
		if n.accept == acceptObject && c != '{' || n.accept == acceptArray && c != '[' {
			return d.typeErr(n)
		}
		end, err := scanValue(b, i, depth)
		if err != nil {
			return errSyntax
		}
		d.push(cell{i: int64(i), n: int32(end - i)})
		d.i = end
	case kindList:
		if c != '[' {
			return d.typeErr(n)
		}
		return d.list(n, depth)
	case kindStruct:
		if c != '{' {
			return d.typeErr(n)
		}
		return d.object(n, depth)
	}
	return nil
}

func (d *Decoder) list(n *node, depth int) *violation {
	b := d.b
	at := len(d.tape)
	d.push(cell{})
	d.i = skipWS(b, d.i+1)
	count := 0
	if d.i < len(b) && b[d.i] == ']' {
		d.i++
	} else {
		for {
			if vio := d.parse(n.elem, depth+1); vio != nil {
				return vio.under(seg{index: count, isIdx: true})
			}
			count++
			d.i = skipWS(b, d.i)
			if d.i >= len(b) {
				return errSyntax
			}
			if b[d.i] == ',' {
				d.i = skipWS(b, d.i+1)
				continue
			}
			if b[d.i] != ']' {
				return errSyntax
			}
			d.i++
			break
		}
	}
	d.tape[at].i = int64(count)
	return nil
}

func (d *Decoder) object(n *node, depth int) *violation {
	b := d.b
	at := len(d.tape)
	off := len(d.idx)
	d.idx = slices.Grow(d.idx, len(n.fields))[:off+len(n.fields)]
	for k := off; k < len(d.idx); k++ {
		d.idx[k] = -1
	}
	d.push(cell{i: int64(off)})
	i := skipWS(b, d.i+1)
	next := 0 // the field expected next
	k := 0    // the position of the key in the object
	if len(d.shapes) <= n.id {
		d.shapes = make([]shape, d.s.objs)
	}
	sh := &d.shapes[n.id]
	if i < len(b) && b[i] == '}' {
		i++
	} else {
		for {
			if i >= len(b) || b[i] != '"' {
				return errSyntax
			}
			f, j, vio := d.objectKey(n, sh, next, k, i)
			if vio != nil {
				return vio
			}
			i = j
			k++
			if f >= 0 {
				// A repeated key: the last one wins, as in encoding/json.
				next = f + 1
				d.idx[off+f] = int32(len(d.tape))
				d.i = i
				if vio := d.parse(n.fields[f].node, depth+1); vio != nil {
					return vio.under(seg{key: n.fields[f].name})
				}
				i = d.i
			} else {
				end, err := scanValue(b, i, depth+1)
				if err != nil {
					return errSyntax
				}
				i = end
			}
			i = skipWS(b, i)
			if i >= len(b) {
				return errSyntax
			}
			if b[i] == ',' {
				i = skipWS(b, i+1)
				continue
			}
			if b[i] != '}' {
				return errSyntax
			}
			i++
			break
		}
	}
	d.i = i
	for _, f := range n.required {
		if d.idx[off+f] < 0 {
			return &violation{segs: []seg{{key: n.fields[f].name}}, reason: "required property missing"}
		}
	}
	d.tape[at].n = int32(len(d.tape))
	return nil
}

// objectKey reads the key whose opening quote is at b[i], the k-th of an
// object of n whose field expected next is next, and the colon after it.
// It returns the key's field index (-1 for an unknown property) and the
// offset of the value, or a violation: a syntax error, or a property that
// n does not allow. Producers usually write fields in schema order and
// keys without escapes: it tries the expected key's bytes first, then the
// key that the last objects had at this position (sh), and only then
// scans and looks the key up, remembering it in sh.
func (d *Decoder) objectKey(n *node, sh *shape, next, k, i int) (f, j int, vio *violation) {
	b := d.b
	if next < len(n.fields) && n.fields[next].keyAt(b, i) {
		return next, skipWS(b, i+len(n.fields[next].key)), nil
	}
	if mf, ml, ok := sh.match(k, b, i); ok {
		return mf, skipWS(b, i+ml), nil
	}
	d.i = i
	key, _, ok := d.str()
	if !ok {
		return 0, 0, errSyntax
	}
	if f = n.lookup(key, next); f < 0 && n.closed {
		return 0, 0, &violation{segs: []seg{{key: string(key)}}, reason: "property not allowed (additionalProperties is false)"}
	}
	if d.i < len(b) && b[d.i] == ':' {
		sh.remember(k, b[i:d.i+1], f)
	}
	j = skipWS(b, d.i)
	if j >= len(b) || b[j] != ':' {
		return 0, 0, errSyntax
	}
	return f, skipWS(b, j+1), nil
}

// str decodes the string whose opening quote is at d.i and moves d.i past
// it. The result aliases the record, ending just before the closing quote,
// when the string has no escapes; otherwise it is the tail of d.buf and
// escaped is true. ok is false on a syntax error.
func (d *Decoder) str() (s []byte, escaped, ok bool) {
	b := d.b
	start := d.i + 1
	i := start
	for {
		i = skipPlain(b, i)
		if i >= len(b) {
			return nil, false, false
		}
		switch c := b[i]; {
		case c == '"':
			d.i = i + 1
			return b[start:i], false, true
		case c == '\\':
			s, ok := d.strEscaped(start, i)
			return s, true, ok
		case c < 0x20:
			return nil, false, false
		default:
			r, size := utf8.DecodeRune(b[i:])
			if r == utf8.RuneError && size <= 1 {
				return nil, false, false
			}
			i += size
		}
	}
}

// strEscaped finishes a string that has an escape at b[i], unescaping into
// d.buf.
func (d *Decoder) strEscaped(start, i int) ([]byte, bool) {
	b := d.b
	out := len(d.buf)
	d.buf = append(d.buf, b[start:i]...)
	for i < len(b) {
		switch c := b[i]; {
		case c == '"':
			d.i = i + 1
			return d.buf[out:len(d.buf):len(d.buf)], true
		case c == '\\':
			if i+1 >= len(b) {
				return nil, false
			}
			switch e := b[i+1]; e {
			case '"', '\\', '/':
				d.buf = append(d.buf, e)
			case 'b':
				d.buf = append(d.buf, '\b')
			case 'f':
				d.buf = append(d.buf, '\f')
			case 'n':
				d.buf = append(d.buf, '\n')
			case 'r':
				d.buf = append(d.buf, '\r')
			case 't':
				d.buf = append(d.buf, '\t')
			case 'u':
				r, ok := hex4(b, i+2)
				if !ok || utf16.IsSurrogate(r) && r >= 0xDC00 {
					return nil, false
				}
				if utf16.IsSurrogate(r) {
					if i+7 >= len(b) || b[i+6] != '\\' || b[i+7] != 'u' {
						return nil, false
					}
					r2, ok := hex4(b, i+8)
					if !ok || r2 < 0xDC00 || r2 > 0xDFFF {
						return nil, false
					}
					r = utf16.DecodeRune(r, r2)
					i += 6
				}
				d.buf = utf8.AppendRune(d.buf, r)
				i += 4
			default:
				return nil, false
			}
			i += 2
		case c < 0x20:
			return nil, false
		case c < utf8.RuneSelf:
			d.buf = append(d.buf, c)
			i++
		default:
			r, size := utf8.DecodeRune(b[i:])
			if r == utf8.RuneError && size <= 1 {
				return nil, false
			}
			d.buf = append(d.buf, b[i:i+size]...)
			i += size
		}
	}
	return nil, false
}

// replay appends the tape's value at d.pos to s's builder.
func (d *Decoder) replay(s *sink) {
	c := &d.tape[d.pos]
	d.pos++
	if c.flag&cellNull != 0 {
		s.any.AppendNull()
		return
	}
	switch s.n.kind {
	case kindString, kindJSON:
		src := d.b
		if c.flag&cellInBuf != 0 {
			src = d.buf
		}
		appendBytes(s.str, src[c.i:c.i+int64(c.n)])
	case kindInt:
		if b := s.i64; b.Len() < b.Cap() {
			b.UnsafeAppend(c.i)
		} else {
			b.Append(c.i)
		}
	case kindFloat:
		if b := s.f64; b.Len() < b.Cap() {
			b.UnsafeAppend(math.Float64frombits(uint64(c.i)))
		} else {
			b.Append(math.Float64frombits(uint64(c.i)))
		}
	case kindBool:
		if b := s.boo; b.Len() < b.Cap() {
			b.UnsafeAppend(c.i != 0)
		} else {
			b.Append(c.i != 0)
		}
	case kindTimestamp:
		if b := s.ts; b.Len() < b.Cap() {
			b.UnsafeAppend(arrow.Timestamp(c.i))
		} else {
			b.Append(arrow.Timestamp(c.i))
		}
	case kindDate:
		if b := s.d32; b.Len() < b.Cap() {
			b.UnsafeAppend(arrow.Date32(c.i))
		} else {
			b.Append(arrow.Date32(c.i))
		}
	case kindList:
		s.list.Append(true)
		for k := int64(0); k < c.i; k++ {
			d.replay(s.elem)
		}
	case kindStruct:
		s.st.Append(true)
		off, end := int(c.i), int(c.n)
		for f := range s.fields {
			if at := d.idx[off+f]; at >= 0 {
				d.pos = int(at)
				d.replay(&s.fields[f])
			} else {
				s.fields[f].any.AppendNull()
			}
		}
		d.pos = end
	default: // kindNull only holds null
		s.any.AppendNull()
	}
}

// appendBytes appends v to b, without the capacity checks of Append when
// b was reserved for it.
func appendBytes(b *array.BinaryBuilder, v []byte) {
	if b.Len() < b.Cap() && b.DataCap()-b.DataLen() >= len(v) {
		b.UnsafeAppend(v)
	} else {
		b.Append(v)
	}
}

// validate runs the full JSON Schema validator on a record the decoder has
// accepted.
func (d *Decoder) validate(data []byte) *DecodeError {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		return &DecodeError{Path: d.root, Reason: "invalid JSON: " + err.Error()}
	}
	err = d.s.full.Validate(doc)
	if err == nil {
		return nil
	}
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return &DecodeError{Path: d.root, Reason: err.Error()}
	}
	loc, reason := firstLeaf(ve)
	return &DecodeError{Path: pathOf(d.root, doc, loc), Reason: reason}
}

// pathOf spells the JSON pointer tokens loc, relative to doc, as a path.
func pathOf(root string, doc any, loc []string) string {
	var b strings.Builder
	b.WriteString(root)
	for _, tok := range loc {
		switch v := doc.(type) {
		case []any:
			if i, err := strconv.Atoi(tok); err == nil && i >= 0 && i < len(v) {
				writeSeg(&b, seg{index: i, isIdx: true})
				doc = v[i]
				continue
			}
		case map[string]any:
			writeSeg(&b, seg{key: tok})
			doc = v[tok]
			continue
		}
		writeSeg(&b, seg{key: tok})
		doc = nil
	}
	return b.String()
}
