package sql

import (
	"fmt"
	"strconv"
	"strings"
)

// Parse parses a file of statements separated by semicolons. Empty
// statements (stray semicolons) and a file of only comments are allowed.
// The error, if any, is a *ParseError.
func Parse(src string) (*Script, error) {
	var s *Script
	err := run(src, func(p *parser) { s = p.script() })
	if err != nil {
		return nil, err
	}
	return s, nil
}

// ParseStatement parses exactly one statement, with an optional trailing
// semicolon.
func ParseStatement(src string) (Statement, error) {
	var s Statement
	err := run(src, func(p *parser) {
		s = p.statement()
		if p.tok.kind == tSemi {
			p.next()
		}
		p.expectEOF("after the statement")
	})
	if err != nil {
		return nil, err
	}
	return s, nil
}

// ParseQuery parses one query (a SELECT, possibly with UNION).
func ParseQuery(src string) (Query, error) {
	var q Query
	err := run(src, func(p *parser) { q = p.query(); p.expectEOF("after the query") })
	if err != nil {
		return nil, err
	}
	return q, nil
}

// ParseExpr parses one expression.
func ParseExpr(src string) (Expr, error) {
	var e Expr
	err := run(src, func(p *parser) { e = p.expr(precLowest); p.expectEOF("after the expression") })
	if err != nil {
		return nil, err
	}
	return e, nil
}

// ParseType parses a data type such as BIGINT or ARRAY<STRUCT<a: INT>>.
func ParseType(src string) (DataType, error) {
	var t DataType
	err := run(src, func(p *parser) { t = p.dataType(); p.expectEOF("after the type") })
	if err != nil {
		return nil, err
	}
	return t, nil
}

// maxDepth bounds the nesting of expressions and queries, so that hostile
// input cannot exhaust the stack.
const maxDepth = 1000

type parser struct {
	toks  []token
	i     int
	tok   *token // &toks[i]
	depth int

	// notQuery records the token indexes where "(" query ")" failed to
	// parse, so that backtracking does not redo the work (see parenQuery).
	notQuery map[int]*ParseError
}

func run(src string, f func(*parser)) (err error) {
	toks, lerr := lex(src)
	if lerr != nil {
		return lerr
	}
	p := &parser{toks: toks}
	p.tok = &p.toks[0]
	defer func() {
		if r := recover(); r != nil {
			pe, ok := r.(*ParseError)
			if !ok {
				panic(r)
			}
			err = pe
		}
	}()
	f(p)
	return nil
}

// ---- token helpers

func (p *parser) next() *token {
	t := p.tok
	if p.i < len(p.toks)-1 {
		p.i++
		p.tok = &p.toks[p.i]
	}
	return t
}

func (p *parser) reset(i int) {
	p.i = i
	p.tok = &p.toks[i]
}

// pos returns the position of the current token. It is a method, not a
// field read, so that in a composite literal such as
// &When{Start: p.pos(), Cond: p.expr(0)} it is evaluated before the calls
// that follow it (Go orders calls, not field reads).
func (p *parser) pos() Pos { return p.tok.pos }

// peek returns the token n places ahead of the current one.
func (p *parser) peek(n int) *token {
	if j := p.i + n; j < len(p.toks) {
		return &p.toks[j]
	}
	return &p.toks[len(p.toks)-1]
}

// is reports whether t is the unquoted keyword k.
func (t *token) is(k keyword) bool { return t.kind == tIdent && t.kw == k }

// isWord reports whether t can be an identifier anywhere (after a dot or AS).
func (t *token) isWord() bool { return t.kind == tIdent || t.kind == tQuotedIdent }

// isName reports whether t can be a bare identifier: not a reserved word.
func (t *token) isName() bool {
	return t.kind == tQuotedIdent || t.kind == tIdent && !reserved[t.kw]
}

func (p *parser) errorf(pos Pos, format string, args ...any) {
	panic(&ParseError{Pos: pos, Msg: fmt.Sprintf(format, args...)})
}

// fail reports that what was expected and the current token was found.
func (p *parser) fail(what string) {
	p.errorf(p.tok.pos, "expected %s, found %s", what, p.tok.describe())
}

// accept consumes the current token if it is the keyword k.
func (p *parser) accept(k keyword) bool {
	if p.tok.is(k) {
		p.next()
		return true
	}
	return false
}

func (p *parser) acceptKind(k tokenKind) bool {
	if p.tok.kind == k {
		p.next()
		return true
	}
	return false
}

// want consumes the keyword k or fails; context completes the message:
// expected BY after GROUP.
func (p *parser) want(k keyword, context string) *token {
	if !p.tok.is(k) {
		p.fail(join(k.String(), context))
	}
	return p.next()
}

func (p *parser) wantKind(k tokenKind, context string) *token {
	if p.tok.kind != k {
		p.fail(join(tokenText[k], context))
	}
	return p.next()
}

func join(what, context string) string {
	if context == "" {
		return what
	}
	return what + " " + context
}

func (p *parser) expectEOF(context string) {
	if p.tok.kind != tEOF {
		p.fail(join("end of input", context))
	}
}

func (p *parser) enter() {
	p.depth++
	if p.depth > maxDepth {
		p.errorf(p.tok.pos, "nested too deeply (more than %d levels)", maxDepth)
	}
}

func (p *parser) leave() { p.depth-- }

// ident consumes a bare identifier (not a reserved word) or fails with
// "expected <what>".
func (p *parser) ident(what string) *Ident {
	if !p.tok.isName() {
		p.fail(what)
	}
	t := p.next()
	return &Ident{Start: t.pos, Name: t.val}
}

// anyIdent consumes any word, reserved or not, as an identifier: used
// where no keyword can follow (after a dot, after AS).
func (p *parser) anyIdent(what string) *Ident {
	if !p.tok.isWord() {
		p.fail(what)
	}
	t := p.next()
	return &Ident{Start: t.pos, Name: t.val}
}

// objectName parses name(.name)*.
func (p *parser) objectName(what string) *ObjectName {
	first := p.ident(what)
	n := &ObjectName{Start: first.Start, Parts: []*Ident{first}}
	for p.tok.kind == tDot && p.peek(1).isWord() {
		p.next()
		n.Parts = append(n.Parts, p.anyIdent("name"))
	}
	return n
}

// ---- statements

func (p *parser) script() *Script {
	s := &Script{Start: Pos{Offset: 0, Line: 1, Col: 1}}
	for {
		for p.acceptKind(tSemi) {
		}
		if p.tok.kind == tEOF {
			return s
		}
		s.Stmts = append(s.Stmts, p.statement())
		if p.tok.kind != tEOF && p.tok.kind != tSemi {
			p.fail(`";" after the statement`)
		}
	}
}

func (p *parser) statement() Statement {
	switch {
	case p.tok.is(kwCreate):
		return p.create()
	case p.tok.is(kwSelect) || p.tok.kind == tLParen:
		return &QueryStmt{Start: p.pos(), Query: p.query()}
	}
	p.fail("CREATE or SELECT")
	return nil
}

func (p *parser) create() *CreateStmt {
	c := &CreateStmt{Start: p.next().pos}
	if p.accept(kwOr) {
		p.want(kwRefresh, "after CREATE OR")
		c.OrRefresh = true
	}
	switch {
	case p.accept(kwStreaming):
		p.accept(kwLive)
		p.want(kwTable, "after STREAMING")
		c.Kind = StreamingTable
	case p.accept(kwMaterialized):
		p.want(kwView, "after MATERIALIZED")
		c.Kind = MaterializedView
	case p.accept(kwLive):
		p.want(kwTable, "after LIVE")
		c.Kind = MaterializedView
	case p.accept(kwTemporary):
		p.accept(kwLive)
		p.want(kwView, "after TEMPORARY")
		c.Kind = TemporaryView
	default:
		p.fail("STREAMING TABLE, MATERIALIZED VIEW or TEMPORARY VIEW")
	}
	c.Name = p.objectName("the name of the " + strings.ToLower(c.Kind.String()))
	if p.acceptKind(tLParen) {
		for {
			c.Elements = append(c.Elements, p.tableElement())
			if p.acceptKind(tRParen) {
				break
			}
			p.wantKind(tComma, `or ")" after the table element`)
		}
	}
	for {
		switch {
		case p.tok.is(kwComment):
			if c.Comment != nil {
				p.errorf(p.tok.pos, "COMMENT given twice")
			}
			p.next()
			c.Comment = p.stringLit("after COMMENT")
			continue
		case p.tok.is(kwTblProperties):
			if c.Properties != nil {
				p.errorf(p.tok.pos, "TBLPROPERTIES given twice")
			}
			p.next()
			c.Properties = p.properties()
			continue
		}
		break
	}
	if !p.tok.is(kwAs) {
		if c.Elements == nil && c.Comment == nil && c.Properties == nil {
			p.fail(`"(", COMMENT, TBLPROPERTIES or AS after the name`)
		}
		p.fail("AS before the query")
	}
	p.next()
	c.Query = p.query()
	return c
}

func (p *parser) stringLit(context string) *StringLit {
	t := p.wantKind(tString, context)
	return &StringLit{Start: t.pos, Value: t.val}
}

// properties parses ('key' = value, ...); keys are strings or dotted
// words, values literals; '=' may be left out.
func (p *parser) properties() []*Property {
	p.wantKind(tLParen, "after TBLPROPERTIES")
	props := []*Property{}
	for {
		prop := &Property{Start: p.pos()}
		switch {
		case p.tok.kind == tString:
			prop.Key = p.next().val
		case p.tok.isWord():
			var b strings.Builder
			b.WriteString(p.next().val)
			for p.tok.kind == tDot && p.peek(1).isWord() {
				p.next()
				b.WriteByte('.')
				b.WriteString(p.next().val)
			}
			prop.Key = b.String()
		default:
			p.fail("a property key")
		}
		p.acceptKind(tEq)
		prop.Value = p.literal("a literal property value")
		props = append(props, prop)
		if p.acceptKind(tRParen) {
			return props
		}
		p.wantKind(tComma, `or ")" after the property`)
	}
}

// literal parses a string, a signed number, TRUE or FALSE.
func (p *parser) literal(what string) Expr {
	t := p.tok
	switch {
	case t.kind == tString:
		p.next()
		return &StringLit{Start: t.pos, Value: t.val}
	case t.kind == tNumber:
		return p.number()
	case t.kind == tMinus && p.peek(1).kind == tNumber:
		p.next()
		return &Unary{Start: t.pos, Op: OpNeg, X: p.number()}
	case t.is(kwTrue), t.is(kwFalse):
		p.next()
		return &BoolLit{Start: t.pos, Value: t.kw == kwTrue}
	}
	p.fail(what)
	return nil
}

func (p *parser) number() *NumberLit {
	t := p.next()
	n := &NumberLit{Start: t.pos, Raw: t.text, Kind: IntNumber}
	if strings.ContainsAny(t.text, "eE") {
		n.Kind = FloatNumber
	} else if strings.IndexByte(t.text, '.') >= 0 {
		n.Kind = DecimalNumber
	}
	return n
}

func (p *parser) tableElement() TableElement {
	start := p.tok.pos
	var name *Ident
	if p.accept(kwConstraint) {
		if (p.tok.is(kwExpect) || p.tok.is(kwPrimary)) && p.peek(1).kind == tLParen {
			p.fail("the constraint name after CONSTRAINT") // CONSTRAINT EXPECT (...)
		}
		name = p.ident("the constraint name after CONSTRAINT")
		if !p.tok.is(kwExpect) && !p.tok.is(kwPrimary) {
			p.fail("EXPECT or PRIMARY KEY after the constraint name")
		}
	}
	switch {
	case p.tok.is(kwExpect) && name != nil:
		p.next()
		e := &Expectation{Start: start, Name: name}
		p.wantKind(tLParen, "after EXPECT")
		e.Cond = p.expr(precLowest)
		p.wantKind(tRParen, "after the expectation")
		if p.accept(kwOn) {
			p.want(kwViolation, "after ON")
			switch {
			case p.accept(kwDrop):
				p.want(kwRow, "after DROP")
				e.OnViolation = ViolationDropRow
			case p.accept(kwFail):
				p.want(kwUpdate, "after FAIL")
				e.OnViolation = ViolationFailUpdate
			default:
				p.fail("DROP ROW or FAIL UPDATE after ON VIOLATION")
			}
		}
		return e
	case p.tok.is(kwPrimary) && (name != nil || p.peek(1).is(kwKey)):
		p.next()
		p.want(kwKey, "after PRIMARY")
		pk := &PrimaryKey{Start: start, Name: name}
		p.wantKind(tLParen, "after PRIMARY KEY")
		for {
			kc := &KeyColumn{Start: p.pos(), Name: p.ident("a key column name")}
			kc.TimeSeries = p.accept(kwTimeseries)
			pk.Columns = append(pk.Columns, kc)
			if p.acceptKind(tRParen) {
				return pk
			}
			p.wantKind(tComma, `or ")" after the key column`)
		}
	}
	col := &ColumnDef{Start: start, Name: p.ident("a column name, CONSTRAINT or PRIMARY KEY")}
	col.Type = p.dataType()
	if p.tok.is(kwNot) {
		p.next()
		p.want(kwNull, "after NOT")
		col.NotNull = true
	}
	if p.accept(kwComment) {
		col.Comment = p.stringLit("after COMMENT")
	}
	return col
}

// ---- types

var primitiveTypes = map[string]TypeKind{
	"string": TypeString, "binary": TypeBinary, "boolean": TypeBoolean, "bool": TypeBoolean,
	"tinyint": TypeTinyInt, "byte": TypeTinyInt, "smallint": TypeSmallInt, "short": TypeSmallInt,
	"int": TypeInt, "integer": TypeInt, "bigint": TypeBigInt, "long": TypeBigInt,
	"float": TypeFloat, "real": TypeFloat, "double": TypeDouble, "date": TypeDate,
	"timestamp": TypeTimestamp, "timestamp_ltz": TypeTimestamp, "timestamp_ntz": TypeTimestampNTZ,
}

func (p *parser) dataType() DataType {
	p.enter()
	defer p.leave()
	t := p.tok
	if t.kind != tIdent {
		p.fail("a type")
	}
	name := strings.ToLower(t.text)
	if k, ok := primitiveTypes[name]; ok {
		p.next()
		return &PrimitiveType{Start: t.pos, Kind: k}
	}
	switch name {
	case "decimal", "dec", "numeric":
		p.next()
		d := &DecimalType{Start: t.pos, Precision: 10}
		if p.acceptKind(tLParen) {
			d.Precision = p.smallInt("the precision")
			if p.acceptKind(tComma) {
				d.Scale = p.smallInt("the scale")
			}
			p.wantKind(tRParen, "after the decimal's precision and scale")
		}
		return d
	case "array":
		p.next()
		p.wantKind(tLt, "after ARRAY")
		a := &ArrayType{Start: t.pos, Elem: p.dataType()}
		p.wantKind(tGt, "after the array's element type")
		return a
	case "map":
		p.next()
		p.wantKind(tLt, "after MAP")
		m := &MapType{Start: t.pos, Key: p.dataType()}
		p.wantKind(tComma, "after the map's key type")
		m.Value = p.dataType()
		p.wantKind(tGt, "after the map's value type")
		return m
	case "struct":
		p.next()
		if p.tok.kind == tNe && p.tok.text == "<>" { // STRUCT<>
			p.next()
			return &StructType{Start: t.pos, Fields: []*StructField{}}
		}
		p.wantKind(tLt, "after STRUCT")
		s := &StructType{Start: t.pos, Fields: []*StructField{}}
		if p.acceptKind(tGt) {
			return s
		}
		for {
			f := &StructField{Start: p.pos(), Name: p.anyIdent("a field name")}
			p.acceptKind(tColon)
			f.Type = p.dataType()
			s.Fields = append(s.Fields, f)
			if p.acceptKind(tGt) {
				return s
			}
			p.wantKind(tComma, `or ">" after the struct field`)
		}
	}
	p.fail("a type")
	return nil
}

func (p *parser) smallInt(what string) int {
	t := p.tok
	if t.kind != tNumber {
		p.fail(what)
	}
	n, err := strconv.Atoi(t.text)
	if err != nil || n > 1000 {
		p.errorf(t.pos, "invalid %s %s", what, t.text)
	}
	p.next()
	return n
}

// ---- queries

// query parses select_or_parenthesised (UNION [ALL|DISTINCT] ...)*
// [ORDER BY ...] [LIMIT n] [OFFSET n].
func (p *parser) query() Query {
	p.enter()
	defer p.leave()
	q := p.queryTerm()
	for p.tok.is(kwUnion) {
		u := &Union{Start: q.Pos(), OpPos: p.next().pos, Left: q}
		if p.accept(kwAll) {
			u.All = true
		} else {
			p.accept(kwDistinct)
		}
		u.Right = p.queryTerm()
		q = u
	}
	if !p.tok.is(kwOrder) && !p.tok.is(kwLimit) && !p.tok.is(kwOffset) {
		return q
	}
	at := p.tok.pos
	var order []*OrderItem
	var limit, offset Expr
	if p.accept(kwOrder) {
		p.want(kwBy, "after ORDER")
		for {
			order = append(order, p.orderItem())
			if !p.acceptKind(tComma) {
				break
			}
		}
	}
	if p.accept(kwLimit) {
		limit = p.expr(precLowest)
	}
	if p.accept(kwOffset) {
		offset = p.expr(precLowest)
	}
	switch q := q.(type) {
	case *Select:
		if q.OrderBy != nil || q.Limit != nil || q.Offset != nil {
			p.errorf(at, "a parenthesised query with ORDER BY, LIMIT or OFFSET cannot take another")
		}
		q.OrderBy, q.Limit, q.Offset = order, limit, offset
	case *Union:
		if q.OrderBy != nil || q.Limit != nil || q.Offset != nil {
			p.errorf(at, "a parenthesised query with ORDER BY, LIMIT or OFFSET cannot take another")
		}
		q.OrderBy, q.Limit, q.Offset = order, limit, offset
	}
	return q
}

func (p *parser) queryTerm() Query {
	if p.tok.kind == tLParen {
		p.next()
		q := p.query()
		p.wantKind(tRParen, "after the query")
		return q
	}
	if !p.tok.is(kwSelect) {
		p.fail(`SELECT or "("`)
	}
	return p.selectCore()
}

func (p *parser) orderItem() *OrderItem {
	o := &OrderItem{Start: p.pos(), Expr: p.expr(precLowest)}
	if p.accept(kwDesc) {
		o.Desc = true
	} else {
		p.accept(kwAsc)
	}
	if p.accept(kwNulls) {
		switch {
		case p.accept(kwFirst):
			o.Nulls = NullsFirst
		case p.accept(kwLast):
			o.Nulls = NullsLast
		default:
			p.fail("FIRST or LAST after NULLS")
		}
	}
	return o
}

func (p *parser) selectCore() *Select {
	s := &Select{Start: p.next().pos}
	if p.accept(kwDistinct) {
		s.Distinct = true
	} else {
		p.accept(kwAll)
	}
	for {
		s.Items = append(s.Items, p.selectItem())
		if !p.acceptKind(tComma) {
			break
		}
	}
	if p.accept(kwFrom) {
		for {
			s.From = append(s.From, p.fromItem())
			if !p.acceptKind(tComma) {
				break
			}
		}
	}
	if p.accept(kwWhere) {
		s.Where = p.expr(precLowest)
	}
	if p.tok.is(kwGroup) {
		p.next()
		p.want(kwBy, "after GROUP")
		for {
			s.GroupBy = append(s.GroupBy, p.expr(precLowest))
			if !p.acceptKind(tComma) {
				break
			}
		}
	}
	if p.accept(kwHaving) {
		s.Having = p.expr(precLowest)
	}
	return s
}

func (p *parser) selectItem() *SelectItem {
	it := &SelectItem{Start: p.pos()}
	if p.tok.kind == tStar {
		p.next()
		it.Expr = &Star{Start: it.Start}
		return it
	}
	// name(.name)*.* : a qualified star
	if p.tok.isName() {
		j := 1
		for p.peek(j).kind == tDot && p.peek(j+1).isWord() {
			j += 2
		}
		if p.peek(j).kind == tDot && p.peek(j+1).kind == tStar {
			star := &Star{Start: it.Start}
			star.Qualifier = append(star.Qualifier, p.anyIdent(""))
			for p.tok.kind == tDot && p.peek(1).isWord() {
				p.next()
				star.Qualifier = append(star.Qualifier, p.anyIdent(""))
			}
			p.next() // .
			p.next() // *
			it.Expr = star
			return it
		}
	}
	it.Expr = p.expr(precLowest)
	it.Alias = p.alias()
	return it
}

// alias parses [AS] name. Without AS the name must not be a reserved word
// or OFFSET, which can follow a select item or a table.
func (p *parser) alias() *Ident {
	if p.accept(kwAs) {
		return p.anyIdent("an alias after AS")
	}
	if p.tok.isName() && !p.tok.is(kwOffset) {
		return p.ident("")
	}
	return nil
}

// ---- FROM

func (p *parser) fromItem() TableExpr {
	left := p.tablePrimary()
	for {
		opPos := p.tok.pos
		var typ JoinType
		switch {
		case p.accept(kwJoin):
			typ = InnerJoin
		case p.accept(kwInner):
			typ = InnerJoin
			p.want(kwJoin, "after INNER")
		case p.accept(kwLeft):
			typ = LeftJoin
			if p.accept(kwSemi) {
				typ = SemiJoin
			} else if p.accept(kwAnti) {
				typ = AntiJoin
			} else {
				p.accept(kwOuter)
			}
			p.want(kwJoin, "after LEFT")
		case p.accept(kwRight):
			typ = RightJoin
			p.accept(kwOuter)
			p.want(kwJoin, "after RIGHT")
		case p.accept(kwFull):
			typ = FullJoin
			p.accept(kwOuter)
			p.want(kwJoin, "after FULL")
		case p.accept(kwCross):
			typ = CrossJoin
			p.want(kwJoin, "after CROSS")
		default:
			return left
		}
		j := &Join{Start: left.Pos(), OpPos: opPos, Type: typ, Left: left, Right: p.tablePrimary()}
		if typ != CrossJoin {
			switch {
			case p.accept(kwOn):
				j.On = p.expr(precLowest)
			case p.accept(kwUsing):
				p.wantKind(tLParen, "after USING")
				for {
					j.Using = append(j.Using, p.ident("a column name"))
					if p.acceptKind(tRParen) {
						break
					}
					p.wantKind(tComma, `or ")" after the column`)
				}
			default:
				p.fail("ON or USING after the joined table")
			}
		}
		left = j
	}
}

func (p *parser) tablePrimary() TableExpr {
	start := p.tok.pos
	var wm **Watermark
	var alias **Ident
	var te TableExpr
	switch {
	case p.tok.kind == tLParen:
		p.next()
		sq := &SubqueryTable{Start: start, Query: p.query()}
		p.wantKind(tRParen, "after the subquery")
		te, wm, alias = sq, &sq.Watermark, &sq.Alias
	case p.tok.is(kwStream) && p.peek(1).kind == tLParen:
		p.next()
		p.next()
		te, wm, alias = p.tableName(start, true)
		p.wantKind(tRParen, "after STREAM(table")
	case p.tok.is(kwStream) && p.peek(1).isName():
		p.next()
		te, wm, alias = p.tableName(start, true)
	default:
		te, wm, alias = p.tableName(start, false)
	}
	if p.tok.is(kwWatermark) {
		*wm = p.watermark()
	}
	*alias = p.alias()
	if *wm == nil && p.tok.is(kwWatermark) {
		*wm = p.watermark()
	}
	return te
}

// tableName parses name or name(args), returning the node and where its
// watermark and alias go.
func (p *parser) tableName(start Pos, stream bool) (TableExpr, **Watermark, **Ident) {
	name := p.objectName("a table name")
	if p.tok.kind == tLParen {
		f := &TableFunc{Start: start, Stream: stream, Func: name}
		_, f.Args, _ = p.callArgs(false)
		return f, &f.Watermark, &f.Alias
	}
	t := &TableRef{Start: start, Stream: stream, Name: name}
	return t, &t.Watermark, &t.Alias
}

func (p *parser) watermark() *Watermark {
	w := &Watermark{Start: p.next().pos, Expr: p.expr(precLowest)}
	if p.accept(kwAs) {
		w.Alias = p.anyIdent("an alias after AS")
	} else if p.tok.isName() && !p.tok.is(kwDelay) && !p.tok.is(kwInterval) {
		w.Alias = p.ident("")
	}
	p.want(kwDelay, "OF INTERVAL after the watermark column")
	p.want(kwOf, "after DELAY")
	t := p.want(kwInterval, "after DELAY OF")
	w.Delay = p.interval(t.pos)
	return w
}

// ---- expressions

// Precedence levels, lowest first.
const (
	precLowest  = iota
	precOr      // OR
	precAnd     // AND
	precNot     // NOT x
	precCmp     // = != < ... IS IN BETWEEN LIKE
	precConcat  // ||
	precAdd     // + -
	precMul     // * / %
	precUnary   // -x +x
	precPostfix // x.f x[i] x::t
	precAtom
)

var binaryOps = [...]struct {
	op   BinaryOp
	prec int
}{
	tEq: {OpEq, precCmp}, tNe: {OpNe, precCmp}, tLt: {OpLt, precCmp}, tLe: {OpLe, precCmp},
	tGt: {OpGt, precCmp}, tGe: {OpGe, precCmp}, tNullSafeEq: {OpNullSafeEq, precCmp},
	tConcat: {OpConcat, precConcat}, tPlus: {OpAdd, precAdd}, tMinus: {OpSub, precAdd},
	tStar: {OpMul, precMul}, tSlash: {OpDiv, precMul}, tPercent: {OpMod, precMul},
	tArrow: {}, // the last token kind: every kind has an entry, 0 for "not an operator"
}

func isPredicateKeyword(t *token) bool {
	switch {
	case t.is(kwIn), t.is(kwBetween), t.is(kwLike), t.is(kwILike), t.is(kwRLike), t.is(kwRegexp):
		return true
	}
	return false
}

// infixPrec returns the precedence of the operator at the current token,
// or 0 if it is not an infix or postfix operator.
func (p *parser) infixPrec() int {
	t := p.tok
	switch t.kind {
	case tIdent:
		switch t.kw {
		case kwOr:
			return precOr
		case kwAnd:
			return precAnd
		case kwIs:
			return precCmp
		case kwNot:
			if isPredicateKeyword(p.peek(1)) {
				return precCmp
			}
		default:
			if isPredicateKeyword(t) {
				return precCmp
			}
		}
		return 0
	case tDot, tLBracket, tDoubleColon:
		return precPostfix
	}
	if int(t.kind) < len(binaryOps) {
		return binaryOps[t.kind].prec
	}
	return 0
}

// expr parses an expression whose operators bind at least as tightly as min.
func (p *parser) expr(min int) Expr {
	p.enter()
	defer p.leave()
	left := p.prefix()
	for {
		prec := p.infixPrec()
		if prec == 0 || prec < min {
			return left
		}
		left = p.infix(left, prec)
	}
}

func (p *parser) prefix() Expr {
	t := p.tok
	switch {
	case t.is(kwNot):
		p.next()
		return &Unary{Start: t.pos, Op: OpNot, X: p.expr(precNot)}
	case t.kind == tMinus:
		p.next()
		return &Unary{Start: t.pos, Op: OpNeg, X: p.expr(precUnary)}
	case t.kind == tPlus:
		p.next()
		return &Unary{Start: t.pos, Op: OpPlus, X: p.expr(precUnary)}
	}
	return p.primary()
}

func (p *parser) infix(left Expr, prec int) Expr {
	t := p.next()
	switch t.kind {
	case tDot:
		return &FieldAccess{Start: left.Pos(), OpPos: t.pos, X: left, Field: p.anyIdent(`a field name after "."`)}
	case tLBracket:
		ix := &Index{Start: left.Pos(), OpPos: t.pos, X: left, Index: p.expr(precLowest)}
		p.wantKind(tRBracket, "after the subscript")
		return ix
	case tDoubleColon:
		return &Cast{Start: left.Pos(), X: left, Type: p.dataType()}
	case tIdent:
		switch t.kw {
		case kwOr:
			return &Binary{Start: left.Pos(), OpPos: t.pos, Op: OpOr, L: left, R: p.expr(prec + 1)}
		case kwAnd:
			return &Binary{Start: left.Pos(), OpPos: t.pos, Op: OpAnd, L: left, R: p.expr(prec + 1)}
		case kwIs:
			is := &Is{Start: left.Pos(), OpPos: t.pos, X: left, Not: p.accept(kwNot)}
			switch {
			case p.accept(kwNull):
				is.What = IsNull
			case p.accept(kwTrue):
				is.What = IsTrue
			case p.accept(kwFalse):
				is.What = IsFalse
			default:
				if is.Not {
					p.fail("NULL, TRUE or FALSE after IS NOT")
				}
				p.fail("NULL, TRUE or FALSE after IS")
			}
			return is
		}
		not := false
		if t.kw == kwNot {
			not = true
			t = p.next()
		}
		return p.predicate(left, t, not)
	}
	b := binaryOps[t.kind]
	return &Binary{Start: left.Pos(), OpPos: t.pos, Op: b.op, L: left, R: p.expr(prec + 1)}
}

// predicate parses the rest of [NOT] IN, BETWEEN, LIKE, ILIKE, RLIKE,
// REGEXP; op is the keyword, already consumed.
func (p *parser) predicate(left Expr, op *token, not bool) Expr {
	switch op.kw {
	case kwIn:
		if q, ok := p.parenQuery(); ok {
			return &InQuery{Start: left.Pos(), OpPos: op.pos, X: left, Not: not, Query: q}
		}
		in := &InList{Start: left.Pos(), OpPos: op.pos, X: left, Not: not}
		p.orElse(p.i, func() {
			p.wantKind(tLParen, "after IN")
			for {
				in.List = append(in.List, p.expr(precLowest))
				if p.acceptKind(tRParen) {
					return
				}
				p.wantKind(tComma, `or ")" in the IN list`)
			}
		})
		return in
	case kwBetween:
		b := &Between{Start: left.Pos(), OpPos: op.pos, X: left, Not: not, Lo: p.expr(precConcat)}
		p.want(kwAnd, "after BETWEEN's lower bound")
		b.Hi = p.expr(precConcat)
		return b
	}
	l := &Like{Start: left.Pos(), OpPos: op.pos, X: left, Not: not}
	switch op.kw {
	case kwILike:
		l.Op = OpILike
	case kwRLike, kwRegexp:
		l.Op = OpRLike
	}
	l.Pattern = p.expr(precConcat)
	return l
}

// startsQuery reports whether the tokens from the current one are
// "(" followed, after any more "(", by SELECT.
func (p *parser) startsQuery() bool {
	if p.tok.kind != tLParen {
		return false
	}
	j := 1
	for p.peek(j).kind == tLParen {
		j++
	}
	return p.peek(j).is(kwSelect)
}

// parenQuery parses "(" query ")" if the tokens from the current one are
// one; otherwise it consumes nothing and returns false. It backtracks:
// "((SELECT 1) + 1)" and "((SELECT 1) UNION SELECT 2)" both start with
// "((SELECT", and only parsing tells them apart.
func (p *parser) parenQuery() (Query, bool) {
	if !p.startsQuery() {
		return nil, false
	}
	start := p.i
	if _, failed := p.notQuery[start]; failed {
		return nil, false
	}
	var q Query
	err := p.try(func() {
		p.next()
		q = p.query()
		p.wantKind(tRParen, "after the subquery")
	})
	if err != nil {
		if p.notQuery == nil {
			p.notQuery = make(map[int]*ParseError)
		}
		p.notQuery[start] = err
		p.reset(start)
		return nil, false
	}
	return q, true
}

// orElse runs f, the alternative to a "(" query ")" at token index start.
// If parenQuery failed there and f fails too, the error reported is the
// one that got further into the text.
func (p *parser) orElse(start int, f func()) {
	qerr := p.notQuery[start]
	if qerr == nil {
		f()
		return
	}
	if err := p.try(f); err != nil {
		if qerr.Pos.Offset > err.Pos.Offset {
			panic(qerr)
		}
		panic(err)
	}
}

// try runs f and returns the *ParseError it raised, if any.
func (p *parser) try(f func()) (err *ParseError) {
	depth := p.depth
	defer func() {
		if r := recover(); r != nil {
			pe, ok := r.(*ParseError)
			if !ok {
				panic(r)
			}
			p.depth = depth
			err = pe
		}
	}()
	f()
	return nil
}

func (p *parser) primary() Expr {
	t := p.tok
	switch t.kind {
	case tNumber:
		return p.number()
	case tString:
		p.next()
		return &StringLit{Start: t.pos, Value: t.val}
	case tLParen:
		start := p.i
		if q, ok := p.parenQuery(); ok {
			return &Subquery{Start: t.pos, Query: q}
		}
		var e Expr
		p.orElse(start, func() {
			p.next()
			e = p.expr(precLowest)
			p.wantKind(tRParen, "after the expression")
		})
		return e
	case tQuotedIdent:
		return p.nameExpr()
	case tIdent:
		next := p.peek(1)
		switch t.kw {
		case kwNull:
			p.next()
			return &NullLit{Start: t.pos}
		case kwTrue, kwFalse:
			p.next()
			return &BoolLit{Start: t.pos, Value: t.kw == kwTrue}
		case kwCase:
			return p.caseExpr()
		case kwCast:
			return p.cast(false)
		case kwTryCast:
			if next.kind == tLParen {
				return p.cast(true)
			}
		case kwExists:
			if next.kind == tLParen {
				p.next()
				at := p.i
				if q, ok := p.parenQuery(); ok {
					return &Exists{Start: t.pos, Query: q}
				}
				p.reset(at - 1)
				var e Expr
				p.orElse(at, func() { e = p.nameExpr() }) // the function exists(...)
				return e
			}
		case kwTimestamp, kwDate:
			if next.kind == tString {
				p.next()
				p.next()
				lit := &TypedLit{Start: t.pos, Kind: TimestampLit, Value: next.val}
				if t.kw == kwDate {
					lit.Kind = DateLit
				}
				return lit
			}
		case kwInterval:
			if next.kind == tString || next.kind == tNumber ||
				(next.kind == tMinus || next.kind == tPlus) && (p.peek(2).kind == tNumber || p.peek(2).kind == tString) {
				p.next()
				return p.interval(t.pos)
			}
		case kwLeft, kwRight:
			if next.kind == tLParen { // left(s, n), right(s, n)
				return p.nameExpr()
			}
		}
		if reserved[t.kw] {
			p.fail("an expression")
		}
		return p.nameExpr()
	}
	p.fail("an expression")
	return nil
}

// nameExpr parses name(.name)* as a column reference, or a function call
// when "(" follows.
func (p *parser) nameExpr() Expr {
	t := p.next()
	parts := []*Ident{{Start: t.pos, Name: t.val}}
	for p.tok.kind == tDot && p.peek(1).isWord() {
		p.next()
		parts = append(parts, p.anyIdent(""))
	}
	if p.tok.kind != tLParen {
		return &ColumnRef{Start: t.pos, Parts: parts}
	}
	c := &Call{Start: t.pos, Func: &ObjectName{Start: t.pos, Parts: parts}}
	c.Star, c.Args, c.Distinct = p.callArgs(true)
	if p.tok.is(kwFilter) && p.peek(1).kind == tLParen {
		p.next()
		p.next()
		p.want(kwWhere, `after FILTER (`)
		c.Filter = p.expr(precLowest)
		p.wantKind(tRParen, "after the FILTER condition")
	}
	return c
}

// callArgs parses ( [DISTINCT | ALL] args ) or (*), with name => value
// arguments allowed. DISTINCT and * only if aggregate is set.
func (p *parser) callArgs(aggregate bool) (star bool, args []Expr, distinct bool) {
	p.wantKind(tLParen, "")
	if p.acceptKind(tRParen) {
		return false, nil, false
	}
	if aggregate && p.tok.kind == tStar && p.peek(1).kind == tRParen {
		p.next()
		p.next()
		return true, nil, false
	}
	if aggregate {
		if p.accept(kwDistinct) {
			distinct = true
		} else {
			p.accept(kwAll)
		}
	}
	for {
		if p.tok.isName() && p.peek(1).kind == tArrow {
			name := p.ident("")
			p.next()
			args = append(args, &NamedArg{Start: name.Start, Name: name, Value: p.expr(precLowest)})
		} else {
			args = append(args, p.expr(precLowest))
		}
		if p.acceptKind(tRParen) {
			return false, args, distinct
		}
		p.wantKind(tComma, `or ")" after the function argument`)
	}
}

func (p *parser) caseExpr() *Case {
	c := &Case{Start: p.next().pos}
	if !p.tok.is(kwWhen) {
		c.Operand = p.expr(precLowest)
	}
	for p.tok.is(kwWhen) {
		w := &When{Start: p.next().pos, Cond: p.expr(precLowest)}
		p.want(kwThen, "after the WHEN condition")
		w.Result = p.expr(precLowest)
		c.Whens = append(c.Whens, w)
	}
	if len(c.Whens) == 0 {
		p.fail("WHEN")
	}
	if p.accept(kwElse) {
		c.Else = p.expr(precLowest)
	}
	if !p.tok.is(kwEnd) {
		if c.Else == nil {
			p.fail("WHEN, ELSE or END in CASE")
		}
		p.fail("END after ELSE")
	}
	p.next()
	return c
}

func (p *parser) cast(try bool) *Cast {
	c := &Cast{Start: p.next().pos, Try: try}
	p.wantKind(tLParen, "after CAST")
	c.X = p.expr(precLowest)
	p.want(kwAs, "in CAST")
	c.Type = p.dataType()
	p.wantKind(tRParen, "after the type")
	return c
}

var intervalUnits = map[string]IntervalUnit{
	"year": UnitYear, "years": UnitYear, "month": UnitMonth, "months": UnitMonth,
	"week": UnitWeek, "weeks": UnitWeek, "day": UnitDay, "days": UnitDay,
	"hour": UnitHour, "hours": UnitHour, "minute": UnitMinute, "minutes": UnitMinute,
	"second": UnitSecond, "seconds": UnitSecond,
	"millisecond": UnitMillisecond, "milliseconds": UnitMillisecond,
	"microsecond": UnitMicrosecond, "microseconds": UnitMicrosecond,
}

func unitOf(t *token) IntervalUnit {
	if t.kind != tIdent || len(t.text) > len("milliseconds") {
		return UnitNone
	}
	return intervalUnits[strings.ToLower(t.text)]
}

// interval parses the parts of an interval literal; INTERVAL, at start,
// is consumed.
func (p *parser) interval(start Pos) *IntervalLit {
	lit := &IntervalLit{Start: start}
	for {
		part := &IntervalPart{Start: p.pos()}
		if p.tok.kind == tMinus || p.tok.kind == tPlus {
			part.Neg = p.next().kind == tMinus
		}
		switch p.tok.kind {
		case tNumber:
			part.Value = p.next().text
		case tString:
			part.Value, part.Quoted = p.next().val, true
		default:
			p.fail("a number or a string in the interval")
		}
		part.Unit = unitOf(p.tok)
		if part.Unit != UnitNone {
			p.next()
		} else if !part.Quoted || len(lit.Parts) > 0 {
			p.fail("an interval unit such as MINUTES")
		}
		lit.Parts = append(lit.Parts, part)
		if part.Unit == UnitNone {
			return lit
		}
		// Another part follows if a value and a unit come next.
		j := 0
		if k := p.peek(0).kind; k == tMinus || k == tPlus {
			j = 1
		}
		if k := p.peek(j).kind; (k != tNumber && k != tString) || unitOf(p.peek(j+1)) == UnitNone {
			return lit
		}
	}
}
