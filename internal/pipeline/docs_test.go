package pipeline

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/sluice-dev/sluice/internal/sql"
)

// docsOrders are the orders the examples of docs/sql.md run over.
var docsOrders = []order{
	{"o1", "c1", "book", 10, at(0, 10)},
	{"o2", "c2", "book", 20, at(1, 0)},
	{"o3", "c1", "pen", 5, at(4, 59)},
	{"o4", "c3", "book", -1, at(2, 0)},
	{"o5", "c3", "book", 30, at(6, 0)},
	{"o6", "c4", "pen", 7, at(20, 0)},
	{"o7", "c5", "book", 40, at(3, 0)},
}

var docBlock = regexp.MustCompile("(?ms)^```sql\n(.*?)^```\n(?:```rows\n(.*?)^```\n)?")

// TestDocsSQL compiles and runs every sql example of docs/sql.md over
// docsOrders, and checks the rows given after it.
func TestDocsSQL(t *testing.T) {
	doc, err := os.ReadFile("../../docs/sql.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := docBlock.FindAllStringSubmatch(string(doc), -1)
	if len(blocks) < 4 {
		t.Fatalf("found %d sql examples in docs/sql.md", len(blocks))
	}
	for i, b := range blocks {
		src, want := b[1], b[2]
		e := newEnv(t)
		src1 := e.create("main.demo.orders_ingestion", ordersSchema)
		cust := e.create("main.demo.customers", mustSchema(t, "customer_id STRING, tier STRING"))
		e.appendJSON(cust, `[{"customer_id":"c1","tier":"gold"},{"customer_id":"c2","tier":"silver"}]`)
		e.appendOrders(src1, docsOrders...)
		g := e.compile("main.demo.docs_pipeline", src)
		r := NewRunner(e.name("main.demo.docs_pipeline"), g, e.store, RunOptions{}, nil)
		if _, err := r.Round(e.ctx, nil); err != nil {
			t.Errorf("example %d: %v\n%s", i+1, err, src)
			r.Close()
			continue
		}
		r.Close()
		if want == "" {
			continue
		}
		tables := g.Tables()
		last := tables[len(tables)-1]
		// The last CREATE of the block that is a table.
		script, _ := sql.Parse(src)
		for _, st := range script.Stmts {
			if c := st.(*sql.CreateStmt); c.Kind != sql.TemporaryView {
				n, _ := g.resolve(c.Name)
				last = g.Dataset(n.String())
			}
		}
		got := e.rows(last.Key())
		wantRows := strings.Split(strings.TrimSpace(want), "\n")
		slices.Sort(wantRows)
		if !slices.Equal(got, wantRows) {
			t.Errorf("example %d: %s holds\n%s\nbut docs/sql.md says\n%s", i+1, last.Key(), strings.Join(got, "\n"), strings.Join(wantRows, "\n"))
		}
	}
}
