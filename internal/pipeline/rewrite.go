package pipeline

import "github.com/sluice-dev/sluice/internal/sql"

// rewrite returns a copy of e in which every sub-expression for which f
// returns a replacement is replaced (f sees outer expressions first and is
// not called inside a replacement). Nodes without replacement below them
// are shared with e, not copied. Subqueries are not entered.
func rewrite(e sql.Expr, f func(sql.Expr) sql.Expr) sql.Expr {
	if e == nil {
		return nil
	}
	if r := f(e); r != nil {
		return r
	}
	rw := func(x sql.Expr) sql.Expr { return rewrite(x, f) }
	switch n := e.(type) {
	case *sql.Unary:
		c := *n
		c.X = rw(n.X)
		return &c
	case *sql.Binary:
		c := *n
		c.L, c.R = rw(n.L), rw(n.R)
		return &c
	case *sql.Is:
		c := *n
		c.X = rw(n.X)
		return &c
	case *sql.Between:
		c := *n
		c.X, c.Lo, c.Hi = rw(n.X), rw(n.Lo), rw(n.Hi)
		return &c
	case *sql.InList:
		c := *n
		c.X = rw(n.X)
		c.List = make([]sql.Expr, len(n.List))
		for i, x := range n.List {
			c.List[i] = rw(x)
		}
		return &c
	case *sql.InQuery:
		c := *n
		c.X = rw(n.X)
		return &c
	case *sql.Like:
		c := *n
		c.X, c.Pattern = rw(n.X), rw(n.Pattern)
		return &c
	case *sql.Case:
		c := *n
		c.Operand, c.Else = rw(n.Operand), rw(n.Else)
		c.Whens = make([]*sql.When, len(n.Whens))
		for i, w := range n.Whens {
			c.Whens[i] = &sql.When{Start: w.Start, Cond: rw(w.Cond), Result: rw(w.Result)}
		}
		return &c
	case *sql.Cast:
		c := *n
		c.X = rw(n.X)
		return &c
	case *sql.Call:
		c := *n
		c.Filter = rw(n.Filter)
		c.Args = make([]sql.Expr, len(n.Args))
		for i, x := range n.Args {
			c.Args[i] = rw(x)
		}
		return &c
	case *sql.NamedArg:
		c := *n
		c.Value = rw(n.Value)
		return &c
	case *sql.FieldAccess:
		c := *n
		c.X = rw(n.X)
		return &c
	case *sql.Index:
		c := *n
		c.X, c.Index = rw(n.X), rw(n.Index)
		return &c
	}
	return e
}

// visitExprs calls f on e and every expression below it, outer first,
// without entering subqueries; f returns false to skip a node's children.
func visitExprs(e sql.Expr, f func(sql.Expr) bool) {
	if e == nil {
		return
	}
	rewrite(e, func(x sql.Expr) sql.Expr {
		if !f(x) {
			return x // stop descending: a replacement by itself
		}
		return nil
	})
}
