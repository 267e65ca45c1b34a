package agg

import (
	"cmp"
	"slices"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
)

// Flush ends a micro-batch: it advances the watermark from the event times
// added since the last Flush, returns the rows the output mode emits for
// this micro-batch (in the documented order; possibly zero rows), and
// removes the state the watermark closed. The caller owns the returned
// batch and must Release it.
func (a *Aggregator) Flush() (arrow.RecordBatch, error) {
	if a.cfg.Watermark && a.hasMax {
		if c := a.maxTs - a.delay; !a.hasWM || c > a.wm {
			a.wm, a.hasWM = c, true
		}
	}
	closing := a.dropLate && a.hasWM
	var out []int32
	switch a.cfg.Mode {
	case Append:
		if closing {
			out = a.closedSlots(nil)
		}
	case Update:
		out = make([]int32, 0, len(a.dirty))
		for _, g := range a.dirty {
			if a.live[g] && a.dirtyAt[g] == a.epoch {
				out = append(out, g)
			}
		}
		slices.Sort(out)
		out = slices.Compact(out)
	case Complete:
		out = make([]int32, 0, a.nlive)
		for g, live := range a.live {
			if live {
				out = append(out, int32(g))
			}
		}
	}
	a.sortSlots(out)
	rec := a.build(out)
	if closing {
		a.evict()
	}
	a.dirty = a.dirty[:0]
	a.epoch++
	if a.epoch == 0 { // wrapped: forget every mark
		clear(a.dirtyAt)
		a.epoch = 1
	}
	a.cacheOK = false
	return rec, nil
}

// closedSlots appends the slots of groups whose window ends at or before
// the watermark.
func (a *Aggregator) closedSlots(out []int32) []int32 {
	if a.cfg.Window.Kind == Session {
		for _, list := range a.sessLists {
			for _, g := range list {
				if a.end[g] <= a.wm {
					out = append(out, g)
				}
			}
		}
		return out
	}
	for _, w := range a.wins {
		if w.end <= a.wm {
			out = append(out, w.slots...)
		}
	}
	return out
}

// evict removes the groups whose window ends at or before the watermark.
func (a *Aggregator) evict() {
	if a.cfg.Window.Kind == Session {
		// Ends increase along a list, so the closed sessions are a prefix.
		for li, list := range a.sessLists {
			k := 0
			for k < len(list) && a.end[list[k]] <= a.wm {
				k++
			}
			if k == 0 {
				continue
			}
			if k == len(list) {
				a.indexDel(&a.sessIdx, list[0])
			}
			for _, g := range list[:k] {
				a.freeSlot(g)
			}
			list = append(list[:0], list[k:]...)
			a.sessLists[li] = list
			if len(list) == 0 {
				a.sessFree = append(a.sessFree, int32(li))
			}
		}
		return
	}
	for s, w := range a.wins {
		if w.end > a.wm {
			continue
		}
		for _, g := range w.slots {
			a.detach(w, g)
		}
		w.slots = w.slots[:0]
		delete(a.wins, s)
		a.winPool = append(a.winPool, w)
	}
}

type intEnt struct {
	start, end, key int64
	null            bool
	g               int32
}

type strEnt struct {
	start, end int64
	key        string
	null       bool
	g          int32
}

// sortSlots sorts slots in output order (window start, window end, key
// with nulls first), gathering the sort
// keys into contiguous entries first: comparing through the slot slices
// costs a cache miss per access once state outgrows the caches.
func (a *Aggregator) sortSlots(slots []int32) {
	if a.kind == keyInt {
		ents := grow(&a.intEnts, len(slots))
		for i, g := range slots {
			ents[i] = intEnt{start: a.start[g], end: a.end[g], key: a.keyI64[g], null: a.keyNull[g], g: g}
		}
		slices.SortFunc(ents, func(x, y intEnt) int {
			if x.start != y.start {
				return cmp.Compare(x.start, y.start)
			}
			if x.end != y.end {
				return cmp.Compare(x.end, y.end)
			}
			if x.null != y.null {
				if x.null {
					return -1
				}
				return 1
			}
			return cmp.Compare(x.key, y.key)
		})
		for i := range ents {
			slots[i] = ents[i].g
		}
		return
	}
	ents := grow(&a.strEnts, len(slots))
	for i, g := range slots {
		e := strEnt{start: a.start[g], end: a.end[g], key: a.keyStr[g], g: g}
		if a.kind == keyStr {
			e.null = a.keyNull[g]
		}
		ents[i] = e
	}
	slices.SortFunc(ents, func(x, y strEnt) int {
		if x.start != y.start {
			return cmp.Compare(x.start, y.start)
		}
		if x.end != y.end {
			return cmp.Compare(x.end, y.end)
		}
		if x.null != y.null {
			if x.null {
				return -1
			}
			return 1
		}
		return strings.Compare(x.key, y.key)
	})
	for i := range ents {
		slots[i] = ents[i].g
		ents[i].key = "" // do not pin freed keys
	}
}

// build makes the output batch for slots, in that order.
func (a *Aggregator) build(slots []int32) arrow.RecordBatch {
	cols := make([]arrow.Array, 0, a.schema.NumFields())
	if a.windowed {
		sb := array.NewStructBuilder(a.mem, a.schema.Field(0).Type.(*arrow.StructType))
		sb.Reserve(len(slots))
		st := sb.FieldBuilder(0).(*array.TimestampBuilder)
		en := sb.FieldBuilder(1).(*array.TimestampBuilder)
		st.Reserve(len(slots))
		en.Reserve(len(slots))
		for _, g := range slots {
			sb.Append(true)
			st.UnsafeAppend(arrow.Timestamp(a.start[g]))
			en.UnsafeAppend(arrow.Timestamp(a.end[g]))
		}
		cols = append(cols, sb.NewArray())
		sb.Release()
	}
	switch a.kind {
	case keyInt:
		b := array.NewBuilder(a.mem, a.cfg.Keys[0].Type)
		b.Reserve(len(slots))
		for _, g := range slots {
			if a.keyNull[g] {
				b.AppendNull()
			} else {
				appendInt(b, a.keyI64[g])
			}
		}
		cols = append(cols, b.NewArray())
		b.Release()
	case keyStr:
		b := array.NewStringBuilder(a.mem)
		b.Reserve(len(slots))
		for _, g := range slots {
			if a.keyNull[g] {
				b.AppendNull()
			} else {
				b.Append(a.keyStr[g])
			}
		}
		cols = append(cols, b.NewArray())
		b.Release()
	case keyGen:
		bs := make([]array.Builder, len(a.cfg.Keys))
		for i, k := range a.cfg.Keys {
			bs[i] = array.NewBuilder(a.mem, k.Type)
			bs[i].Reserve(len(slots))
		}
		vals := make([]keyValue, len(a.cfg.Keys))
		for _, g := range slots {
			// Keys were encoded by this process or validated on restore.
			if err := decodeKey(a.keyStr[g], a.keyKinds, vals); err != nil {
				panic("agg: undecodable key in state: " + err.Error())
			}
			for i, v := range vals {
				appendKeyValueTo(bs[i], a.keyKinds[i], v)
			}
		}
		for _, b := range bs {
			cols = append(cols, b.NewArray())
			b.Release()
		}
	}
	for _, c := range a.aggs {
		cols = append(cols, c.build(a.mem, slots))
	}
	rec := array.NewRecordBatch(a.schema, cols, int64(len(slots)))
	for _, c := range cols {
		c.Release()
	}
	return rec
}

func appendKeyValueTo(b array.Builder, vk valKind, v keyValue) {
	if v.null {
		b.AppendNull()
		return
	}
	switch vk {
	case vInt:
		appendInt(b, v.i)
	case vFloat:
		b.(*array.Float64Builder).Append(v.f)
	case vStr:
		b.(*array.StringBuilder).Append(v.s)
	}
}
