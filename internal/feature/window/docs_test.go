package window

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestDocsSpecsParse: the windowed specs of the README's walk-through and
// of docs/features.md parse and compile to pipeline SQL.
func TestDocsSpecsParse(t *testing.T) {
	readme, err := os.ReadFile("../../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?s)cat > user_clicks.yaml <<'YAML'\n(.*?)\nYAML\n`).FindSubmatch(readme)
	if m == nil {
		t.Fatal("README.md has no `cat > user_clicks.yaml <<'YAML' ... YAML` heredoc")
	}
	specs := []string{string(m[1])}
	docs, err := os.ReadFile("../../../docs/features.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllSubmatch(docs, -1) {
		if strings.Contains(string(b[1]), "\nfeatures:") && strings.Contains(string(b[1]), "\nsource:") {
			specs = append(specs, string(b[1]))
		}
	}
	if len(specs) < 2 {
		t.Fatalf("found %d windowed specs, want the README's and docs/features.md's", len(specs))
	}
	for _, s := range specs {
		spec, err := ParseSpec([]byte(s))
		if err != nil {
			t.Fatalf("%v\n%s", err, s)
		}
		if sql := spec.SQL(); !strings.Contains(sql, "CREATE OR REFRESH STREAMING TABLE "+spec.Name) {
			t.Fatalf("SQL of %s:\n%s", spec.Name, sql)
		}
	}
}
