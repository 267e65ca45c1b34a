package pipeline

import (
	"context"
	"fmt"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/sluice-dev/sluice/internal/expr"
	"github.com/sluice-dev/sluice/internal/ident"
	"github.com/sluice-dev/sluice/internal/sql"
)

// Query is one streaming dataset's query run over batches that the caller
// supplies, without tables: the engine of a streaming table with its
// source and sink cut off. Benchmarks and tests use it to drive the
// operators directly; static tables a query joins must be given as
// Static batches. A Query is not goroutine-safe.
type Query struct {
	x     *execCtx
	chain *chain
	plan  *queryPlan
}

// QueryOptions configures [NewQuery].
type QueryOptions struct {
	// Tables are the schemas of the tables the query reads, by three-part
	// name.
	Tables map[string]*arrow.Schema
	// Static holds the rows of tables read without STREAM (join sides).
	Static map[string][]arrow.RecordBatch
	Mem    memory.Allocator
	// Now is current_timestamp(). Default time.Now at NewQuery.
	Now time.Time
}

// NewQuery compiles src, a script whose last statement is the streaming
// table to run (earlier statements may define temporary views it reads),
// against the given table schemas.
func NewQuery(ctx context.Context, src string, o QueryOptions) (*Query, error) {
	if o.Mem == nil {
		o.Mem = memory.DefaultAllocator
	}
	if o.Now.IsZero() {
		o.Now = time.Now()
	}
	lookup := func(_ context.Context, name ident.Name) (*arrow.Schema, error) {
		if sc, ok := o.Tables[name.String()]; ok {
			return sc, nil
		}
		return nil, fmt.Errorf("%w: %s", ErrUnknownTable, name)
	}
	g, err := Compile(ctx, src, CompileOptions{Lookup: lookup})
	if err != nil {
		return nil, err
	}
	var d *Dataset
	for _, c := range g.Datasets {
		if c.Kind != sql.TemporaryView {
			d = c
		}
	}
	if d == nil {
		return nil, fmt.Errorf("%w: the script defines no table to run", ErrInvalid)
	}
	x := &execCtx{ctx: ctx, mem: o.Mem, eval: &expr.Ctx{Mem: o.Mem, Now: o.Now}}
	x.read = func(n node) ([]arrow.RecordBatch, error) {
		s := leftmost(n)
		recs, ok := o.Static[s.key]
		if !ok {
			return nil, fmt.Errorf("no static rows given for %s", s.key)
		}
		ch, err := newChain(x, n, nil, nil, "")
		if err != nil {
			return nil, err
		}
		var out []arrow.RecordBatch
		for _, b := range recs {
			if err := ch.push(x, b, &out); err != nil {
				return nil, err
			}
		}
		return out, ch.flush(x, &out)
	}
	ch, err := newChain(x, d.plan.root, d.plan.exp, d.plan.pre, d.Key())
	if err != nil {
		return nil, err
	}
	return &Query{x: x, chain: ch, plan: d.plan}, nil
}

// Source is the table the query streams from.
func (q *Query) Source() string { return q.plan.source.key }

// Schema is the query's output schema.
func (q *Query) Schema() *arrow.Schema { return q.plan.root.schema() }

// Push runs a batch of the source through the query and appends output
// batches (owned by the caller) to out.
func (q *Query) Push(b arrow.RecordBatch, out *[]arrow.RecordBatch) error {
	return q.chain.push(q.x, b, out)
}

// Flush ends a micro-batch: stateful operators emit (and the watermark
// moves). Output batches are appended to out.
func (q *Query) Flush(out *[]arrow.RecordBatch) error {
	return q.chain.flush(q.x, out)
}
