package expr

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/sluice-dev/sluice/internal/sql"
)

// matcher tests one string; compiled once per expression.
type matcher func(s string) bool

// compileLike compiles a LIKE pattern: % matches any run of characters, _
// one character, and \ escapes the next character. Patterns that are an
// exact string, a prefix, a suffix or a substring use strings functions;
// the rest a regular expression. ILIKE (fold) compares case-insensitively.
func compileLike(pat string, fold bool) (matcher, error) {
	type piece struct {
		lit  string
		wild byte // 0 for a literal, '%' or '_'
	}
	var pieces []piece
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			pieces = append(pieces, piece{lit: lit.String()})
			lit.Reset()
		}
	}
	for i := 0; i < len(pat); i++ {
		c := pat[i]
		switch c {
		case '\\':
			if i+1 == len(pat) {
				return nil, fmt.Errorf("the LIKE pattern %q ends with an escape character; write \\\\ for a backslash", pat)
			}
			i++
			lit.WriteByte(pat[i])
		case '%', '_':
			flush()
			pieces = append(pieces, piece{wild: c})
		default:
			lit.WriteByte(c)
		}
	}
	flush()
	if fold {
		for i := range pieces {
			pieces[i].lit = strings.ToLower(pieces[i].lit)
		}
	}
	prep := func(s string) string { return s }
	if fold {
		prep = strings.ToLower
	}
	// Fast paths: x, x%, %x, %x%, %.
	simple := true
	for i, p := range pieces {
		if p.wild == '_' || p.wild == '%' && i != 0 && i != len(pieces)-1 {
			simple = false
		}
	}
	if simple && len(pieces) <= 3 {
		lead := len(pieces) > 0 && pieces[0].wild == '%'
		trail := len(pieces) > 1 && pieces[len(pieces)-1].wild == '%'
		var text string
		for _, p := range pieces {
			if p.wild == 0 {
				text = p.lit
			}
		}
		switch {
		case len(pieces) == 0:
			return func(s string) bool { return s == "" }, nil
		case len(pieces) == 1 && lead:
			return func(string) bool { return true }, nil
		case len(pieces) == 1:
			if fold {
				return func(s string) bool { return strings.EqualFold(s, text) }, nil
			}
			return func(s string) bool { return s == text }, nil
		case len(pieces) == 2 && lead:
			return func(s string) bool { return strings.HasSuffix(prep(s), text) }, nil
		case len(pieces) == 2 && trail:
			return func(s string) bool { return strings.HasPrefix(prep(s), text) }, nil
		case len(pieces) == 3 && lead && trail:
			return func(s string) bool { return strings.Contains(prep(s), text) }, nil
		}
	}
	var re strings.Builder
	re.WriteString("(?s)")
	if fold {
		re.WriteString("(?i)")
	}
	re.WriteString("^")
	for _, p := range pieces {
		switch p.wild {
		case '%':
			re.WriteString(".*")
		case '_':
			re.WriteString(".")
		default:
			re.WriteString(regexp.QuoteMeta(p.lit))
		}
	}
	re.WriteString("$")
	rx, err := regexp.Compile(re.String())
	if err != nil {
		return nil, err
	}
	return rx.MatchString, nil
}

// likeExpr is x [NOT] LIKE/ILIKE/RLIKE pattern with a constant pattern.
type likeExpr struct {
	x       Expr
	op      sql.LikeOp
	not     bool
	pattern string
	match   matcher
}

func (e *likeExpr) Type() arrow.DataType { return tBool }
func (e *likeExpr) children() []Expr     { return []Expr{e.x} }
func (e *likeExpr) String() string {
	not := ""
	if e.not {
		not = "NOT "
	}
	return "(" + e.x.String() + " " + not + e.op.String() + " " + formatScalar(tString, e.pattern, true) + ")"
}

func (e *likeExpr) Eval(ctx *Ctx, in arrow.RecordBatch) (arrow.Array, error) {
	xa, err := e.x.Eval(ctx, in)
	if err != nil {
		return nil, err
	}
	defer xa.Release()
	n := xa.Len()
	if xa.DataType().ID() == arrow.NULL {
		return nullArray(ctx.mem(), tBool, n), nil
	}
	s := xa.(*array.String)
	vb, out := newBitmap(ctx.mem(), n)
	for i := range n {
		out[i>>3] |= b2u(e.match(s.Value(i)) != e.not) << (i & 7)
	}
	return makeArray(tBool, n, andValidity(ctx.mem(), n, xa), vb), nil
}

func (b *binder) bindLike(e *sql.Like) (Expr, error) {
	x, err := b.bind(e.X)
	if err != nil {
		return nil, err
	}
	if x, err = b.coerce(canon(x), tString, e.X.Pos(), e.Op.String()); err != nil {
		return nil, err
	}
	p, err := b.bind(e.Pattern)
	if err != nil {
		return nil, err
	}
	c, ok := p.(*constExpr)
	if !ok {
		return nil, errorf(e.Pattern.Pos(), "the pattern of %s must be a constant string, got %s", e.Op, p.String())
	}
	if c.val == nil {
		return &constExpr{typ: tBool}, nil
	}
	pat, ok := c.val.(string)
	if !ok {
		return nil, errorf(e.Pattern.Pos(), "the pattern of %s must be a string, got %s", e.Op, typeName(c.typ))
	}
	var m matcher
	if e.Op == sql.OpRLike {
		rx, err := regexp.Compile(pat)
		if err != nil {
			return nil, errorf(e.Pattern.Pos(), "invalid regular expression %q: %v", pat, err)
		}
		m = rx.MatchString
	} else if m, err = compileLike(pat, e.Op == sql.OpILike); err != nil {
		return nil, errorf(e.Pattern.Pos(), "%v", err)
	}
	return fold(&likeExpr{x: x, op: e.Op, not: e.Not, pattern: pat, match: m}), nil
}
