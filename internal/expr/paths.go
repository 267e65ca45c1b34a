package expr

// Path is an input column, or a field nested in a struct column, that an
// expression reads: column Col, then the struct fields Fields (by index),
// outermost first. Empty Fields means the whole column.
type Path struct {
	Col    int
	Fields []int
}

// Paths returns what e reads of its input, for reading no more than that
// (projection pushdown). A struct field read through a chain of field
// accesses (value.order.id) is one path; any other use of a column reads
// all of it. Paths may repeat.
func Paths(e Expr) []Path {
	var out []Path
	var visit func(x Expr)
	visit = func(x Expr) {
		if p, ok := fieldPath(x); ok {
			out = append(out, p)
			return
		}
		if n, ok := x.(node); ok {
			for _, c := range n.children() {
				visit(c)
			}
		}
	}
	visit(e)
	return out
}

// AsPath reports whether e is exactly a column or a chain of field accesses
// on one, and which.
func AsPath(e Expr) (Path, bool) { return fieldPath(e) }

func fieldPath(e Expr) (Path, bool) {
	switch x := e.(type) {
	case *colExpr:
		return Path{Col: x.idx}, true
	case *fieldExpr:
		p, ok := fieldPath(x.x)
		if !ok {
			return p, false
		}
		p.Fields = append(p.Fields, x.i)
		return p, true
	}
	return Path{}, false
}
