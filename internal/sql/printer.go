package sql

import (
	"fmt"
	"strconv"
	"strings"
)

// Format prints n as canonical SQL: keywords in upper case, identifiers as
// written (back-quoted only where needed), one space between tokens,
// aliases with AS, STREAM(name), CAST(x AS t) for x::t, strings in single
// quotes, and only the parentheses that precedence requires. A statement or
// query prints one clause per line; subqueries print on one line. A script
// prints each statement followed by ";" and a newline, with a blank line
// between statements.
//
// For any text x that Parse accepts, Parse(Format(Parse(x))) equals
// Parse(x) except for positions, and Format is idempotent on that output.
// Format accepts any node but only guarantees this for trees Parse could
// have produced (for example, the right side of a *Join is never a *Join).
func Format(n Node) string {
	var p printer
	p.node(n)
	return p.b.String()
}

type printer struct {
	b    strings.Builder
	full bool // parenthesise every operator (for tests)
}

func (p *printer) s(s string) { p.b.WriteString(s) }

func (p *printer) node(n Node) {
	switch n := n.(type) {
	case *Script:
		for i, st := range n.Stmts {
			if i > 0 {
				p.s("\n")
			}
			p.node(st)
			p.s(";\n")
		}
	case *CreateStmt:
		p.create(n)
	case *QueryStmt:
		p.query(n.Query, true)
	case Query:
		p.query(n, true)
	case TableElement:
		p.element(n)
	case *Property:
		p.property(n)
	case *KeyColumn:
		p.keyColumn(n)
	case *SelectItem:
		p.selectItem(n)
	case *OrderItem:
		p.orderItem(n)
	case TableExpr:
		p.tableExpr(n)
	case *Watermark:
		p.watermark(n)
	case Expr:
		p.expr(n, precLowest)
	case *When:
		p.s("WHEN ")
		p.expr(n.Cond, precLowest)
		p.s(" THEN ")
		p.expr(n.Result, precLowest)
	case *IntervalPart:
		p.intervalPart(n)
	case DataType:
		p.dataType(n)
	case *StructField:
		p.structField(n)
	case *Ident:
		p.ident(n.Name, false)
	case *ObjectName:
		p.objectName(n)
	default:
		fmt.Fprintf(&p.b, "<%T>", n)
	}
}

// ---- names

// plainWord reports whether s lexes as a single unquoted word.
func plainWord(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		if i == 0 && !isIdentStart(r) || !isIdentPart(r) {
			return false
		}
	}
	return true
}

// contextWords are unreserved words that mean something in some place
// where a name can stand: INTERVAL 1 ..., STREAM t, EXISTS (...),
// TRY_CAST(...), CONSTRAINT c. Format back-quotes them as the first part
// of a name, which is always safe.
var contextWords = map[string]bool{"interval": true, "stream": true, "exists": true, "try_cast": true, "constraint": true}

// needsQuote reports whether name must be back-quoted where a bare name
// (not after a dot or AS) stands.
func needsQuote(name string) bool {
	return !plainWord(name) || reserved[lookupKeyword(name)] || contextWords[strings.ToLower(name)]
}

// ident prints a name; strict is for places where reserved words cannot
// stand unquoted.
func (p *printer) ident(name string, strict bool) {
	if strict && needsQuote(name) || !strict && !plainWord(name) {
		p.s("`")
		p.s(strings.ReplaceAll(name, "`", "``"))
		p.s("`")
		return
	}
	p.s(name)
}

func (p *printer) parts(parts []*Ident) {
	for i, id := range parts {
		if i > 0 {
			p.s(".")
		}
		p.ident(id.Name, i == 0)
	}
}

func (p *printer) objectName(n *ObjectName) { p.parts(n.Parts) }

func quoteString(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}

// ---- statements

func (p *printer) create(c *CreateStmt) {
	p.s("CREATE ")
	if c.OrRefresh {
		p.s("OR REFRESH ")
	}
	p.s(c.Kind.String())
	p.s(" ")
	p.objectName(c.Name)
	if len(c.Elements) > 0 {
		p.s(" (\n")
		for i, e := range c.Elements {
			p.s("  ")
			p.element(e)
			if i < len(c.Elements)-1 {
				p.s(",")
			}
			p.s("\n")
		}
		p.s(")")
	}
	if c.Comment != nil {
		p.s("\nCOMMENT ")
		p.s(quoteString(c.Comment.Value))
	}
	if len(c.Properties) > 0 {
		p.s("\nTBLPROPERTIES (")
		for i, prop := range c.Properties {
			if i > 0 {
				p.s(", ")
			}
			p.property(prop)
		}
		p.s(")")
	}
	p.s("\nAS ")
	p.query(c.Query, true)
}

func (p *printer) property(prop *Property) {
	p.s(quoteString(prop.Key))
	p.s(" = ")
	p.expr(prop.Value, precLowest)
}

func (p *printer) element(e TableElement) {
	switch e := e.(type) {
	case *ColumnDef:
		p.ident(e.Name.Name, true)
		p.s(" ")
		p.dataType(e.Type)
		if e.NotNull {
			p.s(" NOT NULL")
		}
		if e.Comment != nil {
			p.s(" COMMENT ")
			p.s(quoteString(e.Comment.Value))
		}
	case *Expectation:
		p.s("CONSTRAINT ")
		p.ident(e.Name.Name, true)
		p.s(" EXPECT (")
		p.expr(e.Cond, precLowest)
		p.s(")")
		if e.OnViolation != ViolationWarn {
			p.s(" ON VIOLATION ")
			p.s(e.OnViolation.String())
		}
	case *PrimaryKey:
		if e.Name != nil {
			p.s("CONSTRAINT ")
			p.ident(e.Name.Name, true)
			p.s(" ")
		}
		p.s("PRIMARY KEY (")
		for i, kc := range e.Columns {
			if i > 0 {
				p.s(", ")
			}
			p.keyColumn(kc)
		}
		p.s(")")
	}
}

func (p *printer) keyColumn(kc *KeyColumn) {
	p.ident(kc.Name.Name, true)
	if kc.TimeSeries {
		p.s(" TIMESERIES")
	}
}

// ---- queries

// query prints q; top puts each clause on its own line.
func (p *printer) query(q Query, top bool) {
	sep := " "
	if top {
		sep = "\n"
	}
	switch q := q.(type) {
	case *Select:
		p.selectCore(q, sep)
		p.tail(q.OrderBy, q.Limit, q.Offset, sep)
	case *Union:
		p.unionSide(q.Left, top, false)
		p.s(sep)
		p.s("UNION")
		if q.All {
			p.s(" ALL")
		}
		p.s(sep)
		p.unionSide(q.Right, top, true)
		p.tail(q.OrderBy, q.Limit, q.Offset, sep)
	default:
		fmt.Fprintf(&p.b, "<%T>", q)
	}
}

// unionSide prints an operand of UNION, in parentheses if it has its own
// ORDER BY, LIMIT or OFFSET, or if it is a UNION on the right.
func (p *printer) unionSide(q Query, top, right bool) {
	paren := false
	switch q := q.(type) {
	case *Select:
		paren = q.OrderBy != nil || q.Limit != nil || q.Offset != nil
	case *Union:
		paren = right || q.OrderBy != nil || q.Limit != nil || q.Offset != nil
	}
	if paren {
		p.s("(")
		p.query(q, false)
		p.s(")")
		return
	}
	p.query(q, top)
}

func (p *printer) selectCore(s *Select, sep string) {
	p.s("SELECT ")
	if s.Distinct {
		p.s("DISTINCT ")
	}
	for i, it := range s.Items {
		if i > 0 {
			p.s(", ")
		}
		p.selectItem(it)
	}
	if len(s.From) > 0 {
		p.s(sep)
		p.s("FROM ")
		for i, te := range s.From {
			if i > 0 {
				p.s(", ")
			}
			p.tableExpr(te)
		}
	}
	if s.Where != nil {
		p.s(sep)
		p.s("WHERE ")
		p.expr(s.Where, precLowest)
	}
	if len(s.GroupBy) > 0 {
		p.s(sep)
		p.s("GROUP BY ")
		p.exprList(s.GroupBy)
	}
	if s.Having != nil {
		p.s(sep)
		p.s("HAVING ")
		p.expr(s.Having, precLowest)
	}
}

func (p *printer) tail(order []*OrderItem, limit, offset Expr, sep string) {
	if len(order) > 0 {
		p.s(sep)
		p.s("ORDER BY ")
		for i, o := range order {
			if i > 0 {
				p.s(", ")
			}
			p.orderItem(o)
		}
	}
	if limit != nil {
		p.s(sep)
		p.s("LIMIT ")
		p.expr(limit, precLowest)
	}
	if offset != nil {
		p.s(sep)
		p.s("OFFSET ")
		p.expr(offset, precLowest)
	}
}

func (p *printer) selectItem(it *SelectItem) {
	p.expr(it.Expr, precLowest)
	if it.Alias != nil {
		p.s(" AS ")
		p.ident(it.Alias.Name, true)
	}
}

func (p *printer) orderItem(o *OrderItem) {
	p.expr(o.Expr, precLowest)
	if o.Desc {
		p.s(" DESC")
	}
	if o.Nulls != NullsDefault {
		p.s(" ")
		p.s(o.Nulls.String())
	}
}

func (p *printer) exprList(list []Expr) {
	for i, e := range list {
		if i > 0 {
			p.s(", ")
		}
		p.expr(e, precLowest)
	}
}

// ---- FROM

func (p *printer) tableExpr(te TableExpr) {
	switch te := te.(type) {
	case *TableRef:
		if te.Stream {
			p.s("STREAM(")
			p.objectName(te.Name)
			p.s(")")
		} else {
			p.objectName(te.Name)
		}
		p.tableSuffix(te.Watermark, te.Alias)
	case *TableFunc:
		if te.Stream {
			p.s("STREAM(")
		}
		p.objectName(te.Func)
		p.s("(")
		p.exprList(te.Args)
		p.s(")")
		if te.Stream {
			p.s(")")
		}
		p.tableSuffix(te.Watermark, te.Alias)
	case *SubqueryTable:
		p.s("(")
		p.query(te.Query, false)
		p.s(")")
		p.tableSuffix(te.Watermark, te.Alias)
	case *Join:
		p.tableExpr(te.Left)
		p.s(" ")
		p.s(te.Type.String())
		p.s(" ")
		p.tableExpr(te.Right)
		if te.On != nil {
			p.s(" ON ")
			p.expr(te.On, precLowest)
		} else if len(te.Using) > 0 {
			p.s(" USING (")
			for i, id := range te.Using {
				if i > 0 {
					p.s(", ")
				}
				p.ident(id.Name, true)
			}
			p.s(")")
		}
	default:
		fmt.Fprintf(&p.b, "<%T>", te)
	}
}

func (p *printer) tableSuffix(w *Watermark, alias *Ident) {
	if w != nil {
		p.s(" ")
		p.watermark(w)
	}
	if alias != nil {
		p.s(" AS ")
		p.ident(alias.Name, true)
	}
}

func (p *printer) watermark(w *Watermark) {
	p.s("WATERMARK ")
	p.expr(w.Expr, precLowest)
	if w.Alias != nil {
		p.s(" AS ")
		p.ident(w.Alias.Name, true)
	}
	p.s(" DELAY OF ")
	p.expr(w.Delay, precLowest)
}

// ---- expressions

// precOf returns the precedence of e's outermost operator; precAtom for
// expressions that need no parentheses anywhere.
func precOf(e Expr) int {
	switch e := e.(type) {
	case *Binary:
		switch {
		case e.Op == OpOr:
			return precOr
		case e.Op == OpAnd:
			return precAnd
		case e.Op <= OpNullSafeEq:
			return precCmp
		case e.Op == OpConcat:
			return precConcat
		case e.Op <= OpSub:
			return precAdd
		}
		return precMul
	case *Unary:
		if e.Op == OpNot {
			return precNot
		}
		return precUnary
	case *Is, *Between, *InList, *InQuery, *Like:
		return precCmp
	case *FieldAccess, *Index:
		return precPostfix
	}
	return precAtom
}

// expr prints e, in parentheses if its precedence is below min.
func (p *printer) expr(e Expr, min int) {
	if prec := precOf(e); prec < min || p.full && prec < precAtom {
		p.s("(")
		p.exprBody(e)
		p.s(")")
		return
	}
	p.exprBody(e)
}

func (p *printer) exprBody(e Expr) {
	switch e := e.(type) {
	case *ColumnRef:
		p.parts(e.Parts)
	case *Star:
		if len(e.Qualifier) > 0 {
			p.parts(e.Qualifier)
			p.s(".")
		}
		p.s("*")
	case *NumberLit:
		p.s(e.Raw)
	case *StringLit:
		p.s(quoteString(e.Value))
	case *BoolLit:
		if e.Value {
			p.s("TRUE")
		} else {
			p.s("FALSE")
		}
	case *NullLit:
		p.s("NULL")
	case *TypedLit:
		p.s(e.Kind.String())
		p.s(" ")
		p.s(quoteString(e.Value))
	case *IntervalLit:
		p.s("INTERVAL")
		for _, part := range e.Parts {
			p.s(" ")
			p.intervalPart(part)
		}
	case *Unary:
		p.s(e.Op.String())
		if e.Op == OpNot {
			p.s(" ")
			p.expr(e.X, precNot)
		} else if x, ok := e.X.(*Unary); ok && x.Op != OpNot {
			p.s("(") // not --x, which would start a comment
			p.exprBody(e.X)
			p.s(")")
		} else {
			p.expr(e.X, precUnary)
		}
	case *Binary:
		prec := precOf(e)
		p.expr(e.L, prec)
		p.s(" ")
		p.s(e.Op.String())
		p.s(" ")
		p.expr(e.R, prec+1)
	case *Is:
		p.expr(e.X, precCmp)
		p.s(" IS ")
		if e.Not {
			p.s("NOT ")
		}
		p.s(e.What.String())
	case *Between:
		p.expr(e.X, precCmp)
		p.not(e.Not)
		p.s(" BETWEEN ")
		p.expr(e.Lo, precConcat)
		p.s(" AND ")
		p.expr(e.Hi, precConcat)
	case *InList:
		p.expr(e.X, precCmp)
		p.not(e.Not)
		p.s(" IN (")
		p.exprList(e.List)
		p.s(")")
	case *InQuery:
		p.expr(e.X, precCmp)
		p.not(e.Not)
		p.s(" IN (")
		p.query(e.Query, false)
		p.s(")")
	case *Like:
		p.expr(e.X, precCmp)
		p.not(e.Not)
		p.s(" ")
		p.s(e.Op.String())
		p.s(" ")
		p.expr(e.Pattern, precConcat)
	case *Case:
		p.s("CASE")
		if e.Operand != nil {
			p.s(" ")
			p.expr(e.Operand, precLowest)
		}
		for _, w := range e.Whens {
			p.s(" WHEN ")
			p.expr(w.Cond, precLowest)
			p.s(" THEN ")
			p.expr(w.Result, precLowest)
		}
		if e.Else != nil {
			p.s(" ELSE ")
			p.expr(e.Else, precLowest)
		}
		p.s(" END")
	case *Cast:
		if e.Try {
			p.s("TRY_CAST(")
		} else {
			p.s("CAST(")
		}
		p.expr(e.X, precLowest)
		p.s(" AS ")
		p.dataType(e.Type)
		p.s(")")
	case *Call:
		p.funcName(e.Func)
		p.s("(")
		if e.Star {
			p.s("*")
		}
		if e.Distinct {
			p.s("DISTINCT ")
		}
		p.exprList(e.Args)
		p.s(")")
		if e.Filter != nil {
			p.s(" FILTER (WHERE ")
			p.expr(e.Filter, precLowest)
			p.s(")")
		}
	case *NamedArg:
		p.ident(e.Name.Name, true)
		p.s(" => ")
		p.expr(e.Value, precLowest)
	case *FieldAccess:
		p.postfixOperand(e.X)
		p.s(".")
		p.ident(e.Field.Name, false)
	case *Index:
		p.expr(e.X, precPostfix)
		p.s("[")
		p.expr(e.Index, precLowest)
		p.s("]")
	case *Subquery:
		p.s("(")
		p.query(e.Query, false)
		p.s(")")
	case *Exists:
		p.s("EXISTS (")
		p.query(e.Query, false)
		p.s(")")
	default:
		fmt.Fprintf(&p.b, "<%T>", e)
	}
}

func (p *printer) not(not bool) {
	if not {
		p.s(" NOT")
	}
}

// postfixOperand prints the X of X.f. A column reference needs
// parentheses, or the field would join its name.
func (p *printer) postfixOperand(x Expr) {
	if _, ok := x.(*ColumnRef); ok {
		p.s("(")
		p.exprBody(x)
		p.s(")")
		return
	}
	p.expr(x, precPostfix)
}

// funcName prints a function's name; left and right, reserved words, may
// name functions as they are.
func (p *printer) funcName(n *ObjectName) {
	if len(n.Parts) == 1 {
		if name := strings.ToLower(n.Parts[0].Name); name == "left" || name == "right" {
			p.s(n.Parts[0].Name)
			return
		}
	}
	p.parts(n.Parts)
}

func (p *printer) intervalPart(part *IntervalPart) {
	if part.Neg {
		p.s("-")
	}
	if part.Quoted {
		p.s(quoteString(part.Value))
	} else {
		p.s(part.Value)
	}
	if part.Unit != UnitNone {
		p.s(" ")
		p.s(part.Unit.String())
		if part.Value != "1" {
			p.s("S")
		}
	}
}

// ---- types

func (p *printer) dataType(t DataType) {
	switch t := t.(type) {
	case *PrimitiveType:
		p.s(t.Kind.String())
	case *DecimalType:
		p.s("DECIMAL(")
		p.s(strconv.Itoa(t.Precision))
		p.s(", ")
		p.s(strconv.Itoa(t.Scale))
		p.s(")")
	case *ArrayType:
		p.s("ARRAY<")
		p.dataType(t.Elem)
		p.s(">")
	case *MapType:
		p.s("MAP<")
		p.dataType(t.Key)
		p.s(", ")
		p.dataType(t.Value)
		p.s(">")
	case *StructType:
		p.s("STRUCT<")
		for i, f := range t.Fields {
			if i > 0 {
				p.s(", ")
			}
			p.structField(f)
		}
		p.s(">")
	default:
		fmt.Fprintf(&p.b, "<%T>", t)
	}
}

func (p *printer) structField(f *StructField) {
	p.ident(f.Name.Name, false)
	p.s(": ")
	p.dataType(f.Type)
}
