package sql

// The syntax tree. Every node records where it starts (Start, returned by
// Pos); binary and postfix operators also record the operator's position
// (OpPos). Parenthesised expressions and queries leave no node of their own:
// the tree is the structure, and Format puts back the parentheses it needs.
// Optional parts are nil (pointers, interfaces) or empty (slices) when absent.

// Node is any node of the tree.
type Node interface {
	Pos() Pos
}

// Statement is a top-level statement: *CreateStmt or *QueryStmt.
type Statement interface {
	Node
	stmtNode()
}

// TableElement is an entry of CREATE's parenthesised list: *ColumnDef,
// *Expectation or *PrimaryKey.
type TableElement interface {
	Node
	tableElementNode()
}

// Query is a query: *Select or *Union.
type Query interface {
	Node
	queryNode()
}

// TableExpr is an entry of a FROM clause: *TableRef, *TableFunc,
// *SubqueryTable or *Join.
type TableExpr interface {
	Node
	tableExprNode()
}

// Expr is an expression.
type Expr interface {
	Node
	exprNode()
}

// DataType is a type in CAST or a column definition: *PrimitiveType,
// *DecimalType, *ArrayType, *MapType or *StructType.
type DataType interface {
	Node
	dataTypeNode()
}

// ---- names

// Ident is one identifier: a bare word or a `back quoted` name (the quotes
// are not kept; Name is as written, keeping its case).
type Ident struct {
	Start Pos
	Name  string
}

// ObjectName is a dotted name of a table, view or function: catalog.schema.name,
// schema.name or name.
type ObjectName struct {
	Start Pos
	Parts []*Ident // at least one
}

// ---- statements

// Script is a file of statements separated by semicolons.
type Script struct {
	Start Pos
	Stmts []Statement
}

// DatasetKind is what a CREATE statement defines.
type DatasetKind uint8

const (
	StreamingTable   DatasetKind = iota + 1 // CREATE STREAMING TABLE (legacy: STREAMING LIVE TABLE)
	MaterializedView                        // CREATE MATERIALIZED VIEW (legacy: LIVE TABLE)
	TemporaryView                           // CREATE TEMPORARY VIEW (legacy: TEMPORARY LIVE VIEW)
)

// CreateStmt defines a dataset of a pipeline:
//
//	CREATE [OR REFRESH] {STREAMING TABLE | MATERIALIZED VIEW | TEMPORARY VIEW} name
//	  [(element, ...)] [COMMENT 'text'] [TBLPROPERTIES ('key' = value, ...)]
//	  AS query
type CreateStmt struct {
	Start      Pos
	OrRefresh  bool
	Kind       DatasetKind
	Name       *ObjectName
	Elements   []TableElement // columns, expectations, primary key
	Comment    *StringLit
	Properties []*Property
	Query      Query
}

// QueryStmt is a query on its own.
type QueryStmt struct {
	Start Pos
	Query Query
}

// Property is one entry of TBLPROPERTIES. The key may be written as a
// string ('pipelines.reset.allowed') or as dotted words.
type Property struct {
	Start Pos
	Key   string
	Value Expr // a literal: *StringLit, *NumberLit, *BoolLit or *Unary minus of a number
}

// ColumnDef declares a column: name type [NOT NULL] [COMMENT 'text'].
type ColumnDef struct {
	Start   Pos
	Name    *Ident
	Type    DataType
	NotNull bool
	Comment *StringLit
}

// Violation is what an expectation does with a row that fails it.
type Violation uint8

const (
	ViolationWarn       Violation = iota // no ON VIOLATION clause: keep the row and count it
	ViolationDropRow                     // ON VIOLATION DROP ROW
	ViolationFailUpdate                  // ON VIOLATION FAIL UPDATE
)

// Expectation is a data-quality constraint:
// CONSTRAINT name EXPECT (cond) [ON VIOLATION {DROP ROW | FAIL UPDATE}].
type Expectation struct {
	Start       Pos
	Name        *Ident
	Cond        Expr
	OnViolation Violation
}

// PrimaryKey declares a feature table's keys:
// [CONSTRAINT name] PRIMARY KEY (col, ..., ts_col TIMESERIES).
type PrimaryKey struct {
	Start   Pos
	Name    *Ident // nil without CONSTRAINT name
	Columns []*KeyColumn
}

// KeyColumn is one column of a primary key; TimeSeries marks the timestamp key.
type KeyColumn struct {
	Start      Pos
	Name       *Ident
	TimeSeries bool
}

// ---- queries

// Select is one SELECT block. ORDER BY, LIMIT and OFFSET written after a
// set operation belong to the *Union instead.
type Select struct {
	Start    Pos
	Distinct bool
	Items    []*SelectItem // at least one
	From     []TableExpr   // FROM a, b: several entries; empty without FROM
	Where    Expr
	GroupBy  []Expr
	Having   Expr
	OrderBy  []*OrderItem
	Limit    Expr
	Offset   Expr
}

// Union is left UNION [ALL] right; chains associate to the left.
type Union struct {
	Start   Pos // Left's
	OpPos   Pos // of UNION
	All     bool
	Left    Query
	Right   Query
	OrderBy []*OrderItem
	Limit   Expr
	Offset  Expr
}

// SelectItem is an entry of the select list: an expression with an
// optional alias, or a *Star (which has no alias).
type SelectItem struct {
	Start Pos
	Expr  Expr
	Alias *Ident
}

// NullsOrder is where ORDER BY puts NULLs.
type NullsOrder uint8

const (
	NullsDefault NullsOrder = iota
	NullsFirst
	NullsLast
)

// OrderItem is an entry of ORDER BY: expr [ASC | DESC] [NULLS {FIRST | LAST}].
type OrderItem struct {
	Start Pos
	Expr  Expr
	Desc  bool
	Nulls NullsOrder
}

// ---- FROM

// TableRef names a table or view: [STREAM] name [WATERMARK ...] [[AS] alias].
// Stream is set by STREAM(name) and STREAM name: read the table as a stream
// of appended rows.
type TableRef struct {
	Start     Pos
	Stream    bool
	Name      *ObjectName
	Watermark *Watermark
	Alias     *Ident
}

// TableFunc is a table-valued function: [STREAM] name(args) [WATERMARK ...] [[AS] alias].
type TableFunc struct {
	Start     Pos
	Stream    bool
	Func      *ObjectName
	Args      []Expr // may include *NamedArg
	Watermark *Watermark
	Alias     *Ident
}

// SubqueryTable is a query in FROM: (query) [WATERMARK ...] [[AS] alias].
type SubqueryTable struct {
	Start     Pos
	Query     Query
	Watermark *Watermark
	Alias     *Ident
}

// Watermark is WATERMARK expr [AS alias] DELAY OF interval: the event-time
// column (or expression) of a source and how late its rows may arrive.
type Watermark struct {
	Start Pos
	Expr  Expr
	Alias *Ident
	Delay *IntervalLit
}

// JoinType is the kind of a join.
type JoinType uint8

const (
	InnerJoin JoinType = iota // JOIN, INNER JOIN
	LeftJoin                  // LEFT [OUTER] JOIN
	RightJoin                 // RIGHT [OUTER] JOIN
	FullJoin                  // FULL [OUTER] JOIN
	CrossJoin                 // CROSS JOIN
	SemiJoin                  // LEFT SEMI JOIN
	AntiJoin                  // LEFT ANTI JOIN
)

// Join is left JOIN right {ON cond | USING (cols)}; chains associate to
// the left, so Right is never a *Join. A CROSS JOIN has neither On nor
// Using; every other join has exactly one.
type Join struct {
	Start Pos // Left's
	OpPos Pos // of the join keywords
	Type  JoinType
	Left  TableExpr
	Right TableExpr
	On    Expr
	Using []*Ident
}

// ---- expressions

// ColumnRef is a dotted name in an expression: col, t.col, value.order_id,
// struct.field.sub. Which parts name a table and which a field is for the
// binder to decide.
type ColumnRef struct {
	Start Pos
	Parts []*Ident // at least one
}

// Star is * or qualifier.* in a select list (and nowhere else).
type Star struct {
	Start     Pos
	Qualifier []*Ident // empty for a bare *
}

// NumberKind is the lexical form of a number.
type NumberKind uint8

const (
	IntNumber     NumberKind = iota // 42
	DecimalNumber                   // 4.2, .5
	FloatNumber                     // 4.2e1 (has an exponent)
)

// NumberLit is an unsigned number as written (a minus sign is a *Unary).
type NumberLit struct {
	Start Pos
	Raw   string
	Kind  NumberKind
}

// StringLit is a string literal; Value has its quotes removed and doubled
// quotes undone.
type StringLit struct {
	Start Pos
	Value string
}

// BoolLit is TRUE or FALSE.
type BoolLit struct {
	Start Pos
	Value bool
}

// NullLit is NULL.
type NullLit struct {
	Start Pos
}

// TypedLitKind is the type of a *TypedLit.
type TypedLitKind uint8

const (
	TimestampLit TypedLitKind = iota // TIMESTAMP '...'
	DateLit                          // DATE '...'
)

// TypedLit is TIMESTAMP 'text' or DATE 'text'; the text is not checked here.
type TypedLit struct {
	Start Pos
	Kind  TypedLitKind
	Value string
}

// IntervalUnit is a unit of an interval literal.
type IntervalUnit uint8

const (
	UnitNone IntervalUnit = iota // INTERVAL '1 hour': the unit is inside the string
	UnitYear
	UnitMonth
	UnitWeek
	UnitDay
	UnitHour
	UnitMinute
	UnitSecond
	UnitMillisecond
	UnitMicrosecond
)

// IntervalLit is INTERVAL followed by one or more value-unit parts:
// INTERVAL 10 MINUTES, INTERVAL '10' MINUTE, INTERVAL 1 HOUR 30 MINUTES,
// or a single string that holds the units: INTERVAL '1 hour'.
type IntervalLit struct {
	Start Pos
	Parts []*IntervalPart // at least one
}

// IntervalPart is one value and unit of an interval. Value is the number
// as written, or the contents of the string when Quoted; Neg records a
// leading minus sign. Unit is UnitNone only for a lone quoted part.
type IntervalPart struct {
	Start  Pos
	Neg    bool
	Value  string
	Quoted bool
	Unit   IntervalUnit
}

// UnaryOp is the operator of a *Unary.
type UnaryOp uint8

const (
	OpNot  UnaryOp = iota // NOT x
	OpNeg                 // -x
	OpPlus                // +x
)

// Unary is NOT x, -x or +x.
type Unary struct {
	Start Pos
	Op    UnaryOp
	X     Expr
}

// BinaryOp is the operator of a *Binary.
type BinaryOp uint8

const (
	OpOr         BinaryOp = iota // OR
	OpAnd                        // AND
	OpEq                         // = or ==
	OpNe                         // != or <>
	OpLt                         // <
	OpLe                         // <=
	OpGt                         // >
	OpGe                         // >=
	OpNullSafeEq                 // <=>
	OpConcat                     // ||
	OpAdd                        // +
	OpSub                        // -
	OpMul                        // *
	OpDiv                        // /
	OpMod                        // %
)

// Binary is L op R.
type Binary struct {
	Start Pos // L's
	OpPos Pos
	Op    BinaryOp
	L, R  Expr
}

// IsWhat is what IS tests for.
type IsWhat uint8

const (
	IsNull  IsWhat = iota // IS [NOT] NULL
	IsTrue                // IS [NOT] TRUE
	IsFalse               // IS [NOT] FALSE
)

// Is is X IS [NOT] {NULL | TRUE | FALSE}.
type Is struct {
	Start Pos // X's
	OpPos Pos
	X     Expr
	Not   bool
	What  IsWhat
}

// Between is X [NOT] BETWEEN Lo AND Hi.
type Between struct {
	Start  Pos // X's
	OpPos  Pos
	X      Expr
	Not    bool
	Lo, Hi Expr
}

// InList is X [NOT] IN (e1, e2, ...).
type InList struct {
	Start Pos // X's
	OpPos Pos
	X     Expr
	Not   bool
	List  []Expr // at least one
}

// InQuery is X [NOT] IN (query).
type InQuery struct {
	Start Pos // X's
	OpPos Pos
	X     Expr
	Not   bool
	Query Query
}

// LikeOp is the operator of a *Like.
type LikeOp uint8

const (
	OpLike  LikeOp = iota // LIKE
	OpILike               // ILIKE: case-insensitive LIKE
	OpRLike               // RLIKE or REGEXP: a regular expression match
)

// Like is X [NOT] {LIKE | ILIKE | RLIKE} Pattern.
type Like struct {
	Start   Pos // X's
	OpPos   Pos
	Op      LikeOp
	X       Expr
	Not     bool
	Pattern Expr
}

// Case is CASE [Operand] WHEN ... THEN ... [ELSE Else] END. With an
// operand, each When.Cond is a value compared with it.
type Case struct {
	Start   Pos
	Operand Expr
	Whens   []*When // at least one
	Else    Expr
}

// When is one WHEN Cond THEN Result of a *Case.
type When struct {
	Start  Pos
	Cond   Expr
	Result Expr
}

// Cast is CAST(X AS Type), TRY_CAST(X AS Type) (Try) or X::Type.
type Cast struct {
	Start Pos
	Try   bool
	X     Expr
	Type  DataType
}

// Call is a function call: name([DISTINCT] args) or name(*), with an
// optional aggregate filter: FILTER (WHERE cond).
type Call struct {
	Start    Pos
	Func     *ObjectName
	Distinct bool
	Star     bool   // count(*): Args is empty
	Args     []Expr // may include *NamedArg
	Filter   Expr
}

// NamedArg is name => value in a function's arguments.
type NamedArg struct {
	Start Pos
	Name  *Ident
	Value Expr
}

// FieldAccess is X.Field where X is not a plain name (those are a
// *ColumnRef): window(ts, '5 minutes').start, arr[0].x.
type FieldAccess struct {
	Start Pos // X's
	OpPos Pos // of the dot
	X     Expr
	Field *Ident
}

// Index is X[Index]: an array element or a map value.
type Index struct {
	Start Pos // X's
	OpPos Pos // of [
	X     Expr
	Index Expr
}

// Subquery is a scalar subquery: (query).
type Subquery struct {
	Start Pos
	Query Query
}

// Exists is EXISTS (query).
type Exists struct {
	Start Pos
	Query Query
}

// ---- types

// TypeKind is a type without parameters.
type TypeKind uint8

const (
	TypeString       TypeKind = iota // STRING
	TypeBinary                       // BINARY
	TypeBoolean                      // BOOLEAN, BOOL
	TypeTinyInt                      // TINYINT, BYTE
	TypeSmallInt                     // SMALLINT, SHORT
	TypeInt                          // INT, INTEGER
	TypeBigInt                       // BIGINT, LONG
	TypeFloat                        // FLOAT, REAL
	TypeDouble                       // DOUBLE
	TypeDate                         // DATE
	TypeTimestamp                    // TIMESTAMP, TIMESTAMP_LTZ
	TypeTimestampNTZ                 // TIMESTAMP_NTZ
)

// PrimitiveType is a type without parameters.
type PrimitiveType struct {
	Start Pos
	Kind  TypeKind
}

// DecimalType is DECIMAL(Precision, Scale); DECIMAL alone is DECIMAL(10, 0)
// and DECIMAL(p) is DECIMAL(p, 0), as in Spark.
type DecimalType struct {
	Start     Pos
	Precision int
	Scale     int
}

// ArrayType is ARRAY<Elem>.
type ArrayType struct {
	Start Pos
	Elem  DataType
}

// MapType is MAP<Key, Value>.
type MapType struct {
	Start Pos
	Key   DataType
	Value DataType
}

// StructType is STRUCT<name: type, ...>.
type StructType struct {
	Start  Pos
	Fields []*StructField
}

// StructField is one field of a *StructType.
type StructField struct {
	Start Pos
	Name  *Ident
	Type  DataType
}

// ---- Pos and marker methods

func (n *Ident) Pos() Pos         { return n.Start }
func (n *ObjectName) Pos() Pos    { return n.Start }
func (n *Script) Pos() Pos        { return n.Start }
func (n *CreateStmt) Pos() Pos    { return n.Start }
func (n *QueryStmt) Pos() Pos     { return n.Start }
func (n *Property) Pos() Pos      { return n.Start }
func (n *ColumnDef) Pos() Pos     { return n.Start }
func (n *Expectation) Pos() Pos   { return n.Start }
func (n *PrimaryKey) Pos() Pos    { return n.Start }
func (n *KeyColumn) Pos() Pos     { return n.Start }
func (n *Select) Pos() Pos        { return n.Start }
func (n *Union) Pos() Pos         { return n.Start }
func (n *SelectItem) Pos() Pos    { return n.Start }
func (n *OrderItem) Pos() Pos     { return n.Start }
func (n *TableRef) Pos() Pos      { return n.Start }
func (n *TableFunc) Pos() Pos     { return n.Start }
func (n *SubqueryTable) Pos() Pos { return n.Start }
func (n *Watermark) Pos() Pos     { return n.Start }
func (n *Join) Pos() Pos          { return n.Start }
func (n *ColumnRef) Pos() Pos     { return n.Start }
func (n *Star) Pos() Pos          { return n.Start }
func (n *NumberLit) Pos() Pos     { return n.Start }
func (n *StringLit) Pos() Pos     { return n.Start }
func (n *BoolLit) Pos() Pos       { return n.Start }
func (n *NullLit) Pos() Pos       { return n.Start }
func (n *TypedLit) Pos() Pos      { return n.Start }
func (n *IntervalLit) Pos() Pos   { return n.Start }
func (n *IntervalPart) Pos() Pos  { return n.Start }
func (n *Unary) Pos() Pos         { return n.Start }
func (n *Binary) Pos() Pos        { return n.Start }
func (n *Is) Pos() Pos            { return n.Start }
func (n *Between) Pos() Pos       { return n.Start }
func (n *InList) Pos() Pos        { return n.Start }
func (n *InQuery) Pos() Pos       { return n.Start }
func (n *Like) Pos() Pos          { return n.Start }
func (n *Case) Pos() Pos          { return n.Start }
func (n *When) Pos() Pos          { return n.Start }
func (n *Cast) Pos() Pos          { return n.Start }
func (n *Call) Pos() Pos          { return n.Start }
func (n *NamedArg) Pos() Pos      { return n.Start }
func (n *FieldAccess) Pos() Pos   { return n.Start }
func (n *Index) Pos() Pos         { return n.Start }
func (n *Subquery) Pos() Pos      { return n.Start }
func (n *Exists) Pos() Pos        { return n.Start }
func (n *PrimitiveType) Pos() Pos { return n.Start }
func (n *DecimalType) Pos() Pos   { return n.Start }
func (n *ArrayType) Pos() Pos     { return n.Start }
func (n *MapType) Pos() Pos       { return n.Start }
func (n *StructType) Pos() Pos    { return n.Start }
func (n *StructField) Pos() Pos   { return n.Start }

func (*CreateStmt) stmtNode() {}
func (*QueryStmt) stmtNode()  {}

func (*ColumnDef) tableElementNode()   {}
func (*Expectation) tableElementNode() {}
func (*PrimaryKey) tableElementNode()  {}

func (*Select) queryNode() {}
func (*Union) queryNode()  {}

func (*TableRef) tableExprNode()      {}
func (*TableFunc) tableExprNode()     {}
func (*SubqueryTable) tableExprNode() {}
func (*Join) tableExprNode()          {}

func (*ColumnRef) exprNode()   {}
func (*Star) exprNode()        {}
func (*NumberLit) exprNode()   {}
func (*StringLit) exprNode()   {}
func (*BoolLit) exprNode()     {}
func (*NullLit) exprNode()     {}
func (*TypedLit) exprNode()    {}
func (*IntervalLit) exprNode() {}
func (*Unary) exprNode()       {}
func (*Binary) exprNode()      {}
func (*Is) exprNode()          {}
func (*Between) exprNode()     {}
func (*InList) exprNode()      {}
func (*InQuery) exprNode()     {}
func (*Like) exprNode()        {}
func (*Case) exprNode()        {}
func (*Cast) exprNode()        {}
func (*Call) exprNode()        {}
func (*NamedArg) exprNode()    {}
func (*FieldAccess) exprNode() {}
func (*Index) exprNode()       {}
func (*Subquery) exprNode()    {}
func (*Exists) exprNode()      {}

func (*PrimitiveType) dataTypeNode() {}
func (*DecimalType) dataTypeNode()   {}
func (*ArrayType) dataTypeNode()     {}
func (*MapType) dataTypeNode()       {}
func (*StructType) dataTypeNode()    {}

// String methods name the enums the way the SQL spells them.

func (k DatasetKind) String() string {
	switch k {
	case StreamingTable:
		return "STREAMING TABLE"
	case MaterializedView:
		return "MATERIALIZED VIEW"
	case TemporaryView:
		return "TEMPORARY VIEW"
	}
	return "?"
}

func (v Violation) String() string {
	return [...]string{"WARN", "DROP ROW", "FAIL UPDATE"}[v]
}

func (n NullsOrder) String() string {
	return [...]string{"DEFAULT", "NULLS FIRST", "NULLS LAST"}[n]
}

func (t JoinType) String() string {
	return [...]string{"JOIN", "LEFT JOIN", "RIGHT JOIN", "FULL JOIN", "CROSS JOIN", "LEFT SEMI JOIN", "LEFT ANTI JOIN"}[t]
}

func (k NumberKind) String() string { return [...]string{"INT", "DECIMAL", "FLOAT"}[k] }

func (k TypedLitKind) String() string { return [...]string{"TIMESTAMP", "DATE"}[k] }

var unitNames = [...]string{"", "YEAR", "MONTH", "WEEK", "DAY", "HOUR", "MINUTE", "SECOND", "MILLISECOND", "MICROSECOND"}

func (u IntervalUnit) String() string { return unitNames[u] }

func (op UnaryOp) String() string { return [...]string{"NOT", "-", "+"}[op] }

var binaryOpNames = [...]string{"OR", "AND", "=", "!=", "<", "<=", ">", ">=", "<=>", "||", "+", "-", "*", "/", "%"}

func (op BinaryOp) String() string { return binaryOpNames[op] }

func (w IsWhat) String() string { return [...]string{"NULL", "TRUE", "FALSE"}[w] }

func (op LikeOp) String() string { return [...]string{"LIKE", "ILIKE", "RLIKE"}[op] }

var typeNames = [...]string{"STRING", "BINARY", "BOOLEAN", "TINYINT", "SMALLINT", "INT", "BIGINT", "FLOAT", "DOUBLE", "DATE", "TIMESTAMP", "TIMESTAMP_NTZ"}

func (k TypeKind) String() string { return typeNames[k] }

// String returns the name as SQL text: parts joined by dots, back-quoted
// where needed.
func (n *ObjectName) String() string { return Format(n) }

// String returns the reference as SQL text.
func (n *ColumnRef) String() string { return Format(n) }
