package sql

import (
	"errors"
	"path/filepath"
	"testing"
)

// FuzzParse feeds arbitrary text to Parse, ParseExpr and ParseType and
// checks these invariants:
//   - none of them panics;
//   - each returns either a tree or a *ParseError, never both or neither,
//     and the error's position lies inside the text with a line and column
//     that agree with its byte offset;
//   - a tree satisfies checkTree: Format's output parses again to the same
//     tree (ignoring positions), Format is idempotent, every node has a
//     position inside the text consistent with its offset and not before
//     its parent's, and Inspect reaches every node.
//
// The corpus starts with the inputs of testdata/*.txt. Run it with
//
//	go test ./internal/sql -run '^$' -fuzz FuzzParse -fuzztime 60s
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.txt")
	for _, file := range files {
		for _, c := range readCases(&testing.T{}, file) {
			if c.cmd == "parse" || c.cmd == "ast" || c.cmd == "paren" {
				f.Add(c.input)
			}
		}
	}
	f.Fuzz(func(t *testing.T, src string) {
		for _, kind := range []string{"script", "expr", "type"} {
			n, err := parseAs(kind, src)
			if err != nil {
				var perr *ParseError
				if !errors.As(err, &perr) {
					t.Fatalf("%s: error %v is a %T, not a *ParseError", kind, err, err)
				}
				if !isNilNode(n) {
					t.Fatalf("%s: both a tree and an error %v", kind, err)
				}
				checkPos(t, src, &Ident{Start: perr.Pos})
				continue
			}
			if isNilNode(n) {
				t.Fatalf("%s: neither a tree nor an error", kind)
			}
			checkTree(t, kind, src, n)
		}
	})
}

func isNilNode(n Node) bool {
	switch n := n.(type) {
	case nil:
		return true
	case *Script:
		return n == nil
	}
	return false
}
