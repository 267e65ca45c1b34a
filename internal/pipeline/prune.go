package pipeline

import (
	"github.com/sluice-dev/sluice/internal/expr"
	"github.com/sluice-dev/sluice/internal/table"
)

// selection returns what a plan needs of the table its leftmost scan reads,
// per column of the scan's schema (nil: unused), so that only those columns
// and struct fields are read from Parquet (projection pushdown). Every
// column of root's output is needed, and the expectations' columns: on the
// output, or (onInput) on pre's output.
func selection(root node, exp []boundExpectation, pre node) []*table.Selection {
	need := all(len(root.schema().Fields()))
	for n := root; ; {
		if n == pre {
			for _, e := range exp {
				if e.onInput {
					addPaths(need, expr.Paths(e.cond))
				}
			}
		}
		switch x := n.(type) {
		case *scanNode:
			return need
		case *filterNode:
			addPaths(need, expr.Paths(x.cond))
			n = x.in
		case *projectNode:
			in := make([]*table.Selection, len(x.in.schema().Fields()))
			for i, e := range x.exprs {
				if need[i] == nil {
					continue
				}
				if p, ok := expr.AsPath(e); ok {
					in[p.Col] = in[p.Col].Merge(nest(p.Fields, need[i]))
					continue
				}
				addPaths(in, expr.Paths(e))
			}
			need, n = in, x.in
		case *joinNode:
			nl := len(x.left.schema().Fields())
			in := make([]*table.Selection, nl)
			copy(in, need)
			for _, k := range x.lkeys {
				addPaths(in, expr.Paths(k))
			}
			if x.residual != nil {
				for _, p := range expr.Paths(x.residual) {
					if p.Col < nl {
						in[p.Col] = in[p.Col].Add(p.Fields)
					}
				}
			}
			need, n = in, x.left
		case *aggNode:
			in := make([]*table.Selection, len(x.in.schema().Fields()))
			for _, e := range x.keys {
				addPaths(in, expr.Paths(e))
			}
			for _, e := range append(append([]expr.Expr{x.ts}, x.args...), x.filters...) {
				if e != nil {
					addPaths(in, expr.Paths(e))
				}
			}
			need, n = in, x.in
		default:
			return all(len(leftmost(n).sc.Fields()))
		}
	}
}

func all(n int) []*table.Selection {
	out := make([]*table.Selection, n)
	for i := range out {
		out[i] = out[i].Add(nil)
	}
	return out
}

func addPaths(sel []*table.Selection, paths []expr.Path) {
	for _, p := range paths {
		if p.Col >= 0 && p.Col < len(sel) {
			sel[p.Col] = sel[p.Col].Add(p.Fields)
		}
	}
}

// nest returns the selection of sub at the struct path fields.
func nest(fields []int, sub *table.Selection) *table.Selection {
	if len(fields) == 0 {
		return sub
	}
	return &table.Selection{Fields: map[int]*table.Selection{fields[0]: nest(fields[1:], sub)}}
}
