package feature

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/sluice-dev/sluice/internal/feature/window"
	"github.com/sluice-dev/sluice/internal/online"
	"github.com/sluice-dev/sluice/internal/table"
)

// Lookups on a windowed feature table (docs/features.md, "Windowed
// features") compute each feature as of the label time from the table's
// feature log, with the windows the online store combines from tiles
// (window.Def.Values), so a training set holds what serving returned.

// planWindowedLookup is planLookup for a windowed feature table.
func planWindowedLookup(t *table.Table, def *window.Def, l Lookup, labelType func(col, what string) (arrow.DataType, error)) (LookupPlan, []arrow.DataType, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
	}
	props := t.Properties()
	sc := t.ArrowSchema()
	lp := LookupPlan{Table: t.Name().String(), Snapshot: t.SnapshotID(), LookupKey: l.LookupKey, TableKey: def.Keys, TimestampKey: def.TimeKey, Windowed: true}
	if l.TimestampKey != "" {
		return lp, nil, bad("%s is a windowed feature table: its windows end at the label time, so timestamp_key cannot be set", lp.Table)
	}
	if len(lp.TableKey) != len(l.LookupKey) {
		return lp, nil, bad("lookup_key has %d column(s) (%s) but the windowed table's entity has %d (%s)",
			len(l.LookupKey), strings.Join(l.LookupKey, ", "), len(lp.TableKey), strings.Join(lp.TableKey, ", "))
	}
	for i, k := range lp.TableKey {
		idx := sc.FieldIndices(k)
		if len(idx) == 0 {
			return lp, nil, bad("the table has no key column %s (columns: %s)", k, describe(sc))
		}
		lt, err := labelType(l.LookupKey[i], "lookup_key")
		if err != nil {
			return lp, nil, err
		}
		if ft := sc.Field(idx[0]).Type; classOf(ft) == classNone || classOf(ft) != classOf(lt) {
			return lp, nil, bad("lookup_key %s is %s in the labels but key %s is %s in the table", l.LookupKey[i], lt, k, ft)
		}
	}
	var err error
	if lp.TTL, err = tableTTL(props); err != nil {
		return lp, nil, err
	}
	lp.Features = slices.Clone(l.Features)
	if len(lp.Features) == 0 {
		lp.Features = def.FeatureNames()
	}
	types, err := windowedTypes(def, sc, lp.Features)
	if err != nil {
		return lp, nil, bad("%s: %v", lp.Table, err)
	}
	for _, f := range lp.Features {
		name := f
		if r, ok := l.Rename[f]; ok {
			name = r
		}
		lp.Columns = append(lp.Columns, name)
	}
	return lp, types, nil
}

// windowedTypes returns the result types of the named features.
func windowedTypes(def *window.Def, sc *arrow.Schema, features []string) ([]arrow.DataType, error) {
	var types []arrow.DataType
	for _, f := range features {
		fi := def.Feature(f)
		if fi < 0 {
			return nil, fmt.Errorf("no feature %s (features: %s)", f, strings.Join(def.FeatureNames(), ", "))
		}
		idx := sc.FieldIndices(def.Features[fi].Name)
		if len(idx) == 0 {
			return nil, fmt.Errorf("the feature log has no column %s", f)
		}
		types = append(types, window.ResultType(def.Features[fi].Function, sc.Field(idx[0]).Type))
	}
	return types, nil
}

// windowedJoin computes a windowed lookup for a chunk of labels: it reads
// the feature log at the lookup's snapshot, keeps the events of the
// chunk's entities, and evaluates each label row's windows.
func (lr *lookupRun) windowedJoin(ctx context.Context, env *joinEnv) (*matched, error) {
	def := lr.window
	n := len(env.lts)
	// The chunk's entity keys.
	labelKeys := make([]string, n)
	wanted := map[string][]window.Event{}
	var buf []byte
	row := 0
	for _, b := range env.batches {
		for i := range int(b.NumRows()) {
			key := make(online.Key, len(lr.keyIdx))
			null := false
			for k, ci := range lr.keyIdx {
				key[k] = window.ArrowValue(b.Column(ci), i)
				null = null || key[k].IsNull()
			}
			if !null {
				buf = online.AppendKey(buf[:0], key)
				labelKeys[row] = string(buf)
				wanted[labelKeys[row]] = nil
			}
			row++
		}
	}
	// Their events, from the feature log at the snapshot.
	if lr.scan {
		return nil, fmt.Errorf("%s: the feature log has row-level deletes, which windowed features do not support", lr.plan.Table)
	}
	nk := len(def.Keys)
	cols := append(append(slices.Clone(def.Keys), def.TimeKey), def.FeatureNames()...)
	if len(lr.files) > 0 {
		rdr, err := lr.tbl.ReadFiles(ctx, lr.files, cols)
		if err != nil {
			return nil, err
		}
		defer rdr.Release()
		key := make(online.Key, nk)
		for rdr.Next() {
			b := rdr.RecordBatch()
			for i := range int(b.NumRows()) {
				for k := range nk {
					key[k] = window.ArrowValue(b.Column(k), i)
				}
				buf = online.AppendKey(buf[:0], key)
				evs, ok := wanted[string(buf)]
				if !ok {
					continue
				}
				ts, ok := timeMicros(b.Column(nk), i)
				if !ok {
					continue
				}
				e := window.Event{TS: ts, Inputs: make([]online.Value, len(def.Features))}
				for j := range def.Features {
					e.Inputs[j] = window.ArrowValue(b.Column(nk+1+j), i)
				}
				wanted[string(buf)] = append(evs, e)
			}
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		if err := rdr.Err(); err != nil {
			return nil, err
		}
	}
	for k, evs := range wanted {
		slices.SortStableFunc(evs, func(a, b window.Event) int {
			switch {
			case a.TS < b.TS:
				return -1
			case a.TS > b.TS:
				return 1
			}
			return 0
		})
		wanted[k] = evs
	}
	// Each label row's windows.
	fidx := make([]int, len(lr.plan.Features))
	builders := make([]array.Builder, len(fidx))
	for j, f := range lr.plan.Features {
		fidx[j] = def.Feature(f)
		builders[j] = array.NewBuilder(memory.DefaultAllocator, lr.types[j])
		builders[j].Reserve(n)
	}
	defer func() {
		for _, b := range builders {
			b.Release()
		}
	}()
	ttl := lr.plan.ttl()
	vals := make([]online.Value, len(def.Features))
	m := &matched{match: make([]int32, n)}
	for i := range n {
		m.match[i] = int32(i)
		found := env.lok[i] && labelKeys[i] != "" && def.Values(wanted[labelKeys[i]], env.lts[i], ttl, vals)
		for j, b := range builders {
			if !found {
				b.AppendNull()
				continue
			}
			window.AppendValue(b, vals[fidx[j]])
		}
	}
	for _, b := range builders {
		m.values = append(m.values, b.NewArray())
	}
	return m, nil
}
