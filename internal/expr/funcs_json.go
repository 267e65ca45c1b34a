package expr

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/valyala/fastjson"

	"github.com/sluice-dev/sluice/internal/sql"
)

// JSON functions: from_json, to_json, get_json_object.

func init() {
	register("from_json", 2, 3, bindFromJSON)
	register("to_json", 1, 2, bindToJSON)
	register("get_json_object json_extract", 2, 2, bindGetJSONObject)
}

// ParseSchema parses a from_json schema: Spark DDL ('a STRING, b DOUBLE')
// or a type ('STRUCT<a: STRING>', 'ARRAY<BIGINT>', 'MAP<STRING, INT>').
func ParseSchema(s string) (arrow.DataType, error) {
	var t sql.DataType
	var err error
	if u := strings.ToUpper(strings.TrimSpace(s)); strings.HasPrefix(u, "STRUCT") || strings.HasPrefix(u, "ARRAY") || strings.HasPrefix(u, "MAP") {
		t, err = sql.ParseType(s)
	} else {
		t, err = sql.ParseType("STRUCT<" + s + ">")
	}
	if err != nil {
		return nil, fmt.Errorf("invalid schema %q (write it as 'name TYPE, ...' or 'STRUCT<name: TYPE, ...>'): %w", s, err)
	}
	return ArrowType(t)
}

func bindFromJSON(f *fcall) (Expr, error) {
	if err := f.coerce(0, tString); err != nil {
		return nil, err
	}
	s, ok, err := f.constString(1, "the schema")
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, f.errorf(1, "the schema must not be NULL")
	}
	t, err := ParseSchema(s)
	if err != nil {
		return nil, f.errorf(1, "%v", err)
	}
	if len(f.args) == 3 {
		f.skip[2] = true // options: PERMISSIVE is the only mode
	}
	return f.done(t, func(ctx *Ctx, n int, as []arrow.Array) (arrow.Array, error) {
		src := as[0].(*array.String)
		b := array.NewBuilder(ctx.mem(), t)
		defer b.Release()
		b.Reserve(n)
		var p fastjson.Parser
		for i := range n {
			if src.IsNull(i) {
				b.AppendNull()
				continue
			}
			v, err := p.Parse(src.Value(i))
			if err != nil {
				b.AppendNull() // malformed: a NULL row, as Spark's PERMISSIVE mode
				continue
			}
			appendJSON(b, v)
		}
		return b.NewArray(), nil
	})
}

// lookupField finds key in o, exactly or else case-insensitively.
func lookupField(o *fastjson.Object, key string) *fastjson.Value {
	if v := o.Get(key); v != nil {
		return v
	}
	var found *fastjson.Value
	o.Visit(func(k []byte, v *fastjson.Value) {
		if found == nil && strings.EqualFold(string(k), key) {
			found = v
		}
	})
	return found
}

// appendJSON appends v converted to the builder's type; values of the
// wrong JSON type are NULL.
func appendJSON(b array.Builder, v *fastjson.Value) {
	if v == nil || v.Type() == fastjson.TypeNull {
		b.AppendNull()
		return
	}
	switch b := b.(type) {
	case *array.StructBuilder:
		o, err := v.Object()
		if err != nil {
			b.AppendNull()
			return
		}
		b.Append(true)
		st := b.Type().(*arrow.StructType)
		for i, fl := range st.Fields() {
			appendJSON(b.FieldBuilder(i), lookupField(o, fl.Name))
		}
	case *array.ListBuilder:
		vs, err := v.Array()
		if err != nil {
			b.AppendNull()
			return
		}
		b.Append(true)
		for _, e := range vs {
			appendJSON(b.ValueBuilder(), e)
		}
	case *array.MapBuilder:
		o, err := v.Object()
		if err != nil {
			b.AppendNull()
			return
		}
		b.Append(true)
		o.Visit(func(k []byte, e *fastjson.Value) {
			if kb, ok := b.KeyBuilder().(*array.StringBuilder); ok {
				kb.Append(string(k))
			} else if err := b.KeyBuilder().AppendValueFromString(string(k)); err != nil {
				return // keys that do not convert are left out
			}
			appendJSON(b.ItemBuilder(), e)
		})
	case *array.StringBuilder:
		if v.Type() == fastjson.TypeString {
			b.BinaryBuilder.Append(v.GetStringBytes())
		} else {
			b.Append(v.String())
		}
	case *array.BinaryBuilder:
		if v.Type() == fastjson.TypeString {
			b.Append(v.GetStringBytes())
		} else {
			b.AppendString(v.String())
		}
	case *array.BooleanBuilder:
		switch v.Type() {
		case fastjson.TypeTrue:
			b.Append(true)
		case fastjson.TypeFalse:
			b.Append(false)
		default:
			b.AppendNull()
		}
	case *array.Int64Builder, *array.Int32Builder, *array.Int16Builder, *array.Int8Builder:
		x, err := v.Int64()
		if err != nil || v.Type() != fastjson.TypeNumber {
			b.AppendNull()
			return
		}
		switch b := b.(type) {
		case *array.Int64Builder:
			b.Append(x)
		case *array.Int32Builder:
			appendIfFits(b, x, math.MinInt32, math.MaxInt32, func(x int64) { b.Append(int32(x)) })
		case *array.Int16Builder:
			appendIfFits(b, x, math.MinInt16, math.MaxInt16, func(x int64) { b.Append(int16(x)) })
		case *array.Int8Builder:
			appendIfFits(b, x, math.MinInt8, math.MaxInt8, func(x int64) { b.Append(int8(x)) })
		}
	case *array.Float64Builder:
		x, err := v.Float64()
		if err != nil {
			b.AppendNull()
			return
		}
		b.Append(x)
	case *array.Float32Builder:
		x, err := v.Float64()
		if err != nil {
			b.AppendNull()
			return
		}
		b.Append(float32(x))
	case *array.TimestampBuilder:
		switch v.Type() {
		case fastjson.TypeString:
			us, ok := parseTimestamp(string(v.GetStringBytes()))
			if !ok {
				b.AppendNull()
				return
			}
			b.Append(arrow.Timestamp(us))
		case fastjson.TypeNumber:
			b.Append(arrow.Timestamp(int64(v.GetFloat64() * 1e6)))
		default:
			b.AppendNull()
		}
	case *array.Date32Builder:
		d, ok := parseDate(string(v.GetStringBytes()))
		if v.Type() != fastjson.TypeString || !ok {
			b.AppendNull()
			return
		}
		b.Append(arrow.Date32(d))
	default:
		b.AppendNull()
	}
}

func appendIfFits(b array.Builder, x, lo, hi int64, app func(int64)) {
	if x < lo || x > hi {
		b.AppendNull()
		return
	}
	app(x)
}

func bindToJSON(f *fcall) (Expr, error) {
	switch kindOf(f.args[0].Type()) {
	case kStruct, kList, kMap, kNull:
	default:
		return nil, f.errorf(0, "needs a STRUCT, ARRAY or MAP, got %s", typeName(f.args[0].Type()))
	}
	if len(f.args) == 2 {
		f.skip[1] = true
	}
	return f.done(tString, func(ctx *Ctx, n int, as []arrow.Array) (arrow.Array, error) {
		a := as[0]
		return buildBytes(ctx.mem(), tString, n, func(i int, dst []byte) ([]byte, bool) {
			return appendJSONValue(dst, a, i), true
		}, a), nil
	})
}

// appendJSONValue writes row i of a as JSON, as Spark's to_json: struct
// fields that are NULL are left out.
func appendJSONValue(dst []byte, a arrow.Array, i int) []byte {
	if a.IsNull(i) {
		return append(dst, "null"...)
	}
	switch a := a.(type) {
	case *array.Struct:
		st := a.DataType().(*arrow.StructType)
		dst = append(dst, '{')
		first := true
		for k, fl := range st.Fields() {
			c := a.Field(k)
			if c.IsNull(i) {
				continue
			}
			if !first {
				dst = append(dst, ',')
			}
			first = false
			dst = appendJSONString(dst, fl.Name)
			dst = append(dst, ':')
			dst = appendJSONValue(dst, c, i)
		}
		return append(dst, '}')
	case *array.List:
		start, end := a.ValueOffsets(i)
		dst = append(dst, '[')
		for j := start; j < end; j++ {
			if j > start {
				dst = append(dst, ',')
			}
			dst = appendJSONValue(dst, a.ListValues(), int(j))
		}
		return append(dst, ']')
	case *array.Map:
		start, end := a.ValueOffsets(i)
		dst = append(dst, '{')
		for j := start; j < end; j++ {
			if j > start {
				dst = append(dst, ',')
			}
			dst = appendJSONString(dst, string(appendText(nil, a.Keys(), int(j))))
			dst = append(dst, ':')
			dst = appendJSONValue(dst, a.Items(), int(j))
		}
		return append(dst, '}')
	case *array.String:
		return appendJSONString(dst, a.Value(i))
	case *array.Boolean, *array.Int64, *array.Int32, *array.Int16, *array.Int8:
		return append(dst, formatValue(a, i, false)...)
	case *array.Float64, *array.Float32:
		f := scalarAt(a, i).(float64)
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return appendJSONString(dst, string(appendFloat(nil, f)))
		}
		return appendFloat(dst, f)
	case *array.Timestamp:
		us := scalarAt(a, i).(int64)
		return appendJSONString(dst, string(formatPattern(nil, isoPattern, us)))
	}
	return appendJSONString(dst, formatValue(a, i, false))
}

var isoPattern, _ = compilePattern("yyyy-MM-dd'T'HH:mm:ss.SSSXXX")

func appendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			dst = append(dst, '\\', c)
		case c < 0x20:
			switch c {
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\t':
				dst = append(dst, '\\', 't')
			case '\r':
				dst = append(dst, '\\', 'r')
			default:
				dst = append(dst, fmt.Sprintf("\\u%04x", c)...)
			}
		case c >= utf8.RuneSelf:
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				dst = append(dst, `\ufffd`...)
			} else {
				dst = append(dst, s[i:i+size]...)
			}
			i += size
			continue
		default:
			dst = append(dst, c)
		}
		i++
	}
	return append(dst, '"')
}

// jsonStep is one step of a JSON path: a field or an array index.
type jsonStep struct {
	field string
	index int // -1 for a field
}

// compileJSONPath compiles $.a.b, $.a[0], $['a b'].
func compileJSONPath(p string) ([]jsonStep, error) {
	if !strings.HasPrefix(p, "$") {
		return nil, fmt.Errorf("invalid JSON path %q: it must start with $", p)
	}
	var steps []jsonStep
	for i := 1; i < len(p); {
		switch p[i] {
		case '.':
			j := i + 1
			for j < len(p) && p[j] != '.' && p[j] != '[' {
				j++
			}
			if j == i+1 {
				return nil, fmt.Errorf("invalid JSON path %q: empty field name at %d", p, i+1)
			}
			steps = append(steps, jsonStep{field: p[i+1 : j], index: -1})
			i = j
		case '[':
			j := strings.IndexByte(p[i:], ']')
			if j < 0 {
				return nil, fmt.Errorf("invalid JSON path %q: missing ]", p)
			}
			in := p[i+1 : i+j]
			if len(in) >= 2 && (in[0] == '\'' || in[0] == '"') && in[len(in)-1] == in[0] {
				steps = append(steps, jsonStep{field: in[1 : len(in)-1], index: -1})
			} else if k, err := strconv.Atoi(in); err == nil && k >= 0 {
				steps = append(steps, jsonStep{index: k})
			} else {
				return nil, fmt.Errorf("invalid JSON path %q: %q is neither an index nor a quoted name", p, in)
			}
			i += j + 1
		default:
			return nil, fmt.Errorf("invalid JSON path %q at %d: expected . or [", p, i+1)
		}
	}
	return steps, nil
}

func bindGetJSONObject(f *fcall) (Expr, error) {
	if err := f.coerce(0, tString); err != nil {
		return nil, err
	}
	p, ok, err := f.constString(1, "the JSON path")
	if err != nil || !ok {
		return &constExpr{typ: tString}, err
	}
	steps, err := compileJSONPath(p)
	if err != nil {
		return nil, f.errorf(1, "%v", err)
	}
	return f.done(tString, func(ctx *Ctx, n int, as []arrow.Array) (arrow.Array, error) {
		src := as[0].(*array.String)
		var parser fastjson.Parser
		return buildBytes(ctx.mem(), tString, n, func(i int, dst []byte) ([]byte, bool) {
			v, err := parser.Parse(src.Value(i))
			if err != nil {
				return dst, false
			}
			for _, s := range steps {
				if s.index >= 0 {
					arr, err := v.Array()
					if err != nil || s.index >= len(arr) {
						return dst, false
					}
					v = arr[s.index]
				} else {
					o, err := v.Object()
					if err != nil {
						return dst, false
					}
					if v = o.Get(s.field); v == nil {
						return dst, false
					}
				}
			}
			switch v.Type() {
			case fastjson.TypeNull:
				return dst, false
			case fastjson.TypeString:
				return append(dst, v.GetStringBytes()...), true
			}
			return v.MarshalTo(dst), true
		}, as[0]), nil
	})
}
