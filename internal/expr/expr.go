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
// error. [IsAggregate] tells the planner which names those are.
//
// # Types
//
// Operators and functions compute in a few canonical Arrow types, and a read
// of a column or struct field widens what it finds to them:
//
//	SQL type                      Arrow type                     read from
//	BOOLEAN                       bool
//	BIGINT (TINYINT SMALLINT INT) int64                          int8..int32, uint8..uint64
//	DOUBLE (FLOAT, DECIMAL)       float64                        float16, float32, decimal
//	STRING                        string                         large_string, string_view
//	BINARY                        binary                         large_binary, binary_view, fixed_size_binary
//	TIMESTAMP (TIMESTAMP_NTZ)     timestamp[us, UTC]             timestamp of any unit and zone
//	DATE                          date32                         date64
//	INTERVAL                      duration[us]; month_day_nano   duration of any unit
//	ARRAY, MAP, STRUCT            list, map, struct
//
// DECIMAL maps to float64: there is no decimal arithmetic. CAST(x AS INT)
// (and the other narrow types, and from_json schemas) produce the narrow
// Arrow type, which operators widen again. The session time zone is UTC.
// Integer literals are BIGINT; decimal and exponent literals DOUBLE; NULL
// takes the type its context needs. Spark's non-ANSI semantics apply:
// integer arithmetic wraps, / is always DOUBLE, division and remainder by
// zero are NULL, and a CAST of text that does not convert is NULL.
//
// # Functions
//
// Conditional: coalesce nvl ifnull nvl2 if iff nullif greatest least.
// Strings: concat concat_ws lower lcase upper ucase length char_length
// character_length len trim ltrim rtrim substring substr replace split
// reverse instr startswith endswith contains lpad rpad regexp_extract
// regexp_replace. Numbers: abs round floor ceil ceiling sqrt pow power exp
// ln log10 log2 sign signum rand random. Dates and times:
// current_timestamp now localtimestamp current_date curdate to_timestamp
// to_date date_trunc date_format year quarter month day dayofmonth
// dayofyear hour minute second dayofweek weekday weekofyear unix_timestamp
// from_unixtime timestamp_seconds timestamp_millis timestamp_micros
// unix_seconds unix_millis unix_micros date_add dateadd date_sub datediff.
// JSON: from_json to_json get_json_object json_extract. Nested: array size
// cardinality array_contains element_at struct named_struct. Hashes: md5
// sha1 sha sha2 hash. docs/sql-functions.md describes each with an example
// (a test runs them all).
//
// # Evaluation
//
// Eval is vectorised: each operator makes one pass over whole arrays and
// writes into buffers it allocates from Ctx.Mem; comparisons and arithmetic
// of a column with a constant, and AND/OR/NOT/IS, work on raw value slices
// and bitmaps, without per-row calls or allocations. Functions without a
// vector kernel run a Go loop per row into preallocated buffers. An Expr is
// immutable after Bind and safe for concurrent Eval calls.
//
// # Files
//
// bind.go and scope.go resolve names and types; nodes.go, eval_*.go,
// cast.go and like.go are the operators; funcs*.go the functions;
// time.go timestamp parsing and formatting, Spark datetime patterns and
// intervals; filter.go [Filter]; format.go [FormatValue].
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
