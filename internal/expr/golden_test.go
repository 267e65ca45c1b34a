package expr

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the expected output of testdata/*.golden")

// TestBindGolden binds each expression of testdata/*.golden against
// testScope and compares the bound expression and its type (or the error)
// with the text after ----. Cases are separated by blank lines; lines
// starting with # before a case are comments. Regenerate with
// go test ./internal/expr -update and read the diff.
func TestBindGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/*.golden")
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden files: %v", err)
	}
	s := testScope()
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			cases := parseGolden(string(data))
			var out strings.Builder
			for i, c := range cases {
				got := bindResult(c.input, s)
				if !*update && got != c.want {
					t.Errorf("%s case %d:\n%s\n got: %s\nwant: %s", file, i+1, c.input, got, c.want)
				}
				if i > 0 {
					out.WriteString("\n")
				}
				out.WriteString(c.comments + c.input + "\n----\n" + got + "\n")
			}
			if *update {
				if err := os.WriteFile(file, []byte(out.String()), 0o644); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

func bindResult(src string, s *Scope) string {
	e, err := bindText(src, s)
	if err != nil {
		return "error: " + err.Error()
	}
	return e.String() + " :: " + typeName(e.Type())
}

type goldenCase struct {
	comments, input, want string
}

func parseGolden(text string) []goldenCase {
	var cases []goldenCase
	for _, block := range strings.Split(strings.TrimSpace(text), "\n\n") {
		var c goldenCase
		lines := strings.Split(block, "\n")
		i := 0
		for ; i < len(lines) && strings.HasPrefix(lines[i], "#"); i++ {
			c.comments += lines[i] + "\n"
		}
		var in []string
		for ; i < len(lines) && lines[i] != "----"; i++ {
			in = append(in, lines[i])
		}
		c.input = strings.Join(in, "\n")
		if i < len(lines) {
			c.want = strings.Join(lines[i+1:], "\n")
		}
		if c.input != "" {
			cases = append(cases, c)
		}
	}
	return cases
}
