package sql

// Inspect traverses the tree rooted at n depth-first, children in source
// order: it calls f(n); if that returns true, it inspects each non-nil child
// of n and then calls f(nil). Identifiers and names are children too.
//
//	// the tables a query reads
//	sql.Inspect(q, func(n sql.Node) bool {
//		if t, ok := n.(*sql.TableRef); ok {
//			tables = append(tables, t.Name)
//		}
//		return true
//	})
func Inspect(n Node, f func(Node) bool) {
	if n == nil || !f(n) {
		return
	}
	switch n := n.(type) {
	case *Ident, *NumberLit, *StringLit, *BoolLit, *NullLit, *TypedLit, *IntervalPart, *PrimitiveType, *DecimalType:
		// leaves
	case *ObjectName:
		identList(n.Parts, f)
	case *Script:
		for _, s := range n.Stmts {
			Inspect(s, f)
		}
	case *CreateStmt:
		Inspect(n.Name, f)
		for _, e := range n.Elements {
			Inspect(e, f)
		}
		inspectOpt(n.Comment, f)
		for _, prop := range n.Properties {
			Inspect(prop, f)
		}
		Inspect(n.Query, f)
	case *QueryStmt:
		Inspect(n.Query, f)
	case *Property:
		Inspect(n.Value, f)
	case *ColumnDef:
		Inspect(n.Name, f)
		Inspect(n.Type, f)
		inspectOpt(n.Comment, f)
	case *Expectation:
		Inspect(n.Name, f)
		Inspect(n.Cond, f)
	case *PrimaryKey:
		inspectOpt(n.Name, f)
		for _, c := range n.Columns {
			Inspect(c, f)
		}
	case *KeyColumn:
		Inspect(n.Name, f)
	case *Select:
		for _, it := range n.Items {
			Inspect(it, f)
		}
		for _, te := range n.From {
			Inspect(te, f)
		}
		Inspect(n.Where, f)
		exprList(n.GroupBy, f)
		Inspect(n.Having, f)
		orderTail(n.OrderBy, n.Limit, n.Offset, f)
	case *Union:
		Inspect(n.Left, f)
		Inspect(n.Right, f)
		orderTail(n.OrderBy, n.Limit, n.Offset, f)
	case *SelectItem:
		Inspect(n.Expr, f)
		inspectOpt(n.Alias, f)
	case *OrderItem:
		Inspect(n.Expr, f)
	case *TableRef:
		Inspect(n.Name, f)
		inspectOpt(n.Watermark, f)
		inspectOpt(n.Alias, f)
	case *TableFunc:
		Inspect(n.Func, f)
		exprList(n.Args, f)
		inspectOpt(n.Watermark, f)
		inspectOpt(n.Alias, f)
	case *SubqueryTable:
		Inspect(n.Query, f)
		inspectOpt(n.Watermark, f)
		inspectOpt(n.Alias, f)
	case *Watermark:
		Inspect(n.Expr, f)
		inspectOpt(n.Alias, f)
		inspectOpt(n.Delay, f)
	case *Join:
		Inspect(n.Left, f)
		Inspect(n.Right, f)
		Inspect(n.On, f)
		identList(n.Using, f)
	case *ColumnRef:
		identList(n.Parts, f)
	case *Star:
		identList(n.Qualifier, f)
	case *IntervalLit:
		for _, part := range n.Parts {
			Inspect(part, f)
		}
	case *Unary:
		Inspect(n.X, f)
	case *Binary:
		Inspect(n.L, f)
		Inspect(n.R, f)
	case *Is:
		Inspect(n.X, f)
	case *Between:
		Inspect(n.X, f)
		Inspect(n.Lo, f)
		Inspect(n.Hi, f)
	case *InList:
		Inspect(n.X, f)
		exprList(n.List, f)
	case *InQuery:
		Inspect(n.X, f)
		Inspect(n.Query, f)
	case *Like:
		Inspect(n.X, f)
		Inspect(n.Pattern, f)
	case *Case:
		Inspect(n.Operand, f)
		for _, w := range n.Whens {
			Inspect(w, f)
		}
		Inspect(n.Else, f)
	case *When:
		Inspect(n.Cond, f)
		Inspect(n.Result, f)
	case *Cast:
		Inspect(n.X, f)
		Inspect(n.Type, f)
	case *Call:
		Inspect(n.Func, f)
		exprList(n.Args, f)
		Inspect(n.Filter, f)
	case *NamedArg:
		Inspect(n.Name, f)
		Inspect(n.Value, f)
	case *FieldAccess:
		Inspect(n.X, f)
		Inspect(n.Field, f)
	case *Index:
		Inspect(n.X, f)
		Inspect(n.Index, f)
	case *Subquery:
		Inspect(n.Query, f)
	case *Exists:
		Inspect(n.Query, f)
	case *ArrayType:
		Inspect(n.Elem, f)
	case *MapType:
		Inspect(n.Key, f)
		Inspect(n.Value, f)
	case *StructType:
		for _, fl := range n.Fields {
			Inspect(fl, f)
		}
	case *StructField:
		Inspect(n.Name, f)
		Inspect(n.Type, f)
	}
	f(nil)
}

// inspectOpt inspects an optional child: a nil pointer inside the Node
// interface is not a node.
func inspectOpt[T Node](n T, f func(Node) bool) {
	var zero T
	if any(n) != any(zero) {
		Inspect(n, f)
	}
}

func identList(ids []*Ident, f func(Node) bool) {
	for _, id := range ids {
		Inspect(id, f)
	}
}

func exprList(list []Expr, f func(Node) bool) {
	for _, e := range list {
		Inspect(e, f)
	}
}

func orderTail(order []*OrderItem, limit, offset Expr, f func(Node) bool) {
	for _, o := range order {
		Inspect(o, f)
	}
	Inspect(limit, f)
	Inspect(offset, f)
}
