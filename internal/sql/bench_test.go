package sql

import (
	"testing"
)

// issueExample returns the pipeline of issue 3, the first case of
// testdata/issue3.txt.
func issueExample(b *testing.B) string {
	for _, c := range readCases(&testing.T{}, "testdata/issue3.txt") {
		if c.cmd == "parse" {
			return c.input
		}
	}
	b.Fatal("no parse case in testdata/issue3.txt")
	return ""
}

// BenchmarkParse parses the four statements of issue 3's example.
func BenchmarkParse(b *testing.B) {
	src := issueExample(b)
	b.SetBytes(int64(len(src)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(src); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFormat prints the parsed example back as SQL.
func BenchmarkFormat(b *testing.B) {
	s, err := Parse(issueExample(b))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		Format(s)
	}
}
