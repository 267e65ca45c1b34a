package expr

import (
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
)

// String functions.

func init() {
	register("concat", 1, -1, bindConcat)
	register("concat_ws", 1, -1, bindConcatWS)
	register("lower lcase", 1, 1, strMap(func(dst []byte, s string) []byte { return appendLower(dst, s) }))
	register("upper ucase", 1, 1, strMap(func(dst []byte, s string) []byte { return appendUpper(dst, s) }))
	register("trim", 1, 1, strMap(func(dst []byte, s string) []byte { return append(dst, strings.Trim(s, " ")...) }))
	register("ltrim", 1, 1, strMap(func(dst []byte, s string) []byte { return append(dst, strings.TrimLeft(s, " ")...) }))
	register("rtrim", 1, 1, strMap(func(dst []byte, s string) []byte { return append(dst, strings.TrimRight(s, " ")...) }))
	register("reverse", 1, 1, strMap(func(dst []byte, s string) []byte {
		start := len(dst)
		for _, r := range s {
			dst = utf8.AppendRune(dst, r)
		}
		rs := []rune(string(dst[start:]))
		for i, j := 0, len(rs)-1; i < j; i, j = i+1, j-1 {
			rs[i], rs[j] = rs[j], rs[i]
		}
		return append(dst[:start], string(rs)...)
	}))
	register("length char_length character_length len", 1, 1, bindLength)
	register("substring substr", 2, 3, bindSubstring)
	register("replace", 2, 3, bindReplace)
	register("split", 2, 3, bindSplit)
	register("instr", 2, 2, func(f *fcall) (Expr, error) {
		if err := f.coerceAll(0, tString); err != nil {
			return nil, err
		}
		return f.done(tInt, func(ctx *Ctx, n int, as []arrow.Array) (arrow.Array, error) {
			s, sub := as[0].(*array.String), as[1].(*array.String)
			return buildI64(ctx.mem(), tInt, n, func(i int) (int64, bool) {
				k := strings.Index(s.Value(i), sub.Value(i))
				if k < 0 {
					return 0, true
				}
				return int64(utf8.RuneCountInString(s.Value(i)[:k])) + 1, true
			}, as...), nil
		})
	})
	register("startswith", 2, 2, strPred(strings.HasPrefix))
	register("endswith", 2, 2, strPred(strings.HasSuffix))
	register("contains", 2, 2, strPred(strings.Contains))
	register("regexp_extract", 2, 3, bindRegexpExtract)
	register("regexp_replace", 3, 3, bindRegexpReplace)
	register("lpad", 2, 3, func(f *fcall) (Expr, error) { return bindPad(f, true) })
	register("rpad", 2, 3, func(f *fcall) (Expr, error) { return bindPad(f, false) })
}

func appendLower(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= utf8.RuneSelf {
			return append(dst, strings.ToLower(s[i:])...)
		}
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		dst = append(dst, c)
	}
	return dst
}

func appendUpper(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= utf8.RuneSelf {
			return append(dst, strings.ToUpper(s[i:])...)
		}
		if c >= 'a' && c <= 'z' {
			c -= 'a' - 'A'
		}
		dst = append(dst, c)
	}
	return dst
}

// strMap binds a one-argument STRING → STRING function.
func strMap(fn func(dst []byte, s string) []byte) func(f *fcall) (Expr, error) {
	return func(f *fcall) (Expr, error) {
		if err := f.coerce(0, tString); err != nil {
			return nil, err
		}
		return f.done(tString, func(ctx *Ctx, n int, as []arrow.Array) (arrow.Array, error) {
			s := as[0].(*array.String)
			return buildBytes(ctx.mem(), tString, n, func(i int, dst []byte) ([]byte, bool) {
				return fn(dst, s.Value(i)), true
			}, as[0]), nil
		})
	}
}

func strPred(fn func(s, t string) bool) func(f *fcall) (Expr, error) {
	return func(f *fcall) (Expr, error) {
		if err := f.coerceAll(0, tString); err != nil {
			return nil, err
		}
		return f.done(tBool, func(ctx *Ctx, n int, as []arrow.Array) (arrow.Array, error) {
			s, t := as[0].(*array.String), as[1].(*array.String)
			return buildBool(ctx.mem(), n, func(i int) (bool, bool) { return fn(s.Value(i), t.Value(i)), true }, as...), nil
		})
	}
}

func bindConcat(f *fcall) (Expr, error) {
	if err := f.coerceAll(0, tString); err != nil {
		return nil, err
	}
	return f.done(tString, func(ctx *Ctx, n int, as []arrow.Array) (arrow.Array, error) {
		gs := make([]func(int) string, len(as))
		for k, a := range as {
			gs[k] = strGetter(a)
		}
		return buildBytes(ctx.mem(), tString, n, func(i int, dst []byte) ([]byte, bool) {
			for _, g := range gs {
				dst = append(dst, g(i)...)
			}
			return dst, true
		}, as...), nil
	})
}

func bindConcatWS(f *fcall) (Expr, error) {
	if err := f.coerce(0, tString); err != nil {
		return nil, err
	}
	for i := 1; i < len(f.args); i++ {
		if _, ok := f.args[i].Type().(*arrow.ListType); ok {
			continue
		}
		if err := f.coerce(i, tString); err != nil {
			return nil, err
		}
	}
	return f.done(tString, func(ctx *Ctx, n int, as []arrow.Array) (arrow.Array, error) {
		sep := as[0].(*array.String)
		return buildBytes(ctx.mem(), tString, n, func(i int, dst []byte) ([]byte, bool) {
			first := true
			add := func(s string) {
				if !first {
					dst = append(dst, sep.Value(i)...)
				}
				first = false
				dst = append(dst, s...)
			}
			for _, a := range as[1:] {
				if a.IsNull(i) || a.DataType().ID() == arrow.NULL {
					continue
				}
				switch a := a.(type) {
				case *array.String:
					add(a.Value(i))
				case *array.List:
					start, end := a.ValueOffsets(i)
					vals := a.ListValues()
					for j := start; j < end; j++ {
						if vals.IsValid(int(j)) {
							add(string(appendText(nil, vals, int(j))))
						}
					}
				}
			}
			return dst, true
		}, as[0]), nil
	})
}

func bindLength(f *fcall) (Expr, error) {
	if kindOf(f.args[0].Type()) != kBinary {
		if err := f.coerce(0, tString); err != nil {
			return nil, err
		}
	}
	return f.done(tInt, func(ctx *Ctx, n int, as []arrow.Array) (arrow.Array, error) {
		switch a := as[0].(type) {
		case *array.String:
			return buildI64(ctx.mem(), tInt, n, func(i int) (int64, bool) { return int64(utf8.RuneCountInString(a.Value(i))), true }, a), nil
		case *array.Binary:
			return buildI64(ctx.mem(), tInt, n, func(i int) (int64, bool) { return int64(a.ValueLen(i)), true }, a), nil
		}
		return nullArray(ctx.mem(), tInt, n), nil
	})
}

// substringSQL is Spark's substring: pos is 1-based, 0 is treated as 1,
// and a negative pos counts from the end.
func substringSQL(s string, pos, length int64, hasLen bool) string {
	ascii := true
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			ascii = false
			break
		}
	}
	var rs []rune
	n := int64(len(s))
	if !ascii {
		rs = []rune(s)
		n = int64(len(rs))
	}
	var start int64
	switch {
	case pos > 0:
		start = pos - 1
	case pos < 0:
		start = n + pos
	}
	end := n
	if hasLen {
		if length <= 0 {
			return ""
		}
		if start+length < start { // overflow
			end = n
		} else {
			end = start + length
		}
	}
	start = max(start, 0)
	end = min(end, n)
	if start >= end {
		return ""
	}
	if ascii {
		return s[start:end]
	}
	return string(rs[start:end])
}

func bindSubstring(f *fcall) (Expr, error) {
	if err := f.coerce(0, tString); err != nil {
		return nil, err
	}
	if err := f.coerceAll(1, tInt); err != nil {
		return nil, err
	}
	hasLen := len(f.args) == 3
	return f.done(tString, func(ctx *Ctx, n int, as []arrow.Array) (arrow.Array, error) {
		s := as[0].(*array.String)
		pos := i64s(as[1])
		var lens []int64
		if hasLen {
			lens = i64s(as[2])
		}
		return buildBytes(ctx.mem(), tString, n, func(i int, dst []byte) ([]byte, bool) {
			var l int64
			if hasLen {
				l = lens[i]
			}
			return append(dst, substringSQL(s.Value(i), pos[i], l, hasLen)...), true
		}, as...), nil
	})
}

func bindReplace(f *fcall) (Expr, error) {
	if err := f.coerceAll(0, tString); err != nil {
		return nil, err
	}
	return f.done(tString, func(ctx *Ctx, n int, as []arrow.Array) (arrow.Array, error) {
		s, search := as[0].(*array.String), as[1].(*array.String)
		var repl *array.String
		if len(as) == 3 {
			repl = as[2].(*array.String)
		}
		return buildBytes(ctx.mem(), tString, n, func(i int, dst []byte) ([]byte, bool) {
			v, old := s.Value(i), search.Value(i)
			if old == "" {
				return append(dst, v...), true
			}
			r := ""
			if repl != nil {
				r = repl.Value(i)
			}
			return append(dst, strings.ReplaceAll(v, old, r)...), true
		}, as...), nil
	})
}

// constRegexp compiles constant argument i as a regular expression.
func (f *fcall) constRegexp(i int) (*regexp.Regexp, bool, error) {
	pat, ok, err := f.constString(i, "a regular expression")
	if err != nil || !ok {
		return nil, ok, err
	}
	rx, err := regexp.Compile(pat)
	if err != nil {
		return nil, false, f.errorf(i, "invalid regular expression %q: %v", pat, err)
	}
	return rx, true, nil
}

func bindSplit(f *fcall) (Expr, error) {
	if err := f.coerce(0, tString); err != nil {
		return nil, err
	}
	rx, ok, err := f.constRegexp(1)
	if err != nil {
		return nil, err
	}
	t := arrow.ListOf(tString)
	if !ok {
		return nullResult(t)
	}
	limit := int64(-1)
	if len(f.args) == 3 {
		var ok bool
		if limit, ok, err = f.constInt(2, "the limit"); err != nil {
			return nil, err
		} else if !ok || limit <= 0 {
			limit = -1
		}
	}
	return f.done(t, func(ctx *Ctx, n int, as []arrow.Array) (arrow.Array, error) {
		s := as[0].(*array.String)
		b := array.NewListBuilder(ctx.mem(), tString)
		defer b.Release()
		vb := b.ValueBuilder().(*array.StringBuilder)
		for i := range n {
			if s.IsNull(i) {
				b.AppendNull()
				continue
			}
			b.Append(true)
			for _, part := range rx.Split(s.Value(i), int(limit)) {
				vb.Append(part)
			}
		}
		return b.NewArray(), nil
	})
}

func bindRegexpExtract(f *fcall) (Expr, error) {
	if err := f.coerce(0, tString); err != nil {
		return nil, err
	}
	rx, ok, err := f.constRegexp(1)
	if err != nil || !ok {
		return &constExpr{typ: tString}, err
	}
	group := int64(1)
	if len(f.args) == 3 {
		if group, _, err = f.constInt(2, "the group"); err != nil {
			return nil, err
		}
	}
	if group < 0 || group > int64(rx.NumSubexp()) {
		return nil, f.errorf(2, "group %d does not exist: the pattern has %d groups", group, rx.NumSubexp())
	}
	return f.done(tString, func(ctx *Ctx, n int, as []arrow.Array) (arrow.Array, error) {
		s := as[0].(*array.String)
		return buildBytes(ctx.mem(), tString, n, func(i int, dst []byte) ([]byte, bool) {
			v := s.Value(i)
			m := rx.FindStringSubmatchIndex(v)
			if m == nil || m[2*group] < 0 {
				return dst, true
			}
			return append(dst, v[m[2*group]:m[2*group+1]]...), true
		}, as[0]), nil
	})
}

func bindRegexpReplace(f *fcall) (Expr, error) {
	if err := f.coerce(0, tString); err != nil {
		return nil, err
	}
	rx, ok, err := f.constRegexp(1)
	if err != nil || !ok {
		return &constExpr{typ: tString}, err
	}
	if err := f.coerce(2, tString); err != nil {
		return nil, err
	}
	return f.done(tString, func(ctx *Ctx, n int, as []arrow.Array) (arrow.Array, error) {
		s, r := as[0].(*array.String), as[2].(*array.String)
		return buildBytes(ctx.mem(), tString, n, func(i int, dst []byte) ([]byte, bool) {
			// Spark writes groups as $1; so does Go.
			return append(dst, rx.ReplaceAllString(s.Value(i), r.Value(i))...), true
		}, as[0], as[2]), nil
	})
}

func bindPad(f *fcall, left bool) (Expr, error) {
	if err := f.coerce(0, tString); err != nil {
		return nil, err
	}
	if err := f.coerce(1, tInt); err != nil {
		return nil, err
	}
	if len(f.args) == 2 {
		f.args = append(f.args, &constExpr{typ: tString, val: " "})
		f.pos = append(f.pos, f.call.Start)
		f.skip = append(f.skip, false)
	}
	if err := f.coerce(2, tString); err != nil {
		return nil, err
	}
	return f.done(tString, func(ctx *Ctx, n int, as []arrow.Array) (arrow.Array, error) {
		s, ls, p := as[0].(*array.String), i64s(as[1]), as[2].(*array.String)
		return buildBytes(ctx.mem(), tString, n, func(i int, dst []byte) ([]byte, bool) {
			rs, pad := []rune(s.Value(i)), []rune(p.Value(i))
			l := int(max(0, min(ls[i], 1<<20)))
			if len(rs) >= l || len(pad) == 0 {
				return append(dst, string(rs[:min(len(rs), l)])...), true
			}
			fill := make([]rune, 0, l-len(rs))
			for len(fill) < l-len(rs) {
				fill = append(fill, pad[len(fill)%len(pad)])
			}
			if left {
				return append(append(dst, string(fill)...), string(rs)...), true
			}
			return append(append(dst, string(rs)...), string(fill)...), true
		}, as...), nil
	})
}
