package server_test

import (
	"bytes"
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/sluice-dev/sluice/internal/ingest"
	"github.com/sluice-dev/sluice/internal/server"
)

// routes returns the "METHOD /path" patterns that the package registers on
// its mux (mux.Handle and mux.HandleFunc with a literal pattern that has a
// method; the catch-all "/" has none).
func routes(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(token.NewFileSet(), name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, routesIn(t, f)...)
	}
	return out
}

func routesIn(t *testing.T, f *ast.File) []string {
	var out []string
	ast.Inspect(f, func(n ast.Node) bool {
		call, ok := n.(*ast.CallExpr)
		if !ok || len(call.Args) == 0 {
			return true
		}
		sel, ok := call.Fun.(*ast.SelectorExpr)
		if !ok || (sel.Sel.Name != "HandleFunc" && sel.Sel.Name != "Handle") {
			return true
		}
		lit, ok := call.Args[0].(*ast.BasicLit)
		if !ok || lit.Kind != token.STRING {
			t.Errorf("a route is registered with a non-literal pattern at offset %d; this test cannot check it", call.Pos())
			return true
		}
		p, _ := strconv.Unquote(lit.Value)
		if strings.Contains(p, " ") {
			out = append(out, p)
		}
		return true
	})
	return out
}

var documentedRoute = regexp.MustCompile("`(GET|POST|PUT|DELETE|PATCH) (/[^`?\\s]*)")

// TestDocsAPIListsEveryRoute checks that docs/api.md documents every route
// server.go registers, and documents no route that does not exist.
func TestDocsAPIListsEveryRoute(t *testing.T) {
	doc, err := os.ReadFile("../../docs/api.md")
	if err != nil {
		t.Fatal(err)
	}
	var documented []string
	for _, m := range documentedRoute.FindAllStringSubmatch(string(doc), -1) {
		documented = append(documented, m[1]+" "+m[2])
	}
	registered := routes(t)
	if len(registered) < 10 {
		t.Fatalf("found only %d routes in server.go: %v", len(registered), registered)
	}
	for _, r := range registered {
		if !slices.Contains(documented, r) {
			t.Errorf("docs/api.md does not document %s (it documents %v)", r, documented)
		}
	}
	for _, d := range documented {
		if !slices.Contains(registered, d) {
			t.Errorf("docs/api.md documents %s, which server.go does not register (%v)", d, registered)
		}
	}
}

// TestDocsAPIExamplesDecode checks the JSON examples of docs/api.md
// against the types the API encodes: the error body and a stream's status.
func TestDocsAPIExamplesDecode(t *testing.T) {
	doc, err := os.ReadFile("../../docs/api.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?ms)^```json\n(.*?)^```").FindAllSubmatch(doc, -1)
	if len(blocks) != 2 {
		t.Fatalf("docs/api.md has %d json blocks, want 2 (error, status)", len(blocks))
	}
	strict := func(b []byte, v any) error {
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		return dec.Decode(v)
	}
	var eb server.ErrorBody
	if err := strict(blocks[0][1], &eb); err != nil || eb.Error.Code != "INVALID_ARGUMENT" || eb.Error.Field == "" {
		t.Errorf("the error example does not decode as server.ErrorBody: %v %+v\n%s", err, eb, blocks[0][1])
	}
	var st ingest.Status
	if err := strict(blocks[1][1], &st); err != nil || st.State == "" || len(st.Offsets) == 0 || st.LastCommitAt.IsZero() {
		t.Errorf("the status example does not decode as ingest.Status: %v %+v\n%s", err, st, blocks[1][1])
	}
}
