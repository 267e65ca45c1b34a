package feature

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/compute"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/sluice-dev/sluice/internal/table"
)

// The as-of join of one lookup and one label chunk (steps 1–4 of the
// comment in join.go), with the feature table's data files read in
// parallel: each file is a task, and a chunk's tasks, whatever their
// lookup, run at most Options.Parallelism at a time (joinEnv.tokens).
//
// Pass 1 is a max per label slot of (feature time, row ordinal), which
// is order-independent: each worker keeps its own best rows, and the
// workers' bests are merged at the end. Ordinals are fixed before reading
// (each file's first ordinal is the sum of the rows of the files before
// it, from the manifests), so ties still go to the row written last.

// joinEnv is what the lookups of one chunk share.
type joinEnv struct {
	batches []arrow.RecordBatch
	lts     []int64
	lok     []bool
	indexes *labelIndexes
	tokens  chan struct{} // a file task holds one while it runs
}

func newJoinEnv(batches []arrow.RecordBatch, lts []int64, lok []bool, parallelism int) *joinEnv {
	return &joinEnv{batches: batches, lts: lts, lok: lok, indexes: newLabelIndexes(batches, lts, lok),
		tokens: make(chan struct{}, parallelism)}
}

// fileTask is one data file of a lookup's snapshot: its rows are the
// ordinals [base, base+file.Rows). scan (instead of a file) reads the
// whole snapshot through the table's scan, which applies row deletes.
type fileTask struct {
	file table.ChangedFile
	base int64
	scan bool
}

// tasks returns the snapshot's files as tasks, in the stable order.
func (lr *lookupRun) tasks() []fileTask {
	if lr.plan.Snapshot == 0 {
		return nil
	}
	if lr.scan {
		return []fileTask{{scan: true}}
	}
	out := make([]fileTask, len(lr.files))
	var base int64
	for i, f := range lr.files {
		out[i] = fileTask{file: f, base: base}
		base += f.Rows
	}
	return out
}

// read streams columns cols of the task's rows, calling fn with each
// batch and the ordinal of its first row.
func (lr *lookupRun) read(ctx context.Context, tk fileTask, cols []string, fn func(rec arrow.RecordBatch, base int64) error) error {
	var rdr array.RecordReader
	var err error
	if tk.scan {
		rdr, err = lr.tbl.ScanAt(ctx, lr.plan.Snapshot, table.ScanOptions{Columns: cols})
	} else {
		rdr, err = lr.tbl.ReadFiles(ctx, []table.ChangedFile{tk.file}, cols)
	}
	if err != nil {
		return err
	}
	defer rdr.Release()
	base := tk.base
	for rdr.Next() {
		rec := rdr.RecordBatch()
		if err := fn(rec, base); err != nil {
			return err
		}
		base += rec.NumRows()
	}
	if err := rdr.Err(); err != nil {
		return err
	}
	if !tk.scan && base-tk.base != tk.file.Rows {
		return fmt.Errorf("data file %s has %d rows, its manifest says %d", tk.file.Path, base-tk.base, tk.file.Rows)
	}
	return nil
}

// runTasks runs fn(worker, i) for i in [0, n) on up to env's parallelism
// workers, each task holding a token. It returns the first error; after
// one, the remaining tasks are skipped. workers is how many distinct
// worker numbers fn may see.
func (env *joinEnv) runTasks(ctx context.Context, n int, fn func(worker, i int) error) (workers int, err error) {
	workers = min(n, cap(env.tokens))
	var next atomic.Int64
	var failed atomic.Bool
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !failed.Load() {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				select {
				case env.tokens <- struct{}{}:
				case <-ctx.Done():
					errs[w] = ctx.Err()
					failed.Store(true)
					return
				}
				err := fn(w, i)
				<-env.tokens
				if err != nil {
					errs[w] = err
					failed.Store(true)
					return
				}
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return workers, err
		}
	}
	return workers, nil
}

// best is pass 1's state: for each position p of a label index's order,
// the newest feature row filed there (ord -1: none).
type best struct {
	ts  []int64
	ord []int64
}

func newBest(n int) best {
	b := best{ts: make([]int64, n), ord: make([]int64, n)}
	for i := range b.ord {
		b.ord[i] = -1
	}
	return b
}

// merge keeps, in each slot, the greater (time, ordinal) of b and o.
func (b best) merge(o best) {
	for p, ord := range o.ord {
		if ord < 0 {
			continue
		}
		if b.ord[p] < 0 || o.ts[p] > b.ts[p] || (o.ts[p] == b.ts[p] && ord > b.ord[p]) {
			b.ts[p], b.ord[p] = o.ts[p], ord
		}
	}
}

// asOf computes the lookup's matches for the chunk of env.
func (lr *lookupRun) asOf(ctx context.Context, env *joinEnv) (*matched, error) {
	n := len(env.lts)
	hasTs := lr.plan.TimestampKey != ""
	// 1. The label index, shared with the chunk's other lookups on the
	// same label columns.
	x := env.indexes.get(lr.keyIdx)
	tasks := lr.tasks()

	// 2. Pass 1: keys and timestamps, a file per task.
	cols := slices.Clone(lr.plan.TableKey)
	if hasTs {
		cols = append(cols, lr.plan.TimestampKey)
	}
	bests := make([]best, min(len(tasks), cap(env.tokens)))
	_, err := env.runTasks(ctx, len(tasks), func(w, i int) error {
		if bests[w].ord == nil {
			bests[w] = newBest(len(x.order))
		}
		return lr.pass1(ctx, x, tasks[i], cols, bests[w])
	})
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", lr.plan.Table, err)
	}
	var b best
	for _, o := range bests {
		switch {
		case o.ord == nil:
		case b.ord == nil:
			b = o
		default:
			b.merge(o)
		}
	}
	bests = nil

	// 3. Carry each entity's newest row forward; apply the TTL. Labels
	// without a time match nothing in a table with a timestamp key.
	matchOrd := make([]int64, n)
	for i := range matchOrd {
		matchOrd[i] = -1
	}
	if b.ord != nil {
		for e := range x.entities() {
			lo := x.start[e]
			if hasTs {
				lo = x.timed[e]
			}
			runOrd, runTs := int64(-1), int64(0)
			for p := lo; p < x.start[e+1]; p++ {
				if b.ord[p] >= 0 {
					runOrd, runTs = b.ord[p], b.ts[p]
				}
				if runOrd < 0 {
					continue
				}
				if hasTs && lr.ttlMicro > 0 && x.sts[p]-runTs > lr.ttlMicro {
					continue
				}
				matchOrd[x.order[p]] = runOrd
			}
		}
	}
	b = best{}

	// 4. Pass 2: the matched rows' features.
	winners := make([]int64, 0, n)
	for _, o := range matchOrd {
		if o >= 0 {
			winners = append(winners, o)
		}
	}
	slices.Sort(winners)
	winners = slices.Compact(winners)
	res := &matched{match: make([]int32, n)}
	for i, o := range matchOrd {
		res.match[i] = -1
		if o >= 0 {
			w, _ := slices.BinarySearch(winners, o)
			res.match[i] = int32(w)
		}
	}
	matchOrd = nil
	// The tasks of files that hold winners, and their winners.
	var need []fileTask
	var wins [][]int64
	for _, tk := range tasks {
		lo, hi := 0, len(winners)
		if !tk.scan {
			lo, _ = slices.BinarySearch(winners, tk.base)
			hi, _ = slices.BinarySearch(winners, tk.base+tk.file.Rows)
		}
		if lo < hi {
			need = append(need, tk)
			wins = append(wins, winners[lo:hi])
		}
	}
	parts := make([][]arrow.Array, len(need)) // per task: one per feature
	defer func() {
		for _, ps := range parts {
			for _, p := range ps {
				if p != nil {
					p.Release()
				}
			}
		}
	}()
	_, err = env.runTasks(ctx, len(need), func(_, i int) error {
		var err error
		parts[i], err = lr.pass2(ctx, need[i], wins[i])
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", lr.plan.Table, err)
	}
	for j, typ := range lr.types {
		var v arrow.Array
		col := make([]arrow.Array, len(parts))
		for i := range parts {
			col[i] = parts[i][j]
		}
		switch len(col) {
		case 0:
			v = array.MakeArrayOfNull(memory.DefaultAllocator, typ, 0)
		case 1:
			v = col[0]
			v.Retain()
		default:
			c, err := array.Concatenate(col, memory.DefaultAllocator)
			if err != nil {
				res.release()
				return nil, err
			}
			v = c
		}
		res.values = append(res.values, v)
	}
	return res, nil
}

// pass1 files the rows of one task into b: a feature row of entity e at
// time t goes to the first of e's labels at or after t, where it replaces
// the row filed there if t is at least as new (rows come in ordinal
// order within a worker; merge settles ties between workers).
//
// A batch is processed in steps over all its rows rather than row by
// row, so that the hash table's cache misses overlap: hash the keys
// (consecutive rows with one key, as in tables clustered by key, are
// probed once), load each probe's first slot, resolve the entities, then
// file the rows.
func (lr *lookupRun) pass1(ctx context.Context, x *labelIndex, tk fileTask, cols []string, b best) error {
	hasTs := lr.plan.TimestampKey != ""
	nk := len(lr.plan.TableKey)
	keys := x.keys
	var fts []int64
	var fok []bool
	fkeys := make([]arrow.Array, nk)
	var enc keyEncoder
	var last []byte
	var (
		run    []int32  // per row: its probe, or -1 (no key)
		hs     []uint64 // per probe: the key's hash
		heads  []int32  // per probe: its first row
		first  []uint64 // per probe: the first slot probed
		ents   []int32  // per probe: the entity, or -1
		prevOK bool
	)
	return lr.read(ctx, tk, cols, func(rec arrow.RecordBatch, base int64) error {
		m := int(rec.NumRows())
		for j := range nk {
			fkeys[j] = rec.Column(j)
		}
		enc.reset(fkeys)
		if hasTs {
			fts, fok = grow(fts, m), growBool(fok, m)
			timesOf(rec.Column(nk), fts, fok)
		}
		if cap(run) < m {
			run = make([]int32, m)
		}
		run = run[:m]
		hs, heads = hs[:0], heads[:0]
		// Hash the key of each run of equal keys.
		prevOK = false
		for i := range m {
			k, ok := enc.encode(i)
			if !ok || (hasTs && !fok[i]) {
				run[i] = -1 // a row without a key or time never matches
				continue
			}
			if prevOK && bytes.Equal(k, last) {
				run[i] = int32(len(hs) - 1)
				continue
			}
			last, prevOK = append(last[:0], k...), true
			run[i] = int32(len(hs))
			hs = append(hs, keys.hash(k))
			heads = append(heads, int32(i))
		}
		// Load the first slots (independent loads), then resolve.
		if cap(first) < len(hs) {
			first, ents = make([]uint64, len(hs)), make([]int32, len(hs))
		}
		first, ents = first[:len(hs)], ents[:len(hs)]
		for j, h := range hs {
			first[j] = keys.slots[h&keys.mask]
		}
		for j, h := range hs {
			if first[j] == 0 {
				ents[j] = -1
				continue
			}
			k, _ := enc.encode(int(heads[j]))
			ents[j] = keys.find(k, h)
		}
		// File the rows.
		for i := range m {
			if run[i] < 0 {
				continue
			}
			e := ents[run[i]]
			if e < 0 {
				continue
			}
			lo, end := int(x.start[e]), int(x.start[e+1])
			t := int64(math.MinInt64)
			if hasTs {
				t = fts[i]
				// The first label at or after t.
				hi := end
				lo = int(x.timed[e])
				for lo < hi {
					mid := int(uint(lo+hi) >> 1)
					if x.sts[mid] < t {
						lo = mid + 1
					} else {
						hi = mid
					}
				}
				if lo == end {
					continue
				}
			} else if lo == end {
				continue
			}
			if b.ord[lo] < 0 || t >= b.ts[lo] {
				b.ts[lo], b.ord[lo] = t, base+int64(i)
			}
		}
		return nil
	})
}

// pass2 reads the features of one task's rows and returns, per feature,
// the rows with ordinals wins (sorted), in that order.
func (lr *lookupRun) pass2(ctx context.Context, tk fileTask, wins []int64) ([]arrow.Array, error) {
	tctx := compute.WithAllocator(ctx, memory.DefaultAllocator)
	parts := make([][]arrow.Array, len(lr.plan.Features))
	defer func() {
		for _, ps := range parts {
			for _, p := range ps {
				p.Release()
			}
		}
	}()
	ib := array.NewInt32Builder(memory.DefaultAllocator)
	defer ib.Release()
	next := 0
	err := lr.read(ctx, tk, lr.plan.Features, func(rec arrow.RecordBatch, base int64) error {
		end := base + rec.NumRows()
		for next < len(wins) && wins[next] < end {
			ib.Append(int32(wins[next] - base))
			next++
		}
		if ib.Len() == 0 {
			return nil
		}
		idx := ib.NewInt32Array()
		defer idx.Release()
		for j := range lr.plan.Features {
			v, err := compute.TakeArray(tctx, rec.Column(j), idx)
			if err != nil {
				return err
			}
			parts[j] = append(parts[j], v)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if next != len(wins) {
		return nil, fmt.Errorf("%d matched rows were not found on the second pass", len(wins)-next)
	}
	out := make([]arrow.Array, len(parts))
	for j, ps := range parts {
		switch len(ps) {
		case 1:
			out[j] = ps[0]
			out[j].Retain()
		default:
			c, err := array.Concatenate(ps, memory.DefaultAllocator)
			if err != nil {
				for _, o := range out[:j] {
					o.Release()
				}
				return nil, err
			}
			out[j] = c
		}
	}
	return out, nil
}
