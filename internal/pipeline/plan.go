package pipeline

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/sluice-dev/sluice/internal/engine/agg"
	"github.com/sluice-dev/sluice/internal/expr"
	"github.com/sluice-dev/sluice/internal/ident"
	"github.com/sluice-dev/sluice/internal/sql"
	"github.com/sluice-dev/sluice/internal/table"
)

// The plan of a query is a tree of nodes. Execution (exec.go) drives the
// leftmost scan and pushes its batches up the left spine; the right side of
// a join is a static relation, computed in full before the left side flows.

type node interface {
	schema() *arrow.Schema
}

// scanNode reads a table or a dataset of the pipeline.
type scanNode struct {
	key    string // graph key: a dataset's key or an external table's name
	name   ident.Name
	stream bool // read the rows appended since the last update only
	sc     *arrow.Schema
}

type filterNode struct {
	in   node
	cond expr.Expr
}

type projectNode struct {
	in    node
	exprs []expr.Expr
	sc    *arrow.Schema
}

type joinNode struct {
	left, right node
	typ         sql.JoinType
	lkeys       []expr.Expr   // bound on the left scope
	rkeys       []expr.Expr   // bound on the right scope
	residual    expr.Expr     // bound on left ++ right; nil if none
	full        *arrow.Schema // left ++ right, what residual reads
	sc          *arrow.Schema // the output: full, or left for SEMI and ANTI
}

type aggNode struct {
	in      node
	cfg     agg.Config
	keys    []expr.Expr
	ts      expr.Expr // event time of the window; nil without one
	args    []expr.Expr
	filters []expr.Expr
	sc      *arrow.Schema
}

func (n *scanNode) schema() *arrow.Schema    { return n.sc }
func (n *filterNode) schema() *arrow.Schema  { return n.in.schema() }
func (n *projectNode) schema() *arrow.Schema { return n.sc }
func (n *joinNode) schema() *arrow.Schema    { return n.sc }
func (n *aggNode) schema() *arrow.Schema     { return n.sc }

// watermark is a relation's WATERMARK clause: the event-time expression
// (as printed SQL, to match window() arguments against) and the delay.
type watermark struct {
	col   string
	delay time.Duration
}

// rel is a planned relation: a node and the names its columns answer to.
type rel struct {
	n     node
	scope *expr.Scope
	wm    *watermark
	// aggs counts the aggregations in the relation, to refuse more than
	// one in a streaming query.
	aggs int
	// pre is, for a projection, the relation it projects: expectations may
	// test the query's input rows (value.amount) as well as its output.
	pre *rel
}

func (r *rel) streaming() bool { return leftmost(r.n).stream }

func leftmost(n node) *scanNode {
	for {
		switch x := n.(type) {
		case *scanNode:
			return x
		case *filterNode:
			n = x.in
		case *projectNode:
			n = x.in
		case *joinNode:
			n = x.left
		case *aggNode:
			n = x.in
		default:
			panic(fmt.Sprintf("pipeline: unknown node %T", n))
		}
	}
}

// queryPlan is a dataset's planned query.
type queryPlan struct {
	root      node
	streaming bool
	source    *scanNode // the leftmost scan
	// exp are the expectations, bound on the output (onInput false) or on
	// the query's input rows (onInput true; then pre is the input node
	// whose rows the projection turns into output rows).
	exp []boundExpectation
	pre node
	// sel is what the plan reads of its source's columns (prune.go).
	sel []*table.Selection
}

type planner struct {
	ctx      context.Context
	g        *Graph
	lookup   Lookup
	external map[string]*arrow.Schema
	ds       *Dataset // being planned
}

func (p *planner) errorf(pos sql.Pos, format string, args ...any) error {
	return &Error{Dataset: p.ds.Key(), Pos: pos, Msg: fmt.Sprintf(format, args...)}
}

func (p *planner) planDataset(d *Dataset) error {
	p.ds = d
	if d.Kind == sql.TemporaryView {
		// A view is planned where it is read; plan it once here to report
		// its errors and learn its schema.
		r, err := p.planQuery(d.stmt.Query)
		if err != nil {
			return err
		}
		d.Schema = r.n.schema()
		d.plan = &queryPlan{root: r.n, streaming: r.streaming(), source: leftmost(r.n)}
		return nil
	}
	r, err := p.planQuery(d.stmt.Query)
	if err != nil {
		return err
	}
	streaming := r.streaming()
	switch {
	case d.Kind == sql.StreamingTable && !streaming:
		return p.errorf(d.stmt.Start, "a streaming table reads its source as a stream: write FROM STREAM(%s)", leftmost(r.n).key)
	case d.Kind == sql.MaterializedView && streaming:
		return p.errorf(d.stmt.Start, "a materialized view is recomputed from tables, not read from streams: remove STREAM() or make it a STREAMING TABLE")
	}
	mode, err := outputMode(d, r)
	if err != nil {
		return err
	}
	if a, ok := findAgg(r.n); ok {
		a.cfg.Mode = mode
		if _, err := agg.New(a.cfg, nil); err != nil {
			return p.errorf(d.stmt.Start, "%v", err)
		}
	} else if mode != agg.Append && d.Properties[propOutputMode] != "" {
		return p.errorf(d.stmt.Start, "%s = %q applies to aggregations; this query has none", propOutputMode, d.Properties[propOutputMode])
	}
	d.plan = &queryPlan{root: r.n, streaming: streaming, source: leftmost(r.n)}
	d.Schema = nullable(r.n.schema())
	if err := p.checkColumns(d); err != nil {
		return err
	}
	return p.bindExpectations(d, r)
}

const (
	propOutputMode   = "pipelines.output_mode"
	propResetAllowed = "pipelines.reset.allowed"
)

// outputMode returns the dataset's output mode: the property if set, else
// append for windowed aggregations with a watermark and for queries without
// aggregation, and complete for other aggregations.
func outputMode(d *Dataset, r *rel) (agg.Mode, error) {
	switch v := strings.ToLower(d.Properties[propOutputMode]); v {
	case "append":
		return agg.Append, nil
	case "update":
		return agg.Update, nil
	case "complete":
		return agg.Complete, nil
	case "":
	default:
		return 0, &Error{Dataset: d.Key(), Pos: d.stmt.Start, Msg: fmt.Sprintf("%s must be append, update or complete, not %q", propOutputMode, v)}
	}
	a, ok := findAgg(r.n)
	if !ok || d.Kind == sql.MaterializedView {
		if ok {
			return agg.Complete, nil
		}
		return agg.Append, nil
	}
	if a.cfg.Window.Kind != agg.NoWindow && a.cfg.Watermark {
		return agg.Append, nil
	}
	return agg.Complete, nil
}

// findAgg returns the aggregation on the left spine of n.
func findAgg(n node) (*aggNode, bool) {
	for {
		switch x := n.(type) {
		case *aggNode:
			return x, true
		case *filterNode:
			n = x.in
		case *projectNode:
			n = x.in
		case *joinNode:
			n = x.left
		default:
			return nil, false
		}
	}
}

func (p *planner) checkColumns(d *Dataset) error {
	var defs []*sql.ColumnDef
	for _, el := range d.stmt.Elements {
		if c, ok := el.(*sql.ColumnDef); ok {
			defs = append(defs, c)
		}
	}
	if len(defs) > 0 {
		if len(defs) != d.Schema.NumFields() {
			return p.errorf(defs[0].Start, "%d columns are declared but the query returns %d (%s)", len(defs), d.Schema.NumFields(), strings.Join(fieldNames(d.Schema), ", "))
		}
		for i, c := range defs {
			if got := d.Schema.Field(i).Name; !strings.EqualFold(got, c.Name.Name) {
				return p.errorf(c.Start, "declared column %d is %q but the query's column %d is %q", i+1, c.Name.Name, i+1, got)
			}
		}
	}
	for _, k := range d.PrimaryKey {
		if len(d.Schema.FieldIndices(k)) == 0 {
			return p.errorf(d.stmt.Start, "primary key column %q is not an output column (%s)", k, strings.Join(fieldNames(d.Schema), ", "))
		}
	}
	return nil
}

func fieldNames(sc *arrow.Schema) []string {
	out := make([]string, sc.NumFields())
	for i, f := range sc.Fields() {
		out[i] = f.Name
	}
	return out
}

// nullable returns sc as a table stores it: every field nullable, nested
// ones included, and list elements named "element" (Iceberg's optional
// fields read back this way).
func nullable(sc *arrow.Schema) *arrow.Schema {
	fields := sc.Fields()
	for i := range fields {
		fields[i] = arrow.Field{Name: fields[i].Name, Type: nullableType(fields[i].Type), Nullable: true}
	}
	return arrow.NewSchema(fields, nil)
}

func nullableType(t arrow.DataType) arrow.DataType {
	switch t := t.(type) {
	case *arrow.StructType:
		fields := make([]arrow.Field, t.NumFields())
		for i, f := range t.Fields() {
			fields[i] = arrow.Field{Name: f.Name, Type: nullableType(f.Type), Nullable: true}
		}
		return arrow.StructOf(fields...)
	case *arrow.ListType:
		return arrow.ListOfField(arrow.Field{Name: "element", Type: nullableType(t.Elem()), Nullable: true})
	}
	return t
}

// ---- queries

func (p *planner) planQuery(q sql.Query) (*rel, error) {
	switch q := q.(type) {
	case *sql.Select:
		return p.planSelect(q)
	case *sql.Union:
		return nil, p.errorf(q.OpPos, "UNION is not supported in pipeline queries yet; define one dataset per source")
	}
	return nil, p.errorf(q.Pos(), "unsupported query %T", q)
}

func (p *planner) planSelect(s *sql.Select) (*rel, error) {
	if len(s.From) == 0 {
		return nil, p.errorf(s.Start, "a pipeline query reads a table: add FROM")
	}
	if len(s.From) > 1 {
		return nil, p.errorf(s.From[1].Pos(), "FROM a, b is a cross join; write JOIN … ON")
	}
	if len(s.OrderBy) > 0 {
		return nil, p.errorf(s.OrderBy[0].Start, "ORDER BY is not supported in datasets: tables are unordered; order when reading")
	}
	if s.Limit != nil || s.Offset != nil {
		return nil, p.errorf(s.Start, "LIMIT and OFFSET are not supported in datasets")
	}
	r, err := p.planFrom(s.From[0])
	if err != nil {
		return nil, err
	}
	if s.Where != nil {
		if err := p.noAggregates(s.Where, "WHERE"); err != nil {
			return nil, err
		}
		cond, err := p.bindBool(s.Where, r.scope, "WHERE")
		if err != nil {
			return nil, err
		}
		r = &rel{n: &filterNode{in: r.n, cond: cond}, scope: r.scope, wm: r.wm, aggs: r.aggs}
	}
	items, err := p.expandStars(s.Items, r.scope)
	if err != nil {
		return nil, err
	}
	if len(s.GroupBy) > 0 || s.Having != nil || hasAggregate(items) {
		return p.planAggregate(s, items, r)
	}
	out, err := p.project(items, r)
	if err != nil {
		return nil, err
	}
	if s.Distinct {
		return p.distinct(out)
	}
	return out, nil
}

// bindBool binds a condition and checks it is boolean.
func (p *planner) bindBool(e sql.Expr, sc *expr.Scope, where string) (expr.Expr, error) {
	b, err := expr.Bind(e, sc)
	if err != nil {
		return nil, err
	}
	if b.Type().ID() != arrow.BOOL {
		return nil, p.errorf(e.Pos(), "%s needs a boolean condition, but %s is %s", where, sql.Format(e), b.Type())
	}
	return b, nil
}

func (p *planner) noAggregates(e sql.Expr, where string) error {
	var err error
	visitExprs(e, func(x sql.Expr) bool {
		if c, ok := x.(*sql.Call); ok && err == nil && isAggCall(c) {
			err = p.errorf(c.Start, "aggregate function %s is not allowed in %s", funcName(c), where)
		}
		return err == nil
	})
	return err
}

func funcName(c *sql.Call) string { return strings.ToLower(c.Func.Parts[len(c.Func.Parts)-1].Name) }

func isAggCall(c *sql.Call) bool { return len(c.Func.Parts) == 1 && expr.IsAggregate(funcName(c)) }

func isWindowCall(e sql.Expr) (*sql.Call, bool) {
	c, ok := e.(*sql.Call)
	if !ok || len(c.Func.Parts) != 1 {
		return nil, false
	}
	switch funcName(c) {
	case "window", "session_window":
		return c, true
	}
	return nil, false
}

func hasAggregate(items []*sql.SelectItem) bool {
	found := false
	for _, it := range items {
		visitExprs(it.Expr, func(x sql.Expr) bool {
			if c, ok := x.(*sql.Call); ok && isAggCall(c) {
				found = true
			}
			return !found
		})
	}
	return found
}

// ---- FROM

func (p *planner) planFrom(t sql.TableExpr) (*rel, error) {
	switch t := t.(type) {
	case *sql.TableRef:
		return p.planTableRef(t)
	case *sql.SubqueryTable:
		r, err := p.planQuery(t.Query)
		if err != nil {
			return nil, err
		}
		q := ""
		if t.Alias != nil {
			q = t.Alias.Name
		}
		r = requalify(r, q)
		return p.withWatermark(r, t.Watermark)
	case *sql.Join:
		return p.planJoin(t)
	case *sql.TableFunc:
		return nil, p.errorf(t.Start, "table-valued function %s is not supported in pipelines", sql.Format(t.Func))
	}
	return nil, p.errorf(t.Pos(), "unsupported FROM item %T", t)
}

func requalify(r *rel, q string) *rel {
	sc := &expr.Scope{Columns: make([]expr.Column, len(r.scope.Columns))}
	for i, c := range r.scope.Columns {
		c.Qualifier = q
		sc.Columns[i] = c
	}
	return &rel{n: r.n, scope: sc, wm: r.wm, aggs: r.aggs}
}

func (p *planner) planTableRef(t *sql.TableRef) (*rel, error) {
	key, err := p.g.refKey(t.Name)
	if err != nil {
		return nil, err
	}
	qual := t.Name.Parts[len(t.Name.Parts)-1].Name
	if t.Alias != nil {
		qual = t.Alias.Name
	}
	var r *rel
	if d := p.g.byKey[key]; d != nil {
		if d == p.ds {
			return nil, p.errorf(t.Start, "%s reads itself", key)
		}
		if d.Kind == sql.TemporaryView {
			saved := p.ds
			p.ds = d
			vr, err := p.planQuery(d.stmt.Query)
			p.ds = saved
			if err != nil {
				return nil, err
			}
			if t.Stream && !vr.streaming() {
				return nil, p.errorf(t.Start, "STREAM(%s): the view reads no stream", key)
			}
			r = requalify(vr, qual)
		} else {
			if d.Schema == nil {
				return nil, p.errorf(t.Start, "%s is not planned yet (internal error: graph order)", key)
			}
			r = &rel{n: &scanNode{key: key, name: d.Name, stream: t.Stream, sc: d.Schema}, scope: expr.NewScope(d.Schema, qual)}
		}
	} else {
		sc, err := p.external1(t, key)
		if err != nil {
			return nil, err
		}
		name, _ := ident.Parse(key)
		r = &rel{n: &scanNode{key: key, name: name, stream: t.Stream, sc: sc}, scope: expr.NewScope(sc, qual)}
	}
	return p.withWatermark(r, t.Watermark)
}

func (p *planner) external1(t *sql.TableRef, key string) (*arrow.Schema, error) {
	if sc, ok := p.external[key]; ok {
		return sc, nil
	}
	if p.lookup == nil {
		return nil, p.errorf(t.Start, "unknown table %s", key)
	}
	name, err := ident.Parse(key)
	if err != nil {
		return nil, p.errorf(t.Start, "%v", err)
	}
	sc, err := p.lookup(p.ctx, name)
	if err != nil {
		if errors.Is(err, ErrUnknownTable) {
			return nil, p.errorf(t.Start, "unknown table %s: it is neither a dataset of this pipeline nor an existing table", key)
		}
		return nil, fmt.Errorf("looking up %s: %w", key, err)
	}
	p.external[key] = sc
	return sc, nil
}

func (p *planner) withWatermark(r *rel, w *sql.Watermark) (*rel, error) {
	if w == nil {
		return r, nil
	}
	b, err := expr.Bind(w.Expr, r.scope)
	if err != nil {
		return nil, err
	}
	if b.Type().ID() != arrow.TIMESTAMP {
		return nil, p.errorf(w.Start, "the watermark's event time %s must be a timestamp, not %s", sql.Format(w.Expr), b.Type())
	}
	d, err := expr.IntervalDuration(w.Delay)
	if err != nil {
		return nil, p.errorf(w.Delay.Start, "%v", err)
	}
	if d < 0 {
		return nil, p.errorf(w.Delay.Start, "the watermark delay must not be negative")
	}
	col := sql.Format(w.Expr)
	if w.Alias != nil {
		col = w.Alias.Name
	}
	out := *r
	out.wm = &watermark{col: strings.ToLower(col), delay: d}
	return &out, nil
}

func (p *planner) planJoin(j *sql.Join) (*rel, error) {
	l, err := p.planFrom(j.Left)
	if err != nil {
		return nil, err
	}
	r, err := p.planFrom(j.Right)
	if err != nil {
		return nil, err
	}
	if r.streaming() {
		return nil, p.errorf(j.OpPos, "the right side of a join is read as a table: stream–stream joins are not supported; remove STREAM() on the right")
	}
	switch j.Type {
	case sql.InnerJoin, sql.LeftJoin, sql.SemiJoin, sql.AntiJoin:
	default:
		return nil, p.errorf(j.OpPos, "%s JOIN is not supported: use an inner or LEFT join with the stream on the left", j.Type)
	}
	both := l.scope.Concat(r.scope)
	jn := &joinNode{left: l.n, right: r.n, typ: j.Type}
	var conds []sql.Expr
	if j.On != nil {
		conds = conjuncts(j.On)
	}
	for _, u := range j.Using {
		lk, err := expr.Bind(&sql.ColumnRef{Start: u.Start, Parts: []*sql.Ident{u}}, l.scope)
		if err != nil {
			return nil, err
		}
		rk, err := expr.Bind(&sql.ColumnRef{Start: u.Start, Parts: []*sql.Ident{u}}, r.scope)
		if err != nil {
			return nil, err
		}
		jn.lkeys, jn.rkeys = append(jn.lkeys, lk), append(jn.rkeys, rk)
	}
	var residual []sql.Expr
	for _, c := range conds {
		if lk, rk, ok := p.equiKey(c, l.scope, r.scope); ok {
			jn.lkeys, jn.rkeys = append(jn.lkeys, lk), append(jn.rkeys, rk)
			continue
		}
		residual = append(residual, c)
	}
	if j.Type != sql.CrossJoin && len(jn.lkeys) == 0 {
		return nil, p.errorf(j.OpPos, "the join needs at least one equality between the two sides in ON (left.col = right.col)")
	}
	if len(residual) > 0 {
		cond := residual[0]
		for _, c := range residual[1:] {
			cond = &sql.Binary{Start: cond.Pos(), Op: sql.OpAnd, L: cond, R: c}
		}
		b, err := p.bindBool(cond, both, "ON")
		if err != nil {
			return nil, err
		}
		jn.residual = b
	}
	scope := both
	fields := append(append([]arrow.Field{}, l.n.schema().Fields()...), r.n.schema().Fields()...)
	jn.full, jn.sc = arrow.NewSchema(fields, nil), arrow.NewSchema(fields, nil)
	if j.Type == sql.SemiJoin || j.Type == sql.AntiJoin {
		scope = l.scope
		jn.sc = l.n.schema()
	}
	return &rel{n: jn, scope: scope, wm: l.wm, aggs: l.aggs + r.aggs}, nil
}

func conjuncts(e sql.Expr) []sql.Expr {
	if b, ok := e.(*sql.Binary); ok && b.Op == sql.OpAnd {
		return append(conjuncts(b.L), conjuncts(b.R)...)
	}
	return []sql.Expr{e}
}

// equiKey reports whether c is l = r with one side bound on each scope.
func (p *planner) equiKey(c sql.Expr, ls, rs *expr.Scope) (expr.Expr, expr.Expr, bool) {
	b, ok := c.(*sql.Binary)
	if !ok || b.Op != sql.OpEq {
		return nil, nil, false
	}
	try := func(x, y sql.Expr) (expr.Expr, expr.Expr, bool) {
		lk, err1 := expr.Bind(x, ls)
		rk, err2 := expr.Bind(y, rs)
		if err1 != nil || err2 != nil || len(expr.Columns(lk)) == 0 || len(expr.Columns(rk)) == 0 {
			return nil, nil, false
		}
		lk, rk, err := unifyKeys(lk, rk)
		return lk, rk, err == nil
	}
	if lk, rk, ok := try(b.L, b.R); ok {
		return lk, rk, true
	}
	return try(b.R, b.L)
}

// unifyKeys casts two join keys to a common type.
func unifyKeys(l, r expr.Expr) (expr.Expr, expr.Expr, error) {
	lt, rt := l.Type(), r.Type()
	if arrow.TypeEqual(lt, rt) {
		return l, r, nil
	}
	if isNumeric(lt) && isNumeric(rt) {
		var err error
		if l, err = expr.CastTo(l, arrow.PrimitiveTypes.Float64); err != nil {
			return nil, nil, err
		}
		r, err = expr.CastTo(r, arrow.PrimitiveTypes.Float64)
		return l, r, err
	}
	if lt.ID() == rt.ID() {
		return l, r, nil
	}
	r, err := expr.CastTo(r, lt)
	return l, r, err
}

func isNumeric(t arrow.DataType) bool {
	switch t.ID() {
	case arrow.INT8, arrow.INT16, arrow.INT32, arrow.INT64, arrow.FLOAT32, arrow.FLOAT64:
		return true
	}
	return false
}

// ---- SELECT list

// expandStars replaces * and q.* (a table's columns, or a struct's fields)
// by column references.
func (p *planner) expandStars(items []*sql.SelectItem, sc *expr.Scope) ([]*sql.SelectItem, error) {
	var out []*sql.SelectItem
	for _, it := range items {
		st, ok := it.Expr.(*sql.Star)
		if !ok {
			out = append(out, it)
			continue
		}
		if len(st.Qualifier) == 0 {
			for _, c := range sc.Columns {
				out = append(out, colItem(st.Start, c.Qualifier, c.Name))
			}
			continue
		}
		// q.*: a table qualifier, or a struct column (value.*).
		n := 0
		if len(st.Qualifier) == 1 {
			for _, c := range sc.Columns {
				if strings.EqualFold(c.Qualifier, st.Qualifier[0].Name) {
					out = append(out, colItem(st.Start, c.Qualifier, c.Name))
					n++
				}
			}
		}
		if n > 0 {
			continue
		}
		ref := &sql.ColumnRef{Start: st.Start, Parts: st.Qualifier}
		b, err := expr.Bind(ref, sc)
		if err != nil {
			return nil, err
		}
		stt, ok := b.Type().(*arrow.StructType)
		if !ok {
			return nil, p.errorf(st.Start, "%s.* needs a table or a struct column, but %s is %s", sql.Format(ref), sql.Format(ref), b.Type())
		}
		for _, f := range stt.Fields() {
			parts := append(append([]*sql.Ident{}, st.Qualifier...), &sql.Ident{Start: st.Start, Name: f.Name})
			out = append(out, &sql.SelectItem{Start: st.Start, Expr: &sql.ColumnRef{Start: st.Start, Parts: parts}, Alias: &sql.Ident{Start: st.Start, Name: f.Name}})
		}
	}
	return out, nil
}

func colItem(pos sql.Pos, qual, name string) *sql.SelectItem {
	parts := []*sql.Ident{{Start: pos, Name: name}}
	if qual != "" {
		parts = append([]*sql.Ident{{Start: pos, Name: qual}}, parts...)
	}
	return &sql.SelectItem{Start: pos, Expr: &sql.ColumnRef{Start: pos, Parts: parts}, Alias: &sql.Ident{Start: pos, Name: name}}
}

// itemName is the output name of a select item: its alias, a column's or
// field's last name, or the expression as SQL, as Spark names them.
func itemName(it *sql.SelectItem) string {
	if it.Alias != nil {
		return it.Alias.Name
	}
	switch e := it.Expr.(type) {
	case *sql.ColumnRef:
		return e.Parts[len(e.Parts)-1].Name
	case *sql.FieldAccess:
		return e.Field.Name
	}
	return sql.Format(it.Expr)
}

// project binds the select list on r and returns the projection.
func (p *planner) project(items []*sql.SelectItem, r *rel) (*rel, error) {
	pn := &projectNode{in: r.n}
	fields := make([]arrow.Field, 0, len(items))
	seen := map[string]sql.Pos{}
	var wm *watermark
	for _, it := range items {
		b, err := expr.Bind(it.Expr, r.scope)
		if err != nil {
			return nil, err
		}
		name := itemName(it)
		if prev, dup := seen[strings.ToLower(name)]; dup {
			return nil, p.errorf(it.Start, "the output has two columns named %q (the first at line %d, column %d): give one an alias", name, prev.Line, prev.Col)
		}
		seen[strings.ToLower(name)] = it.Start
		pn.exprs = append(pn.exprs, b)
		fields = append(fields, arrow.Field{Name: name, Type: b.Type(), Nullable: true})
		// The watermark follows its column through the projection.
		if r.wm != nil && (strings.EqualFold(sql.Format(it.Expr), r.wm.col) || isColumnNamed(it.Expr, r.wm.col)) {
			wm = &watermark{col: strings.ToLower(name), delay: r.wm.delay}
		}
	}
	pn.sc = arrow.NewSchema(fields, nil)
	return &rel{n: pn, scope: expr.NewScope(pn.sc, ""), wm: wm, aggs: r.aggs, pre: r}, nil
}

// isColumnNamed reports whether e is a column reference whose last part is
// name (the watermark column qualified or not).
func isColumnNamed(e sql.Expr, name string) bool {
	c, ok := e.(*sql.ColumnRef)
	if !ok {
		return false
	}
	last := strings.ToLower(c.Parts[len(c.Parts)-1].Name)
	return last == name || strings.HasSuffix(name, "."+last) && strings.EqualFold(sql.Format(c), name)
}

// distinct is SELECT DISTINCT: a grouping on every column, without
// aggregates.
func (p *planner) distinct(r *rel) (*rel, error) {
	sc := r.n.schema()
	a := &aggNode{in: r.n}
	for i, f := range sc.Fields() {
		a.keys = append(a.keys, expr.ColumnAt(i, f.Name, f.Type))
		a.cfg.Keys = append(a.cfg.Keys, arrow.Field{Name: f.Name, Type: f.Type, Nullable: true})
	}
	a.cfg.Mode = agg.Complete
	a.sc = sc
	if r.aggs > 0 && r.streaming() {
		return nil, p.errorf(sql.Pos{}, "a streaming query can aggregate once; DISTINCT after an aggregation is not supported")
	}
	return &rel{n: a, scope: expr.NewScope(sc, ""), aggs: r.aggs + 1}, nil
}

// ---- aggregation

const windowCol = "__window"

func (p *planner) planAggregate(s *sql.Select, items []*sql.SelectItem, r *rel) (*rel, error) {
	if r.aggs > 0 && r.streaming() {
		return nil, p.errorf(s.Start, "a streaming query can aggregate once; this one aggregates an aggregation")
	}
	a := &aggNode{in: r.n, cfg: agg.Config{WindowName: windowCol}}
	// replacements maps printed SQL of group expressions and aggregate
	// calls to the agg output column that holds them.
	repl := map[string]string{}
	var windowAST *sql.Call

	for _, g := range s.GroupBy {
		if n, ok := g.(*sql.NumberLit); ok && n.Kind == sql.IntNumber {
			var i int
			fmt.Sscan(n.Raw, &i)
			if i < 1 || i > len(items) {
				return nil, p.errorf(n.Start, "GROUP BY %d: the select list has %d items", i, len(items))
			}
			g = items[i-1].Expr
		}
		if c, ok := isWindowCall(g); ok {
			if windowAST != nil {
				return nil, p.errorf(c.Start, "GROUP BY can hold one window(...) or session_window(...)")
			}
			windowAST = c
			if err := p.planWindow(c, r, a); err != nil {
				return nil, err
			}
			repl[strings.ToLower(sql.Format(c))] = windowCol
			continue
		}
		if err := p.noAggregates(g, "GROUP BY"); err != nil {
			return nil, err
		}
		b, err := expr.Bind(g, r.scope)
		if err != nil {
			return nil, err
		}
		name := fmt.Sprintf("__k%d", len(a.keys))
		a.keys = append(a.keys, b)
		a.cfg.Keys = append(a.cfg.Keys, arrow.Field{Name: name, Type: b.Type(), Nullable: true})
		repl[strings.ToLower(sql.Format(g))] = name
	}

	// Aggregate calls of the select list and HAVING.
	collect := func(e sql.Expr) error {
		var err error
		visitExprs(e, func(x sql.Expr) bool {
			c, ok := x.(*sql.Call)
			if !ok || err != nil || !isAggCall(c) {
				return err == nil
			}
			key := strings.ToLower(sql.Format(c))
			if _, done := repl[key]; done {
				return false
			}
			name := fmt.Sprintf("__a%d", len(a.cfg.Aggs))
			if err = p.planAggCall(c, r, a, name); err == nil {
				repl[key] = name
			}
			return false
		})
		return err
	}
	for _, it := range items {
		if err := collect(it.Expr); err != nil {
			return nil, err
		}
	}
	if s.Having != nil {
		if err := collect(s.Having); err != nil {
			return nil, err
		}
	}

	// The output's shape is the aggregator's; the output mode, which does
	// not change it, is chosen when the dataset is planned.
	probe := a.cfg
	probe.Mode = agg.Complete
	pa, err := agg.New(probe, nil)
	if err != nil {
		return nil, p.errorf(s.Start, "%v", err)
	}
	a.sc = pa.OutputSchema()
	post := &rel{n: a, scope: expr.NewScope(a.sc, ""), aggs: r.aggs + 1}

	// Rewrite the select list and HAVING onto the aggregation's output.
	sub := func(e sql.Expr) sql.Expr {
		return rewrite(e, func(x sql.Expr) sql.Expr {
			if _, isLit := x.(*sql.NumberLit); isLit {
				return nil
			}
			if name, ok := repl[strings.ToLower(sql.Format(x))]; ok {
				return &sql.ColumnRef{Start: x.Pos(), Parts: []*sql.Ident{{Start: x.Pos(), Name: name}}}
			}
			return nil
		})
	}
	out := post
	if s.Having != nil {
		cond, err := p.bindPostAgg(sub(s.Having), r.scope, post.scope)
		if err != nil {
			return nil, err
		}
		if cond.Type().ID() != arrow.BOOL {
			return nil, p.errorf(s.Having.Pos(), "HAVING needs a boolean condition, not %s", cond.Type())
		}
		out = &rel{n: &filterNode{in: a, cond: cond}, scope: post.scope, aggs: post.aggs}
	}
	rewritten := make([]*sql.SelectItem, len(items))
	for i, it := range items {
		c := *it
		c.Expr = sub(it.Expr)
		if c.Alias == nil {
			c.Alias = &sql.Ident{Start: it.Start, Name: itemName(it)}
		}
		rewritten[i] = &c
	}
	for _, it := range rewritten {
		if _, err := p.bindPostAgg(it.Expr, r.scope, post.scope); err != nil {
			return nil, err
		}
	}
	res, err := p.project(rewritten, out)
	if err != nil {
		return nil, err
	}
	if s.Distinct {
		return p.distinct(res)
	}
	return res, nil
}

// bindPostAgg binds e on the aggregation's output (post), explaining a
// column that is neither grouped nor aggregated.
func (p *planner) bindPostAgg(e sql.Expr, pre, post *expr.Scope) (expr.Expr, error) {
	b, err := expr.Bind(e, post)
	if err == nil {
		return b, nil
	}
	var bad *sql.ColumnRef
	visitExprs(e, func(x sql.Expr) bool {
		if c, ok := x.(*sql.ColumnRef); ok && bad == nil && !strings.HasPrefix(c.Parts[0].Name, "__") {
			if _, e2 := expr.Bind(c, pre); e2 == nil {
				bad = c
			}
		}
		return bad == nil
	})
	if bad != nil {
		return nil, p.errorf(bad.Start, "%s must be in GROUP BY or inside an aggregate function such as first(%s)", sql.Format(bad), sql.Format(bad))
	}
	return nil, err
}

// planAggCall adds the aggregate call c to a.
func (p *planner) planAggCall(c *sql.Call, r *rel, a *aggNode, name string) error {
	fn := funcName(c)
	sp := agg.Spec{Name: name}
	var arg sql.Expr
	switch {
	case fn == "count" && c.Star:
		sp.Func = agg.CountStar
	case fn == "count" && c.Distinct, fn == "count_distinct", fn == "approx_count_distinct":
		sp.Func = agg.CountDistinct
	case fn == "count":
		sp.Func = agg.Count
	case fn == "sum":
		sp.Func = agg.Sum
	case fn == "avg", fn == "mean":
		sp.Func = agg.Avg
	case fn == "min":
		sp.Func = agg.Min
	case fn == "max":
		sp.Func = agg.Max
	case fn == "first", fn == "first_value", fn == "any_value":
		sp.Func = agg.First
	case fn == "last", fn == "last_value":
		sp.Func = agg.Last
	default:
		return p.errorf(c.Start, "aggregate function %s is not supported yet; use count, sum, avg, min, max, first or last", fn)
	}
	if c.Distinct && sp.Func != agg.CountDistinct {
		return p.errorf(c.Start, "DISTINCT is supported in count(DISTINCT …) only")
	}
	var bound expr.Expr
	if sp.Func != agg.CountStar {
		if len(c.Args) != 1 {
			return p.errorf(c.Start, "%s takes one argument, got %d", fn, len(c.Args))
		}
		arg = c.Args[0]
		if err := p.noAggregates(arg, "an aggregate's argument"); err != nil {
			return err
		}
		b, err := expr.Bind(arg, r.scope)
		if err != nil {
			return err
		}
		switch b.Type().ID() {
		case arrow.INT8, arrow.INT16, arrow.INT32:
			if b, err = expr.CastTo(b, arrow.PrimitiveTypes.Int64); err != nil {
				return err
			}
		case arrow.FLOAT32:
			if b, err = expr.CastTo(b, arrow.PrimitiveTypes.Float64); err != nil {
				return err
			}
		}
		if (sp.Func == agg.Sum || sp.Func == agg.Avg) && !isNumeric(b.Type()) {
			return p.errorf(arg.Pos(), "%s needs a number, but %s is %s", fn, sql.Format(arg), b.Type())
		}
		sp.Type = b.Type()
		bound = b
	}
	var filter expr.Expr
	if c.Filter != nil {
		f, err := p.bindBool(c.Filter, r.scope, "FILTER (WHERE …)")
		if err != nil {
			return err
		}
		filter = f
	}
	a.cfg.Aggs = append(a.cfg.Aggs, sp)
	a.args = append(a.args, bound)
	a.filters = append(a.filters, filter)
	return nil
}

// planWindow plans window(ts, size[, slide[, offset]]) or
// session_window(ts, gap) in GROUP BY.
func (p *planner) planWindow(c *sql.Call, r *rel, a *aggNode) error {
	fn := funcName(c)
	minArgs, maxArgs := 2, 4
	if fn == "session_window" {
		maxArgs = 2
	}
	if len(c.Args) < minArgs || len(c.Args) > maxArgs {
		return p.errorf(c.Start, "%s takes %d to %d arguments: %s(time_column, duration…)", fn, minArgs, maxArgs, fn)
	}
	ts, err := expr.Bind(c.Args[0], r.scope)
	if err != nil {
		return err
	}
	if ts.Type().ID() != arrow.TIMESTAMP {
		return p.errorf(c.Args[0].Pos(), "%s needs a timestamp, but %s is %s", fn, sql.Format(c.Args[0]), ts.Type())
	}
	durs := make([]time.Duration, 0, 3)
	for _, x := range c.Args[1:] {
		d, err := p.duration(x)
		if err != nil {
			return err
		}
		durs = append(durs, d)
	}
	w := &a.cfg.Window
	if fn == "session_window" {
		w.Kind, w.Gap = agg.Session, durs[0]
	} else {
		w.Kind, w.Size, w.Slide = agg.Tumbling, durs[0], durs[0]
		if len(durs) > 1 {
			w.Slide = durs[1]
			if w.Slide != w.Size {
				w.Kind = agg.Sliding
			}
		}
		if len(durs) > 2 {
			w.Offset = durs[2]
		}
	}
	a.ts = ts
	if r.wm != nil {
		col := strings.ToLower(sql.Format(c.Args[0]))
		if col != r.wm.col && !isColumnNamed(c.Args[0], r.wm.col) {
			return p.errorf(c.Args[0].Pos(), "the window's time column %s is not the watermark's column %s: window the watermark column", sql.Format(c.Args[0]), r.wm.col)
		}
		a.cfg.Watermark, a.cfg.Delay = true, r.wm.delay
	}
	return nil
}

// duration reads a window duration: '5 minutes' or INTERVAL 5 MINUTES.
func (p *planner) duration(x sql.Expr) (time.Duration, error) {
	var d time.Duration
	var err error
	switch v := x.(type) {
	case *sql.StringLit:
		d, err = expr.ParseInterval(v.Value)
	case *sql.IntervalLit:
		d, err = expr.IntervalDuration(v)
	default:
		return 0, p.errorf(x.Pos(), "a window duration is a string such as '5 minutes' or an INTERVAL, not %s", sql.Format(x))
	}
	if err != nil {
		return 0, p.errorf(x.Pos(), "%v", err)
	}
	if d <= 0 {
		return 0, p.errorf(x.Pos(), "a window duration must be positive, not %s", sql.Format(x))
	}
	return d, nil
}
