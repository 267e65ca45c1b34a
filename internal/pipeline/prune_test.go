package pipeline

import (
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/sluice-dev/sluice/internal/table"
)

// describeSel prints a selection as column paths, sorted.
func describeSel(fieldNames func(col int, path []int) string, sel []*table.Selection) string {
	var out []string
	var walk func(col int, path []int, s *table.Selection)
	walk = func(col int, path []int, s *table.Selection) {
		if s == nil {
			return
		}
		if s.All {
			out = append(out, fieldNames(col, path))
			return
		}
		for i, f := range s.Fields {
			walk(col, append(append([]int{}, path...), i), f)
		}
	}
	for i, s := range sel {
		walk(i, nil, s)
	}
	sort.Strings(out)
	return strings.Join(out, " ")
}

func TestSelection(t *testing.T) {
	e := newEnv(t)
	e.create("main.demo.orders_ingestion", ordersSchema)
	g := e.compile("main.demo.p", exampleSQL+`
CREATE STREAMING TABLE main.demo.keys AS SELECT key FROM STREAM(main.demo.orders_ingestion) WHERE value.quantity > 1;`)
	for key, want := range map[string]string{
		"main.demo.orders_silver": "value.0 value.1 value.2 value.3 value.5",
		"main.demo.keys":          "key value.4",
	} {
		d := g.Dataset(key)
		got := describeSel(func(col int, path []int) string {
			s := ordersSchema.Field(col).Name
			for _, i := range path {
				s += fmt.Sprintf(".%d", i)
			}
			return s
		}, d.plan.sel)
		if got != want {
			t.Errorf("%s reads %q, want %q", key, got, want)
		}
	}
}
