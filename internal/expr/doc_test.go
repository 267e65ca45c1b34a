package expr

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/memory"
)

const docPath = "../../docs/sql-functions.md"

// docExample matches `expr` → `result` in docs/sql-functions.md. In
// tables, | inside code is written \|.
var docExample = regexp.MustCompile("`([^`]+)` → `([^`]*)`")

// TestDocExamples runs every example of docs/sql-functions.md: bound with
// no columns in scope, evaluated on one row, printed with FormatValue.
func TestDocExamples(t *testing.T) {
	data, err := os.ReadFile(docPath)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for i, line := range strings.Split(string(data), "\n") {
		for _, m := range docExample.FindAllStringSubmatch(line, -1) {
			src := strings.ReplaceAll(m[1], `\|`, "|")
			want := strings.ReplaceAll(m[2], `\|`, "|")
			n++
			e, err := bindText(src, nil)
			if err != nil {
				t.Errorf("line %d: %s: %v", i+1, src, err)
				continue
			}
			mem := memory.NewCheckedAllocator(memory.DefaultAllocator)
			out, err := e.Eval(&Ctx{Mem: mem, Now: testNow}, oneRow)
			if err != nil {
				t.Errorf("line %d: %s: %v", i+1, src, err)
				continue
			}
			if got := FormatValue(out, 0); got != want {
				t.Errorf("line %d: %s\n got: %s\nwant: %s", i+1, src, got, want)
			}
			out.Release()
			mem.AssertSize(t, 0)
		}
	}
	if n < 100 {
		t.Errorf("only %d examples found in %s", n, docPath)
	}
}

// TestDocListsEveryFunction checks every function Bind knows is in the
// doc, as `name(`.
func TestDocListsEveryFunction(t *testing.T) {
	data, err := os.ReadFile(docPath)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(data)
	for _, name := range FunctionNames() {
		if !strings.Contains(doc, "`"+name+"(") && !strings.Contains(doc, "`"+name+"`") && !strings.Contains(doc, ", "+name+"(") {
			t.Errorf("function %s is not documented in %s", name, docPath)
		}
	}
}
