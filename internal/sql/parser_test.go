package sql

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

var update = flag.Bool("update", false, "rewrite the expected output in testdata/*.txt with the actual output")

// TestGolden runs the cases in testdata/*.txt. A case is
//
//	command [kind]
//	input SQL, one or more lines
//	----
//	expected output
//
// ended by a blank line; an output that contains blank lines is written
// between "----\n----" lines instead. Commands: parse (prints Format's
// output), ast (prints Dump's), paren (prints every operator of an
// expression in parentheses) and tokens (prints the lexer's tokens). kind is
// script (the default), stmt, query, expr or type, choosing Parse,
// ParseStatement, ParseQuery, ParseExpr or ParseType. A failing parse prints
// "error: " and the message. Every case that parses is also checked with
// checkTree. Regenerate with: go test ./internal/sql -run TestGolden -update
func TestGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no testdata: %v", err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			chunks := readCases(t, file)
			changed := false
			for _, c := range chunks {
				if c.cmd == "" {
					continue
				}
				t.Run(fmt.Sprintf("line%d", c.line), func(t *testing.T) {
					got := strings.TrimRight(runCase(t, c), "\n")
					if got == c.output {
						return
					}
					if *update {
						c.output = got
						changed = true
						return
					}
					t.Errorf("%s:%d: %s %s\n%s\n---- got:\n%s\n---- want:\n%s", file, c.line, c.cmd, strings.Join(c.args, " "), c.input, got, c.output)
				})
			}
			if changed {
				writeCases(t, file, chunks)
			}
		})
	}
}

// chunk is a test case, or (cmd == "") comment and blank lines kept as they are.
type chunk struct {
	text   string // comment lines
	line   int
	cmd    string
	args   []string
	input  string
	output string
}

func readCases(t *testing.T, file string) []*chunk {
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	var chunks []*chunk
	for i := 0; i < len(lines); {
		l := lines[i]
		if l == "" || strings.HasPrefix(l, "#") {
			chunks = append(chunks, &chunk{text: l})
			i++
			continue
		}
		f := strings.Fields(l)
		c := &chunk{line: i + 1, cmd: f[0], args: f[1:]}
		i++
		var in []string
		for ; i < len(lines) && lines[i] != "----"; i++ {
			in = append(in, lines[i])
		}
		if i == len(lines) {
			t.Fatalf("%s:%d: no ---- after the input", file, c.line)
		}
		c.input = strings.Join(in, "\n")
		i++
		var out []string
		if i < len(lines) && lines[i] == "----" { // ----\n----: output with blank lines
			for i++; i < len(lines) && !(lines[i] == "----" && i+1 < len(lines) && lines[i+1] == "----"); i++ {
				out = append(out, lines[i])
			}
			i += 2
		} else {
			for ; i < len(lines) && lines[i] != ""; i++ {
				out = append(out, lines[i])
			}
		}
		if i < len(lines) && lines[i] == "" {
			i++ // the blank line that ends the case
		}
		c.output = strings.Join(out, "\n")
		chunks = append(chunks, c)
	}
	return chunks
}

func writeCases(t *testing.T, file string, chunks []*chunk) {
	var b strings.Builder
	for _, c := range chunks {
		if c.cmd == "" {
			b.WriteString(c.text + "\n")
			continue
		}
		b.WriteString(strings.Join(append([]string{c.cmd}, c.args...), " ") + "\n")
		b.WriteString(c.input + "\n----\n")
		if strings.Contains(c.output, "\n\n") || strings.HasPrefix(c.output, "\n") {
			b.WriteString("----\n" + c.output + "\n----\n----\n\n")
		} else if c.output == "" {
			b.WriteString("\n")
		} else {
			b.WriteString(c.output + "\n\n")
		}
	}
	if err := os.WriteFile(file, []byte(strings.TrimRight(b.String(), "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}

// parseAs parses src with the parser that kind names.
func parseAs(kind, src string) (Node, error) {
	switch kind {
	case "", "script":
		return Parse(src)
	case "stmt":
		return ParseStatement(src)
	case "query":
		return ParseQuery(src)
	case "expr":
		return ParseExpr(src)
	case "type":
		return ParseType(src)
	}
	panic("unknown kind " + kind)
}

func runCase(t *testing.T, c *chunk) string {
	kind := ""
	if len(c.args) > 0 {
		kind = c.args[0]
	}
	if c.cmd == "tokens" {
		toks, err := lex(c.input)
		if err != nil {
			return "error: " + err.Error()
		}
		var b strings.Builder
		for _, tok := range toks {
			kind := strings.TrimPrefix(strings.TrimPrefix(tokenText[tok.kind], "a "), "an ")
			fmt.Fprintf(&b, "%s %s", tok.pos, kind)
			if tok.kind != tEOF {
				fmt.Fprintf(&b, " %q", tok.text)
			}
			if tok.val != tok.text {
				fmt.Fprintf(&b, " val=%q", tok.val)
			}
			if tok.kw != kwNone {
				fmt.Fprintf(&b, " kw=%s", tok.kw)
			}
			b.WriteString("\n")
		}
		return b.String()
	}
	n, err := parseAs(kind, c.input)
	if err != nil {
		var perr *ParseError
		if !errors.As(err, &perr) {
			t.Fatalf("error %v (%T) is not a *ParseError", err, err)
		}
		return "error: " + err.Error()
	}
	checkTree(t, kind, c.input, n)
	switch c.cmd {
	case "parse":
		return Format(n)
	case "ast":
		return Dump(n)
	case "paren":
		return formatParen(n)
	}
	t.Fatalf("unknown command %q", c.cmd)
	return ""
}

// formatParen prints n like Format, but with every operator in parentheses.
func formatParen(n Node) string {
	p := printer{full: true}
	p.node(n)
	return p.b.String()
}

// checkTree checks the invariants of a tree n that parseAs(kind, src)
// returned:
//   - Format(n) parses again, to a tree equal to n except for positions;
//   - Format is idempotent: formatting that second tree gives the same text;
//   - every node has a position inside src whose line and column agree
//     with its byte offset, and no node starts before its parent;
//   - Inspect visits every node that the tree holds (found by reflection).
func checkTree(t testing.TB, kind, src string, n Node) {
	t.Helper()
	out := Format(n)
	n2, err := parseAs(kind, out)
	if err != nil {
		t.Fatalf("Format's output does not parse: %v\ninput:\n%s\nformatted:\n%s", err, src, out)
	}
	if diff := diffTrees(reflect.ValueOf(n), reflect.ValueOf(n2), "root"); diff != "" {
		t.Fatalf("Format's output parses to another tree: %s\ninput:\n%s\nformatted:\n%s\nfirst:\n%s\nsecond:\n%s", diff, src, out, Dump(n), Dump(n2))
	}
	if out2 := Format(n2); out2 != out {
		t.Fatalf("Format is not idempotent:\n%s\nthen:\n%s", out, out2)
	}
	visited := 0
	var stack []Node
	Inspect(n, func(m Node) bool {
		if m == nil {
			stack = stack[:len(stack)-1]
			return true
		}
		visited++
		checkPos(t, src, m)
		if len(stack) > 0 {
			if parent := stack[len(stack)-1]; m.Pos().Offset < parent.Pos().Offset {
				t.Fatalf("%T at %s starts before its parent %T at %s", m, m.Pos(), parent, parent.Pos())
			}
		}
		stack = append(stack, m)
		return true
	})
	if want := countNodes(reflect.ValueOf(n)); visited != want {
		t.Fatalf("Inspect visited %d nodes, the tree has %d:\n%s", visited, want, Dump(n))
	}
}

// checkPos checks that m's position is in src and that its line and
// column are those of its byte offset.
func checkPos(t testing.TB, src string, m Node) {
	t.Helper()
	pos := m.Pos()
	if !pos.IsValid() || pos.Offset < 0 || pos.Offset > len(src) {
		t.Fatalf("%T has position %+v outside the input (%d bytes)", m, pos, len(src))
	}
	before := src[:pos.Offset]
	line := strings.Count(before, "\n") + 1
	col := utf8.RuneCountInString(before[strings.LastIndexByte(before, '\n')+1:]) + 1
	if pos.Line != line || pos.Col != col {
		t.Fatalf("%T at offset %d says %d:%d, want %d:%d", m, pos.Offset, pos.Line, pos.Col, line, col)
	}
}

// countNodes counts the non-nil Node values in the tree by reflection.
func countNodes(v reflect.Value) int {
	switch v.Kind() {
	case reflect.Interface, reflect.Pointer:
		if v.IsNil() {
			return 0
		}
		if v.Kind() == reflect.Interface {
			return countNodes(v.Elem())
		}
		return 1 + countNodes(v.Elem())
	case reflect.Struct:
		n := 0
		for i := 0; i < v.NumField(); i++ {
			n += countNodes(v.Field(i))
		}
		return n
	case reflect.Slice:
		n := 0
		for i := 0; i < v.Len(); i++ {
			n += countNodes(v.Index(i))
		}
		return n
	}
	return 0
}

// diffTrees compares two trees, ignoring Pos fields and treating nil and
// empty slices alike. It returns where they first differ, or "".
func diffTrees(a, b reflect.Value, path string) string {
	if a.Kind() != b.Kind() {
		return path + ": kinds differ"
	}
	switch a.Kind() {
	case reflect.Interface, reflect.Pointer:
		if a.IsNil() || b.IsNil() {
			if a.IsNil() != b.IsNil() {
				return path + ": one is nil"
			}
			return ""
		}
		if a.Elem().Type() != b.Elem().Type() {
			return fmt.Sprintf("%s: %s vs %s", path, a.Elem().Type(), b.Elem().Type())
		}
		return diffTrees(a.Elem(), b.Elem(), path)
	case reflect.Struct:
		if a.Type() == posType {
			return ""
		}
		for i := 0; i < a.NumField(); i++ {
			if d := diffTrees(a.Field(i), b.Field(i), path+"."+a.Type().Field(i).Name); d != "" {
				return d
			}
		}
		return ""
	case reflect.Slice:
		if a.Len() != b.Len() {
			return fmt.Sprintf("%s: lengths %d and %d", path, a.Len(), b.Len())
		}
		for i := 0; i < a.Len(); i++ {
			if d := diffTrees(a.Index(i), b.Index(i), fmt.Sprintf("%s[%d]", path, i)); d != "" {
				return d
			}
		}
		return ""
	}
	if a.Interface() != b.Interface() {
		return fmt.Sprintf("%s: %v vs %v", path, a.Interface(), b.Interface())
	}
	return ""
}

// TestParseErrors checks messages, lines and columns of parse errors.
func TestParseErrors(t *testing.T) {
	cases := map[string]struct {
		src  string
		want string
	}{
		"missing paren after expectation": {
			src: "CREATE OR REFRESH STREAMING TABLE t (\n" +
				"  CONSTRAINT ok EXPECT (a > 0) ON VIOLATION DROP ROW,\n" +
				"  CONSTRAINT c EXPECT (a > 0 ON VIOLATION DROP ROW\n" +
				") AS SELECT * FROM s",
			want: `line 3, column 30: expected ")" after the expectation, found "ON"`,
		},
		"unknown violation action": {
			src:  "CREATE STREAMING TABLE t (CONSTRAINT c EXPECT (a) ON VIOLATION IGNORE) AS SELECT 1",
			want: `line 1, column 64: expected DROP ROW or FAIL UPDATE after ON VIOLATION, found "IGNORE"`,
		},
		"statement keyword misspelt": {
			src:  "-- the pipeline\nCRATE STREAMING TABLE t AS SELECT 1",
			want: `line 2, column 1: expected CREATE or SELECT, found "CRATE"`,
		},
		"unknown dataset kind": {
			src:  "CREATE TABLE t AS SELECT 1",
			want: `line 1, column 8: expected STREAMING TABLE, MATERIALIZED VIEW or TEMPORARY VIEW, found "TABLE"`,
		},
		"missing AS": {
			src:  "CREATE MATERIALIZED VIEW v SELECT 1",
			want: `line 1, column 28: expected "(", COMMENT, TBLPROPERTIES or AS after the name, found "SELECT"`,
		},
		"missing AS after comment": {
			src:  "CREATE MATERIALIZED VIEW v COMMENT 'x' SELECT 1",
			want: `line 1, column 40: expected AS before the query, found "SELECT"`,
		},
		"missing semicolon between statements": {
			src:  "CREATE TEMPORARY VIEW a AS SELECT 1\nCREATE TEMPORARY VIEW b AS SELECT 2",
			want: `line 2, column 1: expected ";" after the statement, found "CREATE"`,
		},
		"dangling operator": {
			src:  "SELECT a +\nFROM t",
			want: `line 2, column 1: expected an expression, found "FROM"`,
		},
		"end of input in expression": {
			src:  "SELECT a FROM t WHERE b =",
			want: `line 1, column 26: expected an expression, found end of input`,
		},
		"unclosed call": {
			src:  "SELECT count(a b FROM t",
			want: `line 1, column 16: expected "," or ")" after the function argument, found "b"`,
		},
		"watermark without delay": {
			src:  "SELECT * FROM STREAM(s) WATERMARK ts INTERVAL 10 MINUTES",
			want: `line 1, column 38: expected DELAY OF INTERVAL after the watermark column, found "INTERVAL"`,
		},
		"watermark delay not an interval": {
			src:  "SELECT * FROM STREAM(s) WATERMARK ts DELAY OF 10",
			want: `line 1, column 47: expected INTERVAL after DELAY OF, found "10"`,
		},
		"interval without unit": {
			src:  "SELECT INTERVAL 10",
			want: `line 1, column 19: expected an interval unit such as MINUTES, found end of input`,
		},
		"interval with unknown unit": {
			src:  "SELECT INTERVAL 10 FORTNIGHTS",
			want: `line 1, column 20: expected an interval unit such as MINUTES, found "FORTNIGHTS"`,
		},
		"join without condition": {
			src:  "SELECT * FROM a JOIN b WHERE x",
			want: `line 1, column 24: expected ON or USING after the joined table, found "WHERE"`,
		},
		"unterminated string": {
			src:  "SELECT 'abc\n FROM t",
			want: `line 1, column 8: unterminated string`,
		},
		"unterminated comment": {
			src:  "SELECT 1 /* never /* nested */ closed",
			want: `line 1, column 10: unterminated /* comment`,
		},
		"unexpected character": {
			src:  "SELECT a ? b",
			want: `line 1, column 10: unexpected character '?'`,
		},
		"number glued to a word": {
			src:  "SELECT 10L",
			want: `line 1, column 8: invalid number "10L"`,
		},
		"column after non-ASCII text": {
			src:  "SELECT 'héllo' ||",
			want: `line 1, column 18: expected an expression, found end of input`,
		},
		"reserved word as column": {
			src:  "SELECT select FROM t",
			want: `line 1, column 8: expected an expression, found "select"`,
		},
		"unknown type": {
			src:  "SELECT CAST(a AS VARCHAR2)",
			want: `line 1, column 18: expected a type, found "VARCHAR2"`,
		},
		"unclosed array type": {
			src:  "SELECT CAST(a AS ARRAY<INT)",
			want: `line 1, column 27: expected ">" after the array's element type, found ")"`,
		},
		"IS without NULL": {
			src:  "SELECT a IS NOT 5",
			want: `line 1, column 17: expected NULL, TRUE or FALSE after IS NOT, found "5"`,
		},
		"BETWEEN without AND": {
			src:  "SELECT a BETWEEN 1 OR 2",
			want: `line 1, column 20: expected AND after BETWEEN's lower bound, found "OR"`,
		},
		"CASE without END": {
			src:  "SELECT CASE WHEN a THEN 1 FROM t",
			want: `line 1, column 27: expected WHEN, ELSE or END in CASE, found "FROM"`,
		},
		"CASE without WHEN": {
			src:  "SELECT CASE a END",
			want: `line 1, column 15: expected WHEN, found "END"`,
		},
		"subquery error reported where it is": {
			src:  "SELECT * FROM t WHERE a IN (SELECT b FROM)",
			want: `line 1, column 42: expected a table name, found ")"`,
		},
		"scalar subquery error reported where it is": {
			src:  "SELECT ((SELECT 1) UNION SELECT FROM)",
			want: `line 1, column 33: expected an expression, found "FROM"`,
		},
		"star inside an expression": {
			src:  "SELECT t.* + 1 FROM t",
			want: `line 1, column 12: expected ";" after the statement, found "+"`,
		},
		"star field access": {
			src:  "SELECT f(x).* FROM t",
			want: `line 1, column 13: expected a field name after ".", found "*"`,
		},
		"two LIMITs": {
			src:  "(SELECT 1 LIMIT 1) LIMIT 2",
			want: `line 1, column 20: a parenthesised query with ORDER BY, LIMIT or OFFSET cannot take another`,
		},
		"empty quoted identifier": {
			src:  "SELECT `` FROM t",
			want: "line 1, column 8: empty quoted identifier",
		},
		"primary key without columns": {
			src:  "CREATE STREAMING TABLE t (PRIMARY KEY ()) AS SELECT 1",
			want: `line 1, column 40: expected a key column name, found ")"`,
		},
		"deep nesting": {
			src:  "SELECT " + strings.Repeat("(", 2000) + "1" + strings.Repeat(")", 2000),
			want: `line 1, column 1007: nested too deeply (more than 1000 levels)`,
		},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := Parse(c.src)
			if err == nil {
				t.Fatalf("Parse(%q) succeeded, want error %s", c.src, c.want)
			}
			var perr *ParseError
			if !errors.As(err, &perr) {
				t.Fatalf("error %v is a %T, not a *ParseError", err, err)
			}
			if err.Error() != c.want {
				t.Errorf("Parse(%q):\n got %s\nwant %s", c.src, err, c.want)
			}
			checkPos(t, c.src, &Ident{Start: perr.Pos})
		})
	}
}

// TestInspectOrder checks that Inspect visits children in source order
// and pairs every node with a f(nil).
func TestInspectOrder(t *testing.T) {
	n, err := ParseExpr("f(a, b.c) + CASE WHEN d THEN e END")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	depth := 0
	Inspect(n, func(m Node) bool {
		if m == nil {
			depth--
			return true
		}
		depth++
		switch m := m.(type) {
		case *Ident:
			got = append(got, m.Name)
		case *ColumnRef:
			got = append(got, "ref")
		}
		return true
	})
	if want := "f ref a ref b c ref d ref e"; strings.Join(got, " ") != want {
		t.Errorf("visited %q, want %q", strings.Join(got, " "), want)
	}
	if depth != 0 {
		t.Errorf("%d more nodes than f(nil) calls", depth)
	}
}
