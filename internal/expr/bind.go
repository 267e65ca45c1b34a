package expr

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/sluice-dev/sluice/internal/sql"
)

// Bind resolves the names in e against s, checks types, inserts implicit
// conversions and folds constant subexpressions. Errors are *Error with
// the position of the offending part of e. A nil s is an empty scope.
func Bind(e sql.Expr, s *Scope) (Expr, error) {
	b := &binder{scope: s}
	return b.bind(e)
}

type binder struct {
	scope *Scope
}

func errorf(pos sql.Pos, format string, args ...any) error {
	return &Error{Pos: pos, Msg: fmt.Sprintf(format, args...)}
}

func (b *binder) bind(e sql.Expr) (Expr, error) {
	switch e := e.(type) {
	case *sql.ColumnRef:
		return b.resolve(e)
	case *sql.FieldAccess:
		x, err := b.bind(e.X)
		if err != nil {
			return nil, err
		}
		return b.field(x, e.Field)
	case *sql.Index:
		return b.bindIndex(e)
	case *sql.NumberLit:
		return bindNumber(e)
	case *sql.StringLit:
		return &constExpr{typ: tString, val: e.Value}, nil
	case *sql.BoolLit:
		return &constExpr{typ: tBool, val: e.Value}, nil
	case *sql.NullLit:
		return &constExpr{typ: tNull}, nil
	case *sql.TypedLit:
		if e.Kind == sql.DateLit {
			d, ok := parseDate(e.Value)
			if !ok {
				return nil, errorf(e.Start, "invalid DATE literal %q: expected 'yyyy-MM-dd'", e.Value)
			}
			return &constExpr{typ: tDate, val: d}, nil
		}
		us, ok := parseTimestamp(e.Value)
		if !ok {
			return nil, errorf(e.Start, "invalid TIMESTAMP literal %q: expected 'yyyy-MM-dd[ HH:mm[:ss[.SSSSSS]]][zone]'", e.Value)
		}
		return &constExpr{typ: tTS, val: us}, nil
	case *sql.IntervalLit:
		iv, err := intervalOf(e)
		if err != nil {
			return nil, err
		}
		if iv.months != 0 {
			return &constExpr{typ: tMonths, val: arrow.MonthDayNanoInterval{Months: int32(iv.months), Nanoseconds: iv.us * 1000}}, nil
		}
		return &constExpr{typ: tDur, val: iv.us}, nil
	case *sql.Unary:
		return b.bindUnary(e)
	case *sql.Binary:
		return b.bindBinary(e)
	case *sql.Is:
		x, err := b.bind(e.X)
		if err != nil {
			return nil, err
		}
		if e.What != sql.IsNull {
			if x, err = b.coerce(x, tBool, e.X.Pos(), "IS "+e.What.String()); err != nil {
				return nil, err
			}
		}
		return fold(&isExpr{x: x, what: e.What, not: e.Not}), nil
	case *sql.Between:
		return b.bindBetween(e)
	case *sql.InList:
		return b.bindIn(e)
	case *sql.Like:
		return b.bindLike(e)
	case *sql.Case:
		return b.bindCase(e)
	case *sql.Cast:
		x, err := b.bind(e.X)
		if err != nil {
			return nil, err
		}
		to, err := ArrowType(e.Type)
		if err != nil {
			return nil, err
		}
		if arrow.TypeEqual(x.Type(), to) {
			return x, nil
		}
		if !canCast(x.Type(), to) {
			return nil, errorf(e.Start, "cannot cast %s to %s", typeName(x.Type()), typeName(to))
		}
		return fold(&castExpr{x: x, to: to, try: e.Try}), nil
	case *sql.Call:
		return b.bindCall(e)
	case *sql.NamedArg:
		return nil, errorf(e.Start, "named argument %s => ... is only allowed in table functions", e.Name.Name)
	case *sql.Star:
		return nil, errorf(e.Start, "* is only allowed in a select list and in count(*)")
	case *sql.Subquery:
		return nil, errorf(e.Start, "scalar subqueries are not supported; use a join")
	case *sql.Exists:
		return nil, errorf(e.Start, "EXISTS (subquery) is not supported; use a LEFT SEMI JOIN")
	case *sql.InQuery:
		return nil, errorf(e.OpPos, "IN (subquery) is not supported; use a LEFT SEMI JOIN (or LEFT ANTI JOIN for NOT IN)")
	case nil:
		return nil, &Error{Msg: "missing expression"}
	}
	return nil, errorf(e.Pos(), "unsupported expression %s", sql.Format(e))
}

func bindNumber(e *sql.NumberLit) (Expr, error) {
	if e.Kind == sql.IntNumber {
		if v, err := strconv.ParseInt(e.Raw, 10, 64); err == nil {
			return &constExpr{typ: tInt, val: v}, nil
		}
	}
	f, err := strconv.ParseFloat(e.Raw, 64)
	if err != nil && !strings.Contains(err.Error(), "range") || math.IsInf(f, 0) {
		return nil, errorf(e.Start, "invalid number %s", e.Raw)
	}
	return &constExpr{typ: tFloat, val: f}, nil
}

// coerce converts x to type t for use as an operand of what, or explains
// why it cannot. A string constant converts to TIMESTAMP or DATE at bind
// time and must be valid.
func (b *binder) coerce(x Expr, t arrow.DataType, pos sql.Pos, what string) (Expr, error) {
	if arrow.TypeEqual(x.Type(), t) {
		return x, nil
	}
	if c, ok := x.(*constExpr); ok {
		if c.val == nil {
			return &constExpr{typ: t}, nil
		}
		if s, ok := c.val.(string); ok {
			switch kindOf(t) {
			case kTS:
				us, ok := parseTimestamp(s)
				if !ok {
					return nil, errorf(pos, "%q is not a valid TIMESTAMP (expected 'yyyy-MM-dd[ HH:mm:ss[.SSSSSS]][zone]')", s)
				}
				return &constExpr{typ: t, val: us}, nil
			case kDate:
				d, ok := parseDate(s)
				if !ok {
					return nil, errorf(pos, "%q is not a valid DATE (expected 'yyyy-MM-dd')", s)
				}
				return &constExpr{typ: t, val: d}, nil
			}
		}
	}
	if kindOf(t) == kBool && kindOf(x.Type()) != kBool {
		return nil, errorf(pos, "%s needs a BOOLEAN, got %s %s", what, typeName(x.Type()), x.String())
	}
	if !canCast(x.Type(), t) {
		return nil, errorf(pos, "%s needs %s, got %s %s", what, typeName(t), typeName(x.Type()), x.String())
	}
	return fold(&castExpr{x: x, to: t}), nil
}

// canon widens x to its canonical type (a CAST to INT yields INT, which
// operators read as BIGINT).
func canon(x Expr) Expr {
	t := widenType(x.Type())
	if arrow.TypeEqual(t, x.Type()) {
		return x
	}
	return fold(&castExpr{x: x, to: t})
}

func (b *binder) bindUnary(e *sql.Unary) (Expr, error) {
	x, err := b.bind(e.X)
	if err != nil {
		return nil, err
	}
	x = canon(x)
	switch e.Op {
	case sql.OpNot:
		if x, err = b.coerce(x, tBool, e.X.Pos(), "NOT"); err != nil {
			return nil, err
		}
		return fold(&notExpr{x: x}), nil
	case sql.OpNeg:
		switch kindOf(x.Type()) {
		case kNull:
			return &constExpr{typ: tNull}, nil
		case kInt, kFloat, kDur, kMonths:
			return fold(&negExpr{x: x}), nil
		}
		return nil, errorf(e.Start, "unary - needs a number or an interval, got %s %s", typeName(x.Type()), x.String())
	default:
		switch kindOf(x.Type()) {
		case kNull, kInt, kFloat, kDur, kMonths:
			return x, nil
		}
		return nil, errorf(e.Start, "unary + needs a number or an interval, got %s %s", typeName(x.Type()), x.String())
	}
}

func (b *binder) bindBinary(e *sql.Binary) (Expr, error) {
	l, err := b.bind(e.L)
	if err != nil {
		return nil, err
	}
	r, err := b.bind(e.R)
	if err != nil {
		return nil, err
	}
	l, r = canon(l), canon(r)
	switch e.Op {
	case sql.OpAnd, sql.OpOr:
		if l, err = b.coerce(l, tBool, e.L.Pos(), e.Op.String()); err != nil {
			return nil, err
		}
		if r, err = b.coerce(r, tBool, e.R.Pos(), e.Op.String()); err != nil {
			return nil, err
		}
		return fold(&logicExpr{and: e.Op == sql.OpAnd, l: l, r: r}), nil
	case sql.OpEq, sql.OpNe, sql.OpLt, sql.OpLe, sql.OpGt, sql.OpGe, sql.OpNullSafeEq:
		return b.comparison(e.Op, l, r, e.L.Pos(), e.R.Pos(), e.OpPos)
	case sql.OpConcat:
		return b.callFunc(&sql.Call{Start: e.Start, Func: &sql.ObjectName{Start: e.OpPos, Parts: []*sql.Ident{{Start: e.OpPos, Name: "concat"}}}}, "concat", []Expr{l, r}, []sql.Pos{e.L.Pos(), e.R.Pos()})
	}
	return b.arith(e.Op, l, r, e.OpPos)
}

// comparison binds l op r for a comparison operator.
func (b *binder) comparison(op sql.BinaryOp, l, r Expr, lpos, rpos, opPos sql.Pos) (Expr, error) {
	t, ok := commonType(l.Type(), r.Type(), true)
	if !ok {
		return nil, errorf(opPos, "cannot compare %s with %s: %s %s %s; CAST one side", typeName(l.Type()), typeName(r.Type()), l.String(), op, r.String())
	}
	switch kindOf(t) {
	case kStruct, kList, kMap, kMonths, kOther:
		return nil, errorf(opPos, "cannot compare values of type %s", typeName(t))
	case kNull:
		if op == sql.OpNullSafeEq {
			return &constExpr{typ: tBool, val: true}, nil
		}
		return &constExpr{typ: tBool}, nil
	}
	var err error
	if l, err = b.coerce(l, t, lpos, "comparison"); err != nil {
		return nil, err
	}
	if r, err = b.coerce(r, t, rpos, "comparison"); err != nil {
		return nil, err
	}
	if op == sql.OpNullSafeEq {
		return fold(&nullSafeEqExpr{l: l, r: r}), nil
	}
	if _, lc := l.(*constExpr); lc {
		if _, rc := r.(*constExpr); !rc {
			l, r, op = r, l, flipOp(op)
		}
	}
	return fold(&cmpExpr{op: op, l: l, r: r}), nil
}

// arith binds + - * / %.
func (b *binder) arith(op sql.BinaryOp, l, r Expr, pos sql.Pos) (Expr, error) {
	kl, kr := kindOf(l.Type()), kindOf(r.Type())
	if kl == kNull && kr == kNull {
		return &constExpr{typ: tNull}, nil
	}
	if kl == kNull {
		l, kl = &constExpr{typ: r.Type()}, kr
	}
	if kr == kNull {
		r, kr = &constExpr{typ: l.Type()}, kl
	}
	num := func(k kind) bool { return k == kInt || k == kFloat }
	bad := func() error {
		hint := ""
		if kl == kString || kr == kString {
			hint = "; CAST the STRING to a number"
		}
		if (kl == kDate || kl == kTS) && (kr == kDate || kr == kTS) {
			hint = "; use datediff(end, start) or unix_timestamp(ts)"
		}
		return errorf(pos, "cannot apply %s to %s and %s%s", op, typeName(l.Type()), typeName(r.Type()), hint)
	}
	switch {
	case num(kl) && num(kr):
		if kl == kInt && kr == kInt && op != sql.OpDiv {
			return fold(&arithExpr{op: op, l: l, r: r, mode: modeInt, typ: tInt}), nil
		}
		return fold(&arithExpr{op: op, l: l, r: r, mode: modeFloat, typ: tFloat}), nil
	case op == sql.OpAdd || op == sql.OpSub:
		if kl == kDur && (kr == kTS || kr == kDate) && op == sql.OpAdd {
			l, r, kl, kr = r, l, kr, kl
		}
		if kl == kMonths && (kr == kTS || kr == kDate) && op == sql.OpAdd {
			l, r, kl, kr = r, l, kr, kl
		}
		if kl == kDate && (kr == kDur || kr == kMonths) {
			l, kl = fold(&castExpr{x: l, to: tTS}), kTS
		}
		switch {
		case kl == kTS && kr == kDur, kl == kDur && kr == kDur:
			return fold(&arithExpr{op: op, l: l, r: r, mode: modeTSDur, typ: l.Type()}), nil
		case kl == kTS && kr == kMonths:
			return fold(&arithExpr{op: op, l: l, r: r, mode: modeTSMonths, typ: tTS}), nil
		case kl == kTS && kr == kTS && op == sql.OpSub:
			return fold(&arithExpr{op: op, l: l, r: r, mode: modeTSDur, typ: tDur}), nil
		case kl == kDate && kr == kInt:
			return fold(&arithExpr{op: op, l: l, r: r, mode: modeTSDur, typ: tDate}), nil
		case kl == kInt && kr == kDate && op == sql.OpAdd:
			return fold(&arithExpr{op: op, l: r, r: l, mode: modeTSDur, typ: tDate}), nil
		}
	}
	return nil, bad()
}

func (b *binder) bindIndex(e *sql.Index) (Expr, error) {
	x, err := b.bind(e.X)
	if err != nil {
		return nil, err
	}
	i, err := b.bind(e.Index)
	if err != nil {
		return nil, err
	}
	return b.index(x, i, e.Index.Pos(), false)
}

func (b *binder) index(x, i Expr, ipos sql.Pos, oneBased bool) (Expr, error) {
	i = canon(i)
	var err error
	switch t := x.Type().(type) {
	case *arrow.ListType:
		if k := kindOf(i.Type()); k != kInt && k != kNull {
			return nil, errorf(ipos, "an array index must be an integer, got %s %s", typeName(i.Type()), i.String())
		}
		if i, err = b.coerce(i, tInt, ipos, "an array index"); err != nil {
			return nil, err
		}
		return &indexExpr{x: x, index: i, typ: widenType(t.Elem()), oneBased: oneBased}, nil
	case *arrow.MapType:
		if i, err = b.coerce(i, widenType(t.KeyType()), ipos, "a map key"); err != nil {
			return nil, err
		}
		return &indexExpr{x: x, index: i, typ: widenType(t.ItemType())}, nil
	}
	if kindOf(x.Type()) == kNull {
		return &constExpr{typ: tNull}, nil
	}
	return nil, errorf(ipos, "%s is %s: only arrays and maps can be indexed", x.String(), typeName(x.Type()))
}

func (b *binder) bindBetween(e *sql.Between) (Expr, error) {
	x, err := b.bind(e.X)
	if err != nil {
		return nil, err
	}
	lo, err := b.bind(e.Lo)
	if err != nil {
		return nil, err
	}
	hi, err := b.bind(e.Hi)
	if err != nil {
		return nil, err
	}
	x, lo, hi = canon(x), canon(lo), canon(hi)
	ge, err := b.comparison(sql.OpGe, x, lo, e.X.Pos(), e.Lo.Pos(), e.OpPos)
	if err != nil {
		return nil, err
	}
	le, err := b.comparison(sql.OpLe, x, hi, e.X.Pos(), e.Hi.Pos(), e.OpPos)
	if err != nil {
		return nil, err
	}
	var out Expr = fold(&logicExpr{and: true, l: ge, r: le})
	if e.Not {
		out = fold(&notExpr{x: out})
	}
	return out, nil
}

func (b *binder) bindIn(e *sql.InList) (Expr, error) {
	x, err := b.bind(e.X)
	if err != nil {
		return nil, err
	}
	x = canon(x)
	list := make([]Expr, len(e.List))
	t := x.Type()
	for i, le := range e.List {
		if list[i], err = b.bind(le); err != nil {
			return nil, err
		}
		list[i] = canon(list[i])
		var ok bool
		if t, ok = commonType(t, list[i].Type(), true); !ok {
			return nil, errorf(le.Pos(), "IN list value %s is %s, which cannot be compared with %s %s", list[i].String(), typeName(list[i].Type()), typeName(x.Type()), x.String())
		}
	}
	switch kindOf(t) {
	case kStruct, kList, kMap, kMonths, kOther:
		return nil, errorf(e.OpPos, "IN cannot compare values of type %s", typeName(t))
	case kNull:
		return &constExpr{typ: tBool}, nil
	}
	if x, err = b.coerce(x, t, e.X.Pos(), "IN"); err != nil {
		return nil, err
	}
	consts := make([]*constExpr, 0, len(list))
	for i := range list {
		if list[i], err = b.coerce(list[i], t, e.List[i].Pos(), "IN"); err != nil {
			return nil, err
		}
		if c, ok := list[i].(*constExpr); ok {
			consts = append(consts, c)
		}
	}
	var out Expr
	if len(consts) == len(list) {
		out = newInSet(x, consts)
	} else {
		for _, le := range list {
			var eq Expr = &cmpExpr{op: sql.OpEq, l: x, r: le}
			if _, ok := x.(*constExpr); ok {
				eq = &cmpExpr{op: sql.OpEq, l: le, r: x}
			}
			if out == nil {
				out = eq
			} else {
				out = &logicExpr{l: out, r: eq}
			}
		}
	}
	out = fold(out)
	if e.Not {
		out = fold(&notExpr{x: out})
	}
	return out, nil
}

func (b *binder) bindCase(e *sql.Case) (Expr, error) {
	var operand Expr
	var err error
	if e.Operand != nil {
		if operand, err = b.bind(e.Operand); err != nil {
			return nil, err
		}
		operand = canon(operand)
	}
	c := &caseExpr{}
	resPos := []sql.Pos{}
	for _, w := range e.Whens {
		cond, err := b.bind(w.Cond)
		if err != nil {
			return nil, err
		}
		cond = canon(cond)
		if operand != nil {
			if cond, err = b.comparison(sql.OpEq, operand, cond, e.Operand.Pos(), w.Cond.Pos(), w.Cond.Pos()); err != nil {
				return nil, err
			}
		} else if cond, err = b.coerce(cond, tBool, w.Cond.Pos(), "WHEN"); err != nil {
			return nil, err
		}
		res, err := b.bind(w.Result)
		if err != nil {
			return nil, err
		}
		c.conds = append(c.conds, cond)
		c.results = append(c.results, canon(res))
		resPos = append(resPos, w.Result.Pos())
	}
	if e.Else != nil {
		if c.els, err = b.bind(e.Else); err != nil {
			return nil, err
		}
		c.els = canon(c.els)
		resPos = append(resPos, e.Else.Pos())
	}
	all := append([]Expr{}, c.results...)
	if c.els != nil {
		all = append(all, c.els)
	}
	t, err := b.unify(all, resPos, "CASE")
	if err != nil {
		return nil, err
	}
	c.typ = t
	for i := range c.results {
		if c.results[i], err = b.coerce(c.results[i], t, resPos[i], "CASE"); err != nil {
			return nil, err
		}
	}
	if c.els != nil {
		if c.els, err = b.coerce(c.els, t, e.Else.Pos(), "CASE"); err != nil {
			return nil, err
		}
	}
	// Drop branches that can never be taken and fold a leading TRUE.
	var conds, results []Expr
	for i, cond := range c.conds {
		if k, ok := cond.(*constExpr); ok {
			if v, _ := k.val.(bool); !v {
				continue
			}
			if len(conds) == 0 {
				return c.results[i], nil
			}
		}
		conds = append(conds, cond)
		results = append(results, c.results[i])
	}
	if len(conds) == 0 {
		if c.els != nil {
			return c.els, nil
		}
		return &constExpr{typ: t}, nil
	}
	c.conds, c.results = conds, results
	return fold(c), nil
}

// unify finds the type that several results convert to.
func (b *binder) unify(es []Expr, pos []sql.Pos, what string) (arrow.DataType, error) {
	t := tNull
	for i, e := range es {
		nt, ok := commonType(t, e.Type(), false)
		if !ok {
			return nil, errorf(pos[i], "%s mixes %s and %s; CAST them to one type", what, typeName(t), typeName(e.Type()))
		}
		t = nt
	}
	return t, nil
}

// fold evaluates e now if all its inputs are constants and it is
// deterministic, and returns the constant; otherwise e.
func fold(e Expr) Expr {
	if _, ok := e.(node); !ok {
		return e
	}
	if _, ok := e.(*constExpr); ok {
		return e
	}
	if len(Columns(e)) > 0 || !Deterministic(e) {
		return e
	}
	switch kindOf(e.Type()) {
	case kStruct, kList, kMap, kOther:
		return e
	}
	if !isCanonical(e.Type()) {
		return e
	}
	a, err := e.Eval(&Ctx{}, oneRow)
	if err != nil {
		return e
	}
	defer a.Release()
	if a.Len() != 1 {
		return e
	}
	return &constExpr{typ: e.Type(), val: scalarAt(a, 0)}
}

var oneRow = array.NewRecordBatch(arrow.NewSchema(nil, nil), nil, 1)
