package pipeline

import (
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/sluice-dev/sluice/internal/expr"
	"github.com/sluice-dev/sluice/internal/sql"
)

// Expectation is a data-quality constraint of a dataset:
// CONSTRAINT name EXPECT (cond) [ON VIOLATION {DROP ROW | FAIL UPDATE}].
// A row passes when cond is true; false and NULL fail it.
type Expectation struct {
	Name   string
	Action sql.Violation // warn (keep and count), drop the row, or fail the update
	ast    *sql.Expectation
}

// Condition is the expectation's condition as SQL.
func (e *Expectation) Condition() string { return sql.Format(e.ast.Cond) }

// boundExpectation is an expectation bound on the dataset's output rows, or
// (onInput) on the rows that its final projection reads.
type boundExpectation struct {
	*Expectation
	cond    expr.Expr
	onInput bool
}

// bindExpectations binds d's expectations on its output, or where a name is
// not an output column, on the input of the final projection: DLT users
// write EXPECT (value.amount > 0) over a query that selects value.amount.
func (p *planner) bindExpectations(d *Dataset, r *rel) error {
	for _, e := range d.Expectations {
		out := expr.NewScope(d.Schema, "")
		b, err := expr.Bind(e.ast.Cond, out)
		onInput := false
		if err != nil && r.pre != nil && r.aggs == 0 {
			if b2, err2 := expr.Bind(e.ast.Cond, r.pre.scope); err2 == nil {
				b, err, onInput = b2, nil, true
			}
		}
		if err != nil {
			return err
		}
		if b.Type().ID() != arrow.BOOL {
			return p.errorf(e.ast.Cond.Pos(), "expectation %s needs a boolean condition, but %s is %s", e.Name, sql.Format(e.ast.Cond), b.Type())
		}
		d.plan.exp = append(d.plan.exp, boundExpectation{Expectation: e, cond: b, onInput: onInput})
		if onInput {
			d.plan.pre = r.pre.n
		}
	}
	d.plan.sel = selection(d.plan.root, d.plan.exp, d.plan.pre)
	return nil
}

// ExpectationError is the error of an update stopped by a FAIL UPDATE
// expectation.
type ExpectationError struct {
	Dataset     string
	Expectation string
	Condition   string
	Row         string // a failing row, as JSON
}

func (e *ExpectationError) Error() string {
	return fmt.Sprintf("expectation %s (%s) of %s failed on row %s; the update stopped and nothing of this batch was committed (ON VIOLATION FAIL UPDATE)",
		e.Expectation, e.Condition, e.Dataset, e.Row)
}
