// Package expr binds scalar SQL expressions (the AST of internal/sql) to a
// scope of typed columns and evaluates them a record batch at a time over
// Arrow arrays.
//
//	sc := expr.NewScope(batch.Schema(), "o")      // columns of one input, qualified "o"
//	e, err := expr.Bind(astExpr, sc)               // *expr.Error with line and column on failure
//	out, err := e.Eval(&expr.Ctx{Mem: mem, Now: now}, batch)
//	defer out.Release()
//
// Binding resolves names (col, qualifier.col, struct.field, qualifier.struct.field),
// checks types, applies implicit casts (int64 → float64, string literal → timestamp
// when compared with a timestamp, ...) and folds constants. Evaluation is
// vectorised: one pass per operator over whole arrays, with null bitmaps
// combined word by word where possible.
//
// Aggregate functions (count, sum, ...) and window(...)/session_window(...)
// are not scalar: the planner (internal/pipeline) rewrites them to column
// references before binding, and Bind rejects them elsewhere with a clear
// error.
package expr

import (
	"fmt"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/sluice-dev/sluice/internal/sql"
)

// Expr is a bound, typed scalar expression.
type Expr interface {
	// Type is the Arrow type of the result.
	Type() arrow.DataType
	// Eval computes the expression for every row of in. The result has
	// in.NumRows() rows and the caller must Release it. Errors are runtime
	// failures that the query cannot recover from (a FAIL-style cast of bad
	// text is not one: a failed CAST yields null, as Spark's does with ANSI
	// mode off).
	Eval(ctx *Ctx, in arrow.RecordBatch) (arrow.Array, error)
	// String is the expression as SQL, for plans and error messages.
	String() string
}

// Ctx is what evaluation may depend on besides the input batch.
type Ctx struct {
	// Mem allocates results; nil means memory.DefaultAllocator.
	Mem memory.Allocator
	// Now is current_timestamp(): fixed for a whole micro-batch, as in Spark.
	Now time.Time
}

// Column is a column visible to an expression.
type Column struct {
	// Qualifier is the table alias (or the last part of the table name)
	// the column can be qualified with; "" for none.
	Qualifier string
	Name      string
	Type      arrow.DataType
	// Index is the column's position in the batches passed to Eval.
	Index int
}

// Scope is the set of columns an expression may reference.
type Scope struct {
	Columns []Column
}

// Error is a binding error: an unknown column, a type mismatch, a wrong
// number of arguments. Pos is where in the SQL text the problem is.
type Error struct {
	Pos sql.Pos
	Msg string
}

// Error returns the message prefixed with the line and column, as
// sql.ParseError does:
//
//	line 4, column 12: unknown column "amout" (did you mean "amount"?)
func (e *Error) Error() string {
	return fmt.Sprintf("line %d, column %d: %s", e.Pos.Line, e.Pos.Col, e.Msg)
}
