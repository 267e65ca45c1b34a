package expr

import (
	"fmt"
	"sort"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/sluice-dev/sluice/internal/sql"
)

// evalFn computes a function over its evaluated arguments (nil for the
// arguments the function consumed at bind time). n is the number of rows.
type evalFn func(ctx *Ctx, n int, args []arrow.Array) (arrow.Array, error)

// callExpr is a scalar function call.
type callExpr struct {
	name     string
	args     []Expr
	typ      arrow.DataType
	volatile bool   // depends on more than its arguments: current_timestamp(), rand()
	skip     []bool // arguments not evaluated: constants consumed at bind time
	eval     evalFn
}

func (e *callExpr) Type() arrow.DataType { return e.typ }
func (e *callExpr) children() []Expr     { return e.args }
func (e *callExpr) String() string       { return e.name + "(" + joinExprs(e.args) + ")" }

func (e *callExpr) Eval(ctx *Ctx, in arrow.RecordBatch) (arrow.Array, error) {
	args := make([]arrow.Array, len(e.args))
	defer func() {
		for _, a := range args {
			if a != nil {
				a.Release()
			}
		}
	}()
	for i, a := range e.args {
		if e.skip != nil && e.skip[i] {
			continue
		}
		v, err := a.Eval(ctx, in)
		if err != nil {
			return nil, err
		}
		args[i] = v
	}
	return e.eval(ctx, int(in.NumRows()), args)
}

// fcall is a call being bound.
type fcall struct {
	b    *binder
	name string
	call *sql.Call
	args []Expr
	pos  []sql.Pos
	skip []bool
}

type funcDef struct {
	min, max int // max < 0: any number
	bind     func(f *fcall) (Expr, error)
}

var funcs map[string]*funcDef

func register(names string, min, max int, bind func(f *fcall) (Expr, error)) {
	if funcs == nil {
		funcs = map[string]*funcDef{}
	}
	for _, n := range strings.Fields(names) {
		funcs[n] = &funcDef{min: min, max: max, bind: bind}
	}
}

var aggregates = map[string]bool{
	"count": true, "sum": true, "avg": true, "mean": true, "min": true, "max": true, "first": true, "last": true,
	"first_value": true, "last_value": true, "count_distinct": true, "approx_count_distinct": true,
	"collect_list": true, "collect_set": true, "stddev": true, "stddev_samp": true, "stddev_pop": true,
	"variance": true, "var_samp": true, "var_pop": true, "any_value": true, "count_if": true,
	"bool_and": true, "bool_or": true, "every": true, "some": true, "max_by": true, "min_by": true,
	"percentile": true, "percentile_approx": true, "approx_percentile": true, "median": true,
}

// IsAggregate reports whether name (any case) is an aggregate function,
// which the planner computes and Bind rejects.
func IsAggregate(name string) bool { return aggregates[strings.ToLower(name)] }

// FunctionNames returns the scalar functions Bind knows, sorted.
func FunctionNames() []string {
	var out []string
	for n := range funcs {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

func (b *binder) bindCall(c *sql.Call) (Expr, error) {
	name := strings.ToLower(c.Func.Parts[len(c.Func.Parts)-1].Name)
	if len(c.Func.Parts) > 1 {
		return nil, errorf(c.Start, "unknown function %s: user-defined functions are not supported", c.Func.String())
	}
	if IsAggregate(name) {
		return nil, errorf(c.Start, "aggregate function %s is not allowed here; aggregates belong in a SELECT list or HAVING of a query with GROUP BY", name)
	}
	if name == "window" || name == "session_window" {
		return nil, errorf(c.Start, "%s(...) is only allowed in GROUP BY (and the select list of the same query)", name)
	}
	if c.Star {
		return nil, errorf(c.Start, "%s(*) is not valid: only count(*) takes *", name)
	}
	if c.Distinct {
		return nil, errorf(c.Start, "DISTINCT is only allowed in aggregate functions, not in %s", name)
	}
	if c.Filter != nil {
		return nil, errorf(c.Filter.Pos(), "FILTER (WHERE ...) is only allowed on aggregate functions, not on %s", name)
	}
	args := make([]Expr, len(c.Args))
	pos := make([]sql.Pos, len(c.Args))
	for i, a := range c.Args {
		if na, ok := a.(*sql.NamedArg); ok {
			return nil, errorf(na.Start, "%s does not take named arguments (%s => ...)", name, na.Name.Name)
		}
		x, err := b.bind(a)
		if err != nil {
			return nil, err
		}
		args[i], pos[i] = canon(x), a.Pos()
	}
	return b.callFunc(c, name, args, pos)
}

func (b *binder) callFunc(c *sql.Call, name string, args []Expr, pos []sql.Pos) (Expr, error) {
	def, ok := funcs[name]
	if !ok {
		return nil, errorf(c.Start, "unknown function %s%s", name, didYouMean(name, FunctionNames(), "", "functions"))
	}
	if len(args) < def.min || def.max >= 0 && len(args) > def.max {
		want := fmt.Sprintf("%d", def.min)
		switch {
		case def.max < 0:
			want = fmt.Sprintf("at least %d", def.min)
		case def.max != def.min:
			want = fmt.Sprintf("%d to %d", def.min, def.max)
		}
		return nil, errorf(c.Start, "%s takes %s argument%s, got %d", name, want, plural1(def.min, def.max), len(args))
	}
	if len(args) > 64 {
		return nil, errorf(c.Start, "%s: too many arguments (%d)", name, len(args))
	}
	return def.bind(&fcall{b: b, name: name, call: c, args: args, pos: pos, skip: make([]bool, len(args))})
}

func plural1(min, max int) string {
	if min == 1 && (max == 1 || max < 0) {
		return ""
	}
	return "s"
}

// coerce converts argument i to t.
func (f *fcall) coerce(i int, t arrow.DataType) error {
	x, err := f.b.coerce(f.args[i], t, f.pos[i], fmt.Sprintf("argument %d of %s", i+1, f.name))
	if err != nil {
		return err
	}
	f.args[i] = x
	return nil
}

// coerceAll converts every argument from i on to t.
func (f *fcall) coerceAll(from int, t arrow.DataType) error {
	for i := from; i < len(f.args); i++ {
		if err := f.coerce(i, t); err != nil {
			return err
		}
	}
	return nil
}

// constant returns argument i, which must be a constant, and marks it as
// consumed at bind time. A NULL constant is returned as nil.
func (f *fcall) constant(i int, what string) (any, error) {
	c, ok := f.args[i].(*constExpr)
	if !ok {
		return nil, errorf(f.pos[i], "argument %d of %s (%s) must be a constant, got %s", i+1, f.name, what, f.args[i].String())
	}
	f.skip[i] = true
	return c.val, nil
}

func (f *fcall) constString(i int, what string) (string, bool, error) {
	if err := f.coerce(i, tString); err != nil {
		return "", false, err
	}
	v, err := f.constant(i, what)
	if err != nil || v == nil {
		return "", false, err
	}
	return v.(string), true, nil
}

func (f *fcall) constInt(i int, what string) (int64, bool, error) {
	if err := f.coerce(i, tInt); err != nil {
		return 0, false, err
	}
	v, err := f.constant(i, what)
	if err != nil || v == nil {
		return 0, false, err
	}
	return v.(int64), true, nil
}

func (f *fcall) errorf(i int, format string, args ...any) error {
	p := f.call.Start
	if i >= 0 && i < len(f.pos) {
		p = f.pos[i]
	}
	return errorf(p, "%s: %s", f.name, fmt.Sprintf(format, args...))
}

// done builds the call expression and folds it.
func (f *fcall) done(typ arrow.DataType, eval evalFn) (Expr, error) {
	e := &callExpr{name: f.name, args: f.args, typ: typ, eval: eval}
	for _, s := range f.skip {
		if s {
			e.skip = f.skip
		}
	}
	return fold(e), nil
}

func (f *fcall) volatile(typ arrow.DataType, eval evalFn) (Expr, error) {
	return &callExpr{name: f.name, args: f.args, typ: typ, eval: eval, volatile: true}, nil
}

// nullResult is the result of a call whose constant argument is NULL.
func nullResult(typ arrow.DataType) (Expr, error) { return &constExpr{typ: typ}, nil }
