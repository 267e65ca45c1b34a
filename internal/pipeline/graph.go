package pipeline

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/sluice-dev/sluice/internal/ident"
	"github.com/sluice-dev/sluice/internal/publish"
	"github.com/sluice-dev/sluice/internal/sql"
)

// Kind is the kind of a dataset.
type Kind = sql.DatasetKind

// Dataset is one CREATE statement of a pipeline.
type Dataset struct {
	// Name is the table's three-part name; a temporary view has only
	// Object set (its name as written), and is not stored anywhere.
	Name ident.Name
	Kind Kind
	// Comment and Properties are COMMENT and TBLPROPERTIES.
	Comment    string
	Properties map[string]string
	// Reads are the datasets and tables the query reads, as written in
	// the script (names resolved to three-part names, temporary views by
	// their name), sorted.
	Reads []string
	// Schema is the output schema; set by Compile.
	Schema *arrow.Schema
	// Expectations are the CONSTRAINT … EXPECT clauses.
	Expectations []*Expectation
	// PrimaryKey is the PRIMARY KEY clause's columns, and TimeSeries the
	// one marked TIMESERIES ("" for none).
	PrimaryKey []string
	TimeSeries string

	stmt *sql.CreateStmt
	plan *queryPlan
}

// Key is how the dataset is referred to in the graph: the three-part name,
// or a temporary view's name.
func (d *Dataset) Key() string {
	if d.Kind == sql.TemporaryView {
		return d.Name.Object
	}
	return d.Name.String()
}

// Streaming reports whether the dataset reads a source as a stream.
func (d *Dataset) Streaming() bool { return d.plan != nil && d.plan.streaming }

// Graph is a compiled pipeline: its datasets in an order where every dataset
// comes after those it reads.
type Graph struct {
	// Namespace is the default catalog.schema for names of fewer than
	// three parts.
	Catalog, Schema string
	Datasets        []*Dataset
	byKey           map[string]*Dataset
}

// Dataset returns the dataset with the given key (see [Dataset.Key]), or nil.
func (g *Graph) Dataset(key string) *Dataset { return g.byKey[key] }

// Sources returns the tables the pipeline reads that it does not define,
// sorted by name.
func (g *Graph) Sources() []ident.Name {
	seen := map[string]bool{}
	var out []ident.Name
	for _, d := range g.Datasets {
		for _, k := range d.Reads {
			if g.byKey[k] != nil || seen[k] {
				continue
			}
			seen[k] = true
			if n, err := ident.Parse(k); err == nil {
				out = append(out, n)
			}
		}
	}
	slices.SortFunc(out, func(a, b ident.Name) int { return strings.Compare(a.String(), b.String()) })
	return out
}

// Tables returns the datasets that are stored as tables, in graph order.
func (g *Graph) Tables() []*Dataset {
	var out []*Dataset
	for _, d := range g.Datasets {
		if d.Kind != sql.TemporaryView {
			out = append(out, d)
		}
	}
	return out
}

// Lookup returns the schema of an existing table that a pipeline reads, or
// an error wrapping [ErrUnknownTable] if there is none.
type Lookup func(ctx context.Context, name ident.Name) (*arrow.Schema, error)

// ErrUnknownTable is returned (wrapped) by a [Lookup] for a name that is
// neither a dataset of the pipeline nor an existing table.
var ErrUnknownTable = errors.New("unknown table")

// Error is a compile error: it names the dataset and, where there is one,
// the position in the SQL text.
type Error struct {
	Dataset string // "" when the error is not about one dataset
	Pos     sql.Pos
	Msg     string
}

func (e *Error) Error() string {
	var b strings.Builder
	if e.Pos.Line > 0 {
		fmt.Fprintf(&b, "line %d, column %d: ", e.Pos.Line, e.Pos.Col)
	}
	if e.Dataset != "" {
		fmt.Fprintf(&b, "%s: ", e.Dataset)
	}
	b.WriteString(e.Msg)
	return b.String()
}

// CompileOptions configures [Compile].
type CompileOptions struct {
	// Catalog and Schema complete names of fewer than three parts. Default
	// the namespace of the first dataset with a three-part name.
	Catalog, Schema string
	// Lookup resolves names that are not datasets of the script.
	Lookup Lookup
}

// Compile parses a pipeline script, resolves every name, orders the
// datasets by their dependencies, and plans every query: after it returns
// without error, running the pipeline can fail only on data or I/O. Errors
// are *sql.ParseError, *expr.Error (binding) or *Error; they carry the line
// and column where there is one.
func Compile(ctx context.Context, src string, o CompileOptions) (*Graph, error) {
	script, err := sql.Parse(src)
	if err != nil {
		return nil, err
	}
	g := &Graph{Catalog: o.Catalog, Schema: o.Schema, byKey: map[string]*Dataset{}}
	var stmts []*sql.CreateStmt
	for _, st := range script.Stmts {
		c, ok := st.(*sql.CreateStmt)
		if !ok {
			return nil, &Error{Pos: st.Pos(), Msg: "a pipeline holds only CREATE statements (STREAMING TABLE, MATERIALIZED VIEW, TEMPORARY VIEW); run queries with `sluice table show`"}
		}
		stmts = append(stmts, c)
		if g.Catalog == "" && len(c.Name.Parts) == 3 {
			g.Catalog, g.Schema = c.Name.Parts[0].Name, c.Name.Parts[1].Name
		}
	}
	if len(stmts) == 0 {
		return nil, &Error{Msg: "the script defines no datasets: write at least one CREATE STREAMING TABLE or CREATE MATERIALIZED VIEW"}
	}
	if g.Catalog == "" {
		g.Catalog, g.Schema = "main", "default"
	}

	for _, c := range stmts {
		d, err := g.newDataset(c)
		if err != nil {
			return nil, err
		}
		if prev := g.byKey[d.Key()]; prev != nil {
			return nil, &Error{Pos: c.Name.Start, Msg: fmt.Sprintf("%s is defined twice (first at line %d)", d.Key(), prev.stmt.Start.Line)}
		}
		g.byKey[d.Key()] = d
		g.Datasets = append(g.Datasets, d)
	}
	for _, d := range g.Datasets {
		reads, err := g.reads(d)
		if err != nil {
			return nil, err
		}
		d.Reads = reads
	}
	if err := g.sort(); err != nil {
		return nil, err
	}
	p := &planner{ctx: ctx, g: g, lookup: o.Lookup, external: map[string]*arrow.Schema{}}
	for _, d := range g.Datasets {
		if err := p.planDataset(d); err != nil {
			return nil, err
		}
	}
	return g, nil
}

func (g *Graph) newDataset(c *sql.CreateStmt) (*Dataset, error) {
	d := &Dataset{Kind: c.Kind, stmt: c, Properties: map[string]string{}}
	if c.Kind == sql.TemporaryView {
		if len(c.Name.Parts) != 1 {
			return nil, &Error{Pos: c.Name.Start, Msg: fmt.Sprintf("a temporary view has a one-part name, not %s", sql.Format(c.Name))}
		}
		d.Name = ident.Name{Object: c.Name.Parts[0].Name}
	} else {
		n, err := g.resolve(c.Name)
		if err != nil {
			return nil, err
		}
		d.Name = n
	}
	if c.Comment != nil {
		d.Comment = c.Comment.Value
	}
	for _, p := range c.Properties {
		v, err := propertyValue(p)
		if err != nil {
			return nil, err
		}
		d.Properties[p.Key] = v
	}
	for _, el := range c.Elements {
		switch el := el.(type) {
		case *sql.Expectation:
			for _, e := range d.Expectations {
				if strings.EqualFold(e.Name, el.Name.Name) {
					return nil, &Error{Dataset: d.Key(), Pos: el.Start, Msg: fmt.Sprintf("expectation %q is defined twice", el.Name.Name)}
				}
			}
			d.Expectations = append(d.Expectations, &Expectation{Name: el.Name.Name, Action: el.OnViolation, ast: el})
		case *sql.PrimaryKey:
			if d.PrimaryKey != nil {
				return nil, &Error{Dataset: d.Key(), Pos: el.Start, Msg: "PRIMARY KEY is given twice"}
			}
			for _, k := range el.Columns {
				d.PrimaryKey = append(d.PrimaryKey, k.Name.Name)
				if k.TimeSeries {
					if d.TimeSeries != "" {
						return nil, &Error{Dataset: d.Key(), Pos: k.Start, Msg: "only one primary key column can be TIMESERIES"}
					}
					d.TimeSeries = k.Name.Name
				}
			}
		case *sql.ColumnDef:
			// Declared columns are checked against the query's output
			// when the dataset is planned.
		}
	}
	if d.PrimaryKey != nil && d.TimeSeries == "" {
		// A TTL is measured from the timestamp key; a training set
		// ignores it without one, so the online store must not have it.
		for _, p := range c.Properties {
			if p.Key == publish.PropTTL || p.Key == "ttl" {
				return nil, &Error{Dataset: d.Key(), Pos: p.Start, Msg: fmt.Sprintf("%v: declare one with TIMESERIES, PRIMARY KEY (%s, ts TIMESERIES), or drop ttl",
					publish.ErrTTLWithoutTimeKey, strings.Join(d.PrimaryKey, ", "))}
			}
		}
	}
	if d.Kind == sql.TemporaryView && (len(d.Expectations) > 0 || d.PrimaryKey != nil) {
		// DLT allows expectations on views; sluice applies them on tables.
		return nil, &Error{Dataset: d.Key(), Pos: c.Start, Msg: "expectations and primary keys belong on a STREAMING TABLE or MATERIALIZED VIEW, not a temporary view"}
	}
	return d, nil
}

func propertyValue(p *sql.Property) (string, error) {
	switch v := p.Value.(type) {
	case *sql.StringLit:
		return v.Value, nil
	case *sql.NumberLit:
		return v.Raw, nil
	case *sql.BoolLit:
		return fmt.Sprint(v.Value), nil
	case *sql.Unary:
		if n, ok := v.X.(*sql.NumberLit); ok && v.Op == sql.OpNeg {
			return "-" + n.Raw, nil
		}
	}
	return "", &Error{Pos: p.Start, Msg: fmt.Sprintf("property %q needs a literal value", p.Key)}
}

// resolve completes a table name written with one, two or three parts.
// LIVE.x (the legacy DLT spelling of "this pipeline's x") is x.
func (g *Graph) resolve(n *sql.ObjectName) (ident.Name, error) {
	parts := make([]string, len(n.Parts))
	for i, p := range n.Parts {
		parts[i] = p.Name
	}
	if len(parts) == 2 && strings.EqualFold(parts[0], "live") {
		parts = parts[1:]
	}
	switch len(parts) {
	case 1:
		parts = []string{g.Catalog, g.Schema, parts[0]}
	case 2:
		parts = []string{g.Catalog, parts[0], parts[1]}
	case 3:
	default:
		return ident.Name{}, &Error{Pos: n.Start, Msg: fmt.Sprintf("%s is not a table name: use catalog.schema.table", sql.Format(n))}
	}
	name, err := ident.Parse(strings.Join(parts, "."))
	if err != nil {
		return ident.Name{}, &Error{Pos: n.Start, Msg: err.Error()}
	}
	return name, nil
}

// refKey returns the graph key a table reference names: a temporary view's
// name if one is defined, else the resolved three-part name.
func (g *Graph) refKey(n *sql.ObjectName) (string, error) {
	if len(n.Parts) == 1 {
		if d := g.byKey[n.Parts[0].Name]; d != nil && d.Kind == sql.TemporaryView {
			return d.Key(), nil
		}
	}
	name, err := g.resolve(n)
	if err != nil {
		return "", err
	}
	return name.String(), nil
}

// reads lists the names d's query reads.
func (g *Graph) reads(d *Dataset) ([]string, error) {
	seen := map[string]bool{}
	var err error
	sql.Inspect(d.stmt.Query, func(n sql.Node) bool {
		if err != nil {
			return false
		}
		if t, ok := n.(*sql.TableRef); ok {
			var k string
			if k, err = g.refKey(t.Name); err == nil {
				seen[k] = true
			}
		}
		return true
	})
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(seen))
	for k := range seen {
		out = append(out, k)
	}
	slices.Sort(out)
	return out, nil
}

// sort orders the datasets so that each comes after the datasets it reads,
// keeping script order where there is a choice, and reports a cycle.
func (g *Graph) sort() error {
	const (
		unvisited = iota
		visiting
		done
	)
	state := map[string]int{}
	var order []*Dataset
	var stack []string
	var visit func(d *Dataset) error
	visit = func(d *Dataset) error {
		switch state[d.Key()] {
		case done:
			return nil
		case visiting:
			i := slices.Index(stack, d.Key())
			cycle := append(slices.Clone(stack[i:]), d.Key())
			return &Error{Pos: d.stmt.Start, Msg: "the datasets read each other in a cycle: " + strings.Join(cycle, " → ")}
		}
		state[d.Key()] = visiting
		stack = append(stack, d.Key())
		for _, r := range d.Reads {
			if dep := g.byKey[r]; dep != nil {
				if err := visit(dep); err != nil {
					return err
				}
			}
		}
		stack = stack[:len(stack)-1]
		state[d.Key()] = done
		order = append(order, d)
		return nil
	}
	for _, d := range g.Datasets {
		if err := visit(d); err != nil {
			return err
		}
	}
	g.Datasets = order
	return nil
}
