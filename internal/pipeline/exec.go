package pipeline

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/compute"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/sluice-dev/sluice/internal/engine/agg"
	"github.com/sluice-dev/sluice/internal/expr"
	"github.com/sluice-dev/sluice/internal/sql"
)

// execCtx is what steps need while running.
type execCtx struct {
	ctx  context.Context
	eval *expr.Ctx
	mem  memory.Allocator
	// read runs a static relation (the right side of a join) to the end.
	read func(n node) ([]arrow.RecordBatch, error)
}

// step is one operator of a chain. push takes a batch (which it does not
// release) and returns the batch to pass on, owned by the caller, or nil
// when it has nothing to pass on (a stateful step absorbs its input, a
// filter may remove every row). flush ends a micro-batch: a stateful step
// returns what it emits then; stateless steps return nil.
type step interface {
	push(x *execCtx, b arrow.RecordBatch) (arrow.RecordBatch, error)
	flush(x *execCtx) (arrow.RecordBatch, error)
}

// chain is the left spine of a plan, from its source up.
type chain struct {
	source *scanNode
	steps  []step
	agg    *aggStep // the chain's stateful step, if any
	// expect, when the dataset has expectations, is the last step.
	expect *expectStep
}

// newChain builds the steps of n's left spine. Joins build their hash
// tables from x.read now. exp are the dataset's expectations (nil for
// none); pre is the node whose output they read when bound on the input.
func newChain(x *execCtx, n node, exp []boundExpectation, pre node, dataset string) (*chain, error) {
	var spine []node
	for cur := n; ; {
		spine = append(spine, cur)
		if _, ok := cur.(*scanNode); ok {
			break
		}
		switch c := cur.(type) {
		case *filterNode:
			cur = c.in
		case *projectNode:
			cur = c.in
		case *joinNode:
			cur = c.left
		case *aggNode:
			cur = c.in
		}
	}
	ch := &chain{source: spine[len(spine)-1].(*scanNode)}
	var es *expectStep
	if len(exp) > 0 {
		es = &expectStep{dataset: dataset, exp: exp, counts: make([]ExpectationCounts, len(exp))}
		ch.expect = es
	}
	for i := len(spine) - 2; i >= 0; i-- {
		switch c := spine[i].(type) {
		case *filterNode:
			ch.steps = append(ch.steps, &filterStep{cond: c.cond})
		case *projectNode:
			ps := &projectStep{exprs: c.exprs, sc: c.sc}
			if es != nil && pre != nil && i == 0 && c.in == pre {
				// Expectations on the input rows: test them where both the
				// input and the output rows are at hand.
				es.project = ps
				continue
			}
			ch.steps = append(ch.steps, ps)
		case *joinNode:
			js, err := newJoinStep(x, c)
			if err != nil {
				return nil, err
			}
			ch.steps = append(ch.steps, js)
		case *aggNode:
			a, err := agg.New(c.cfg, x.mem)
			if err != nil {
				return nil, err
			}
			st := &aggStep{node: c, a: a}
			ch.agg = st
			ch.steps = append(ch.steps, st)
		}
	}
	if es != nil {
		ch.steps = append(ch.steps, es)
	}
	return ch, nil
}

// push runs b through the chain from step i and appends the output to out.
func (c *chain) pushFrom(x *execCtx, i int, b arrow.RecordBatch, out *[]arrow.RecordBatch) error {
	b.Retain()
	for ; i < len(c.steps); i++ {
		next, err := c.steps[i].push(x, b)
		b.Release()
		if err != nil {
			return err
		}
		if next == nil {
			return nil
		}
		if next.NumRows() == 0 {
			next.Release()
			return nil
		}
		b = next
	}
	*out = append(*out, b)
	return nil
}

// push runs a source batch through the chain.
func (c *chain) push(x *execCtx, b arrow.RecordBatch, out *[]arrow.RecordBatch) error {
	return c.pushFrom(x, 0, b, out)
}

// flush ends a micro-batch: each stateful step emits, and its output runs
// through the steps after it.
func (c *chain) flush(x *execCtx, out *[]arrow.RecordBatch) error {
	for i, s := range c.steps {
		b, err := s.flush(x)
		if err != nil {
			return err
		}
		if b == nil {
			continue
		}
		err = c.pushFrom(x, i+1, b, out)
		b.Release()
		if err != nil {
			return err
		}
	}
	return nil
}

// ---- stateless steps

type filterStep struct{ cond expr.Expr }

func (s *filterStep) push(x *execCtx, b arrow.RecordBatch) (arrow.RecordBatch, error) {
	mask, err := s.cond.Eval(x.eval, b)
	if err != nil {
		return nil, err
	}
	defer mask.Release()
	return expr.Filter(x.mem, b, mask)
}

func (s *filterStep) flush(*execCtx) (arrow.RecordBatch, error) { return nil, nil }

type projectStep struct {
	exprs []expr.Expr
	sc    *arrow.Schema
}

func (s *projectStep) push(x *execCtx, b arrow.RecordBatch) (arrow.RecordBatch, error) {
	cols := make([]arrow.Array, len(s.exprs))
	defer func() {
		for _, c := range cols {
			if c != nil {
				c.Release()
			}
		}
	}()
	for i, e := range s.exprs {
		a, err := e.Eval(x.eval, b)
		if err != nil {
			return nil, fmt.Errorf("evaluating %s: %w", e, err)
		}
		cols[i] = a
	}
	return array.NewRecordBatch(s.sc, cols, b.NumRows()), nil
}

func (s *projectStep) flush(*execCtx) (arrow.RecordBatch, error) { return nil, nil }

// ---- aggregation

type aggStep struct {
	node *aggNode
	a    *agg.Aggregator
}

func (s *aggStep) push(x *execCtx, b arrow.RecordBatch) (arrow.RecordBatch, error) {
	n := s.node
	var owned []arrow.Array
	defer func() {
		for _, a := range owned {
			a.Release()
		}
	}()
	eval := func(e expr.Expr) (arrow.Array, error) {
		if e == nil {
			return nil, nil
		}
		a, err := e.Eval(x.eval, b)
		if err != nil {
			return nil, fmt.Errorf("evaluating %s: %w", e, err)
		}
		owned = append(owned, a)
		return a, nil
	}
	keys := make([]arrow.Array, len(n.keys))
	for i, e := range n.keys {
		a, err := eval(e)
		if err != nil {
			return nil, err
		}
		keys[i] = a
	}
	ts, err := eval(n.ts)
	if err != nil {
		return nil, err
	}
	args := make([]arrow.Array, len(n.args))
	filters := make([]arrow.Array, len(n.filters))
	for i := range n.args {
		if args[i], err = eval(n.args[i]); err != nil {
			return nil, err
		}
		if filters[i], err = eval(n.filters[i]); err != nil {
			return nil, err
		}
	}
	if err := s.a.Add(keys, ts, args, filters); err != nil {
		return nil, err
	}
	return nil, nil
}

func (s *aggStep) flush(*execCtx) (arrow.RecordBatch, error) {
	out, err := s.a.Flush()
	if err != nil {
		return nil, err
	}
	// The aggregator names its columns as configured; the plan's schema
	// is the same shape.
	rec := array.NewRecordBatch(s.node.sc, out.Columns(), out.NumRows())
	out.Release()
	return rec, nil
}

// ---- expectations

// ExpectationCounts are an expectation's results over the rows it saw.
type ExpectationCounts struct {
	Passed int64 `json:"passed_records"`
	Failed int64 `json:"failed_records"`
}

// expectStep tests a dataset's expectations on every row it outputs,
// drops rows that fail a DROP ROW expectation, and stops the update on a
// FAIL UPDATE one. When project is set, it also computes the final
// projection, so that expectations may read the input rows.
type expectStep struct {
	dataset string
	exp     []boundExpectation
	project *projectStep
	counts  []ExpectationCounts
	dropped int64
}

func (s *expectStep) push(x *execCtx, in arrow.RecordBatch) (arrow.RecordBatch, error) {
	out := in
	if s.project != nil {
		var err error
		if out, err = s.project.push(x, in); err != nil {
			return nil, err
		}
		defer out.Release()
	}
	n := int(out.NumRows())
	drop := make([]bool, n)
	anyDrop := false
	for i, e := range s.exp {
		src := out
		if e.onInput {
			src = in
		}
		m, err := e.cond.Eval(x.eval, src)
		if err != nil {
			return nil, fmt.Errorf("evaluating expectation %s: %w", e.Name, err)
		}
		mask := m.(*array.Boolean)
		var failed int64
		for r := 0; r < n; r++ {
			if mask.IsValid(r) && mask.Value(r) {
				continue
			}
			failed++
			switch e.Action {
			case sql.ViolationDropRow:
				drop[r], anyDrop = true, true
			case sql.ViolationFailUpdate:
				row := rowJSON(src, r)
				m.Release()
				return nil, &ExpectationError{Dataset: s.dataset, Expectation: e.Name, Condition: e.Condition(), Row: row}
			}
		}
		m.Release()
		s.counts[i].Failed += failed
		s.counts[i].Passed += int64(n) - failed
	}
	if !anyDrop {
		out.Retain()
		return out, nil
	}
	b := array.NewBooleanBuilder(x.mem)
	defer b.Release()
	for _, d := range drop {
		if d {
			s.dropped++
		}
		b.Append(!d)
	}
	keep := b.NewArray()
	defer keep.Release()
	return expr.Filter(x.mem, out, keep)
}

func (s *expectStep) flush(*execCtx) (arrow.RecordBatch, error) { return nil, nil }

// rowJSON renders row r of b as a JSON object.
func rowJSON(b arrow.RecordBatch, r int) string {
	one := b.NewSlice(int64(r), int64(r+1))
	defer one.Release()
	var buf bytes.Buffer
	if err := array.RecordToJSON(one, &buf); err != nil {
		return fmt.Sprintf("(row %d: %v)", r, err)
	}
	return strings.TrimSpace(buf.String())
}

// ---- stream–static hash join

type joinStep struct {
	node  *joinNode
	right arrow.RecordBatch // the static side, one batch
	table map[string][]int32
}

func newJoinStep(x *execCtx, n *joinNode) (*joinStep, error) {
	recs, err := x.read(n.right)
	if err != nil {
		return nil, err
	}
	defer func() {
		for _, r := range recs {
			r.Release()
		}
	}()
	right, err := concat(x.mem, n.right.schema(), recs)
	if err != nil {
		return nil, err
	}
	s := &joinStep{node: n, right: right, table: map[string][]int32{}}
	keys, err := evalAll(x, n.rkeys, right)
	if err != nil {
		right.Release()
		return nil, err
	}
	defer releaseAll(keys)
	var buf []byte
	for r := 0; r < int(right.NumRows()); r++ {
		var ok bool
		if buf, ok = encodeKey(buf[:0], keys, r); ok {
			s.table[string(buf)] = append(s.table[string(buf)], int32(r))
		}
	}
	return s, nil
}

func (s *joinStep) push(x *execCtx, b arrow.RecordBatch) (arrow.RecordBatch, error) {
	keys, err := evalAll(x, s.node.lkeys, b)
	if err != nil {
		return nil, err
	}
	defer releaseAll(keys)
	semi := s.node.typ == sql.SemiJoin || s.node.typ == sql.AntiJoin
	left := s.node.typ == sql.LeftJoin
	var li, ri []int32
	var rnull []bool
	var buf []byte
	for r := 0; r < int(b.NumRows()); r++ {
		var ok bool
		buf, ok = encodeKey(buf[:0], keys, r)
		var matches []int32
		if ok {
			matches = s.table[string(buf)]
		}
		if semi {
			li = append(li, int32(r))
			ri = append(ri, int32(len(matches)))
			continue
		}
		for _, m := range matches {
			li, ri, rnull = append(li, int32(r)), append(ri, m), append(rnull, false)
		}
		if len(matches) == 0 && left {
			li, ri, rnull = append(li, int32(r)), append(ri, 0), append(rnull, true)
		}
	}
	if semi {
		return s.semi(x, b, li, ri)
	}
	out, err := s.gather(x, b, li, ri, rnull)
	if err != nil || s.node.residual == nil {
		return out, err
	}
	defer out.Release()
	return s.applyResidual(x, out, li, rnull, left)
}

// semi keeps the left rows with (SEMI) or without (ANTI) a match; counts[i]
// is the number of key matches of row i.
func (s *joinStep) semi(x *execCtx, b arrow.RecordBatch, rows, counts []int32) (arrow.RecordBatch, error) {
	anti := s.node.typ == sql.AntiJoin
	keep := array.NewBooleanBuilder(x.mem)
	defer keep.Release()
	for i := range rows {
		has := counts[i] > 0
		if has && s.node.residual != nil {
			// Test the residual against each candidate.
			var err error
			has, err = s.anyResidual(x, b, int(rows[i]))
			if err != nil {
				return nil, err
			}
		}
		keep.Append(has != anti)
	}
	mask := keep.NewArray()
	defer mask.Release()
	return expr.Filter(x.mem, b, mask)
}

func (s *joinStep) anyResidual(x *execCtx, b arrow.RecordBatch, row int) (bool, error) {
	keys, err := evalAll(x, s.node.lkeys, b.NewSlice(int64(row), int64(row+1)))
	if err != nil {
		return false, err
	}
	defer releaseAll(keys)
	buf, _ := encodeKey(nil, keys, 0)
	matches := s.table[string(buf)]
	li := make([]int32, len(matches))
	for i := range li {
		li[i] = int32(row)
	}
	joined, err := s.gather(x, b, li, matches, make([]bool, len(matches)))
	if err != nil {
		return false, err
	}
	defer joined.Release()
	m, err := s.node.residual.Eval(x.eval, joined)
	if err != nil {
		return false, err
	}
	defer m.Release()
	bm := m.(*array.Boolean)
	for i := 0; i < bm.Len(); i++ {
		if bm.IsValid(i) && bm.Value(i) {
			return true, nil
		}
	}
	return false, nil
}

// gather builds left[li] ++ right[ri] (null where rnull).
func (s *joinStep) gather(x *execCtx, b arrow.RecordBatch, li, ri []int32, rnull []bool) (arrow.RecordBatch, error) {
	lidx := int32Array(x.mem, li, nil)
	defer lidx.Release()
	ridx := int32Array(x.mem, ri, rnull)
	defer ridx.Release()
	cols := make([]arrow.Array, 0, s.node.full.NumFields())
	defer releaseAll(cols)
	for i := 0; i < int(b.NumCols()); i++ {
		a, err := take(x, b.Column(i), lidx)
		if err != nil {
			return nil, err
		}
		cols = append(cols, a)
	}
	for i := 0; i < int(s.right.NumCols()); i++ {
		a, err := take(x, s.right.Column(i), ridx)
		if err != nil {
			return nil, err
		}
		cols = append(cols, a)
	}
	return array.NewRecordBatch(s.node.full, cols, int64(len(li))), nil
}

// applyResidual filters joined rows by the residual condition; for a LEFT
// join, a left row none of whose matches pass keeps one null-extended row.
func (s *joinStep) applyResidual(x *execCtx, joined arrow.RecordBatch, li []int32, rnull []bool, left bool) (arrow.RecordBatch, error) {
	m, err := s.node.residual.Eval(x.eval, joined)
	if err != nil {
		return nil, err
	}
	defer m.Release()
	bm := m.(*array.Boolean)
	pass := make([]bool, len(li))
	for i := range li {
		pass[i] = rnull[i] || (bm.IsValid(i) && bm.Value(i))
	}
	if !left {
		return filterBools(x, joined, pass)
	}
	// Per left row: does any match pass? If none, keep its first row with
	// the right side nulled.
	var outL, outR []int32
	var outNull []bool
	for i := 0; i < len(li); {
		j := i
		anyPass := false
		for j < len(li) && li[j] == li[i] {
			anyPass = anyPass || pass[j]
			j++
		}
		for k := i; k < j; k++ {
			if pass[k] && !rnull[k] {
				outL, outR, outNull = append(outL, int32(k)), append(outR, int32(k)), append(outNull, false)
			}
		}
		if !anyPass || rnull[i] {
			outL, outR, outNull = append(outL, int32(i)), append(outR, int32(i)), append(outNull, true)
		}
		i = j
	}
	// Rebuild from the joined batch: left columns by outL, right columns by
	// outR with nulls.
	nl := joined.NumCols() - s.right.NumCols()
	lidx := int32Array(x.mem, outL, nil)
	defer lidx.Release()
	ridx := int32Array(x.mem, outR, outNull)
	defer ridx.Release()
	cols := make([]arrow.Array, 0, joined.NumCols())
	defer releaseAll(cols)
	for i := 0; i < int(joined.NumCols()); i++ {
		idx := lidx
		if int64(i) >= nl {
			idx = ridx
		}
		a, err := take(x, joined.Column(i), idx)
		if err != nil {
			return nil, err
		}
		cols = append(cols, a)
	}
	return array.NewRecordBatch(s.node.sc, cols, int64(len(outL))), nil
}

func (s *joinStep) flush(*execCtx) (arrow.RecordBatch, error) { return nil, nil }

func (s *joinStep) release() {
	if s.right != nil {
		s.right.Release()
		s.right = nil
	}
}

func filterBools(x *execCtx, b arrow.RecordBatch, keep []bool) (arrow.RecordBatch, error) {
	bb := array.NewBooleanBuilder(x.mem)
	defer bb.Release()
	bb.AppendValues(keep, nil)
	m := bb.NewArray()
	defer m.Release()
	return expr.Filter(x.mem, b, m)
}

func int32Array(mem memory.Allocator, v []int32, null []bool) arrow.Array {
	b := array.NewInt32Builder(mem)
	defer b.Release()
	if null == nil {
		b.AppendValues(v, nil)
	} else {
		valid := make([]bool, len(null))
		for i, n := range null {
			valid[i] = !n
		}
		b.AppendValues(v, valid)
	}
	return b.NewArray()
}

func take(x *execCtx, a, idx arrow.Array) (arrow.Array, error) {
	return compute.TakeArray(compute.WithAllocator(x.ctx, x.mem), a, idx)
}

func evalAll(x *execCtx, es []expr.Expr, b arrow.RecordBatch) ([]arrow.Array, error) {
	out := make([]arrow.Array, 0, len(es))
	for _, e := range es {
		a, err := e.Eval(x.eval, b)
		if err != nil {
			releaseAll(out)
			return nil, fmt.Errorf("evaluating %s: %w", e, err)
		}
		out = append(out, a)
	}
	return out, nil
}

func releaseAll(as []arrow.Array) {
	for _, a := range as {
		if a != nil {
			a.Release()
		}
	}
}

// concat makes one batch of recs.
func concat(mem memory.Allocator, sc *arrow.Schema, recs []arrow.RecordBatch) (arrow.RecordBatch, error) {
	cols := make([]arrow.Array, sc.NumFields())
	defer releaseAll(cols)
	var n int64
	for _, r := range recs {
		n += r.NumRows()
	}
	for i := range cols {
		parts := make([]arrow.Array, 0, len(recs))
		for _, r := range recs {
			parts = append(parts, r.Column(i))
		}
		if len(parts) == 0 {
			b := array.NewBuilder(mem, sc.Field(i).Type)
			cols[i] = b.NewArray()
			b.Release()
			continue
		}
		a, err := array.Concatenate(parts, mem)
		if err != nil {
			return nil, err
		}
		cols[i] = a
	}
	return array.NewRecordBatch(sc, cols, n), nil
}

// encodeKey appends row r of keys to buf as bytes that are equal exactly
// when the values are; ok is false if any value is null (nulls never join).
func encodeKey(buf []byte, keys []arrow.Array, r int) ([]byte, bool) {
	for _, k := range keys {
		if k.IsNull(r) {
			return buf, false
		}
		switch a := k.(type) {
		case *array.Int64:
			buf = binary.LittleEndian.AppendUint64(buf, uint64(a.Value(r)))
		case *array.Int32:
			buf = binary.LittleEndian.AppendUint64(buf, uint64(int64(a.Value(r))))
		case *array.Float64:
			v := a.Value(r)
			if v == 0 {
				v = 0 // -0 joins 0
			}
			buf = binary.LittleEndian.AppendUint64(buf, math.Float64bits(v))
		case *array.String:
			s := a.Value(r)
			buf = binary.AppendUvarint(buf, uint64(len(s)))
			buf = append(buf, s...)
		case *array.LargeString:
			s := a.Value(r)
			buf = binary.AppendUvarint(buf, uint64(len(s)))
			buf = append(buf, s...)
		case *array.Boolean:
			if a.Value(r) {
				buf = append(buf, 1)
			} else {
				buf = append(buf, 0)
			}
		case *array.Timestamp:
			buf = binary.LittleEndian.AppendUint64(buf, uint64(a.Value(r)))
		case *array.Date32:
			buf = binary.LittleEndian.AppendUint32(buf, uint32(a.Value(r)))
		default:
			s := k.ValueStr(r)
			buf = binary.AppendUvarint(buf, uint64(len(s)))
			buf = append(buf, s...)
		}
	}
	return buf, true
}
