// Package sql parses the SQL dialect of sluice pipelines: Delta Live Tables
// style CREATE statements over Spark SQL queries, with streaming sources,
// watermarks and expectations.
//
//	script, err := sql.Parse(src) // a file of statements separated by ';'
//	if err != nil {
//		var perr *sql.ParseError // line 3, column 14: expected ")" after the expectation, found "ON"
//		errors.As(err, &perr)
//		...
//	}
//	for _, st := range script.Stmts {
//		c := st.(*sql.CreateStmt) // or *sql.QueryStmt
//		fmt.Println(c.Kind, c.Name, len(c.Elements))
//		sql.Inspect(c.Query, func(n sql.Node) bool { ...; return true })
//	}
//	fmt.Print(sql.Format(script)) // canonical SQL
//
// ParseStatement, ParseQuery, ParseExpr and ParseType parse a single piece.
// This package is the syntax only: it does not resolve names or types (a
// binder does that on this tree) and does not evaluate anything.
//
// # Structure
//
// lexer.go turns text into tokens (token.go has the keywords); parser.go is
// a recursive-descent parser for statements and queries and a Pratt parser
// for expressions; ast.go defines the tree; printer.go prints it back
// (Format); walk.go traverses it (Inspect); dump.go prints its structure for
// tests (Dump). Every node records its start position (line, column and
// byte offset); errors are a *ParseError with the position of the offending
// token and a message saying what was expected and what was found. Only
// the first error is reported.
//
// # The dialect
//
// Statements:
//
//	CREATE [OR REFRESH] {STREAMING TABLE | MATERIALIZED VIEW | TEMPORARY VIEW} name
//	  [( element, ... )] [COMMENT 'text'] [TBLPROPERTIES ('key' = value, ...)]
//	  AS query
//	element: CONSTRAINT name EXPECT (cond) [ON VIOLATION {DROP ROW | FAIL UPDATE}]
//	       | column type [NOT NULL] [COMMENT 'text']
//	       | [CONSTRAINT name] PRIMARY KEY (col, ..., ts_col TIMESERIES)
//	query  (a statement on its own too)
//
// The legacy DLT spellings STREAMING LIVE TABLE, LIVE TABLE (a materialized
// view) and TEMPORARY LIVE VIEW are accepted and printed in the modern form.
//
// Queries: SELECT [DISTINCT] items [FROM ...] [WHERE] [GROUP BY] [HAVING],
// combined with UNION [ALL], then [ORDER BY e [ASC|DESC] [NULLS FIRST|LAST]]
// [LIMIT n] [OFFSET n]. Items are expr [[AS] alias], * or qualifier.*. FROM
// takes a comma-separated list of table, STREAM(table), STREAM table, table
// function f(args), or (subquery), each optionally followed by
// WATERMARK expr [AS name] DELAY OF INTERVAL ... and [AS] alias, and joined
// with [INNER] JOIN, LEFT/RIGHT/FULL [OUTER] JOIN, LEFT SEMI/ANTI JOIN (ON
// cond or USING (cols)) and CROSS JOIN.
//
// Expressions, loosest first: OR; AND; NOT; comparisons (= == != <> < <= > >=
// <=>) and IS [NOT] NULL/TRUE/FALSE, [NOT] IN (list or query), [NOT] BETWEEN,
// [NOT] LIKE/ILIKE/RLIKE/REGEXP; ||; + -; * / %; unary - +; postfix .field,
// [index] and ::type. Binary operators associate to the left. Atoms are
// literals (numbers, 'strings' (a quote inside is written twice), TRUE, FALSE, NULL,
// TIMESTAMP '...', DATE '...', INTERVAL 10 MINUTES / '10' MINUTE / '1 hour'
// / 1 HOUR 30 MINUTES), names (a.b.c), function calls (f(x), count(*),
// count(DISTINCT x), name => value arguments, FILTER (WHERE cond)), CASE,
// CAST and TRY_CAST, EXISTS (query) and scalar (query). Keywords are
// case-insensitive; `back quotes` make any text a name; comments are
// -- to the end of the line and /* ... */ (which nest). Double-quoted text is
// a string, as in Spark; there are no backslash escapes.
//
// Types: STRING, BINARY, BOOLEAN, TINYINT, SMALLINT, INT/INTEGER, BIGINT,
// FLOAT, DOUBLE, DATE, TIMESTAMP, TIMESTAMP_NTZ, DECIMAL[(p[,s])], ARRAY<T>,
// MAP<K, V> and STRUCT<name[:] T, ...>.
//
// Reserved words (see token.go) must be back-quoted to serve as names, except
// after a dot or AS, and left and right may name functions. TIMESTAMP, DATE
// and INTERVAL start literals only when a string or number follows, so
// columns named timestamp or date need no quotes. STREAM x reads table x as a
// stream, so a table named stream must be back-quoted before an alias.
//
// Not supported yet: WITH (common table expressions), window functions
// (OVER), lambdas (x -> ...), INTERSECT and EXCEPT, LATERAL VIEW, PIVOT,
// VALUES, NATURAL joins, parenthesised joins, EXTRACT(f FROM x) and the
// other keyword-argument functions, numeric suffixes (10L, 1.5D), backslash
// escapes, and statements other than CREATE and queries.
package sql
