package feature

import (
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/apache/arrow-go/v18/arrow"
)

// labelIndex is step 1 of the as-of join for one label chunk and one
// lookup key (a list of label columns): the chunk's label rows grouped by
// entity (distinct key) and, within an entity, sorted by time, labels
// without a time first. Lookups on the same label columns share it. It is
// read-only once built.
type labelIndex struct {
	keys *keyTable
	// Entity e's labels are order[start[e]:start[e+1]], as row numbers
	// within the chunk; those from timed[e] on have a time, in
	// non-decreasing order (sts holds them, by position in order).
	start []int32
	timed []int32
	order []int32
	sts   []int64
}

func (x *labelIndex) entities() int { return len(x.start) - 1 }

// fixedKey reports whether keys of these label columns encode to exactly
// 8 bytes (one integer, float or time column; see keyEncoder).
func fixedKey(types []arrow.DataType) bool {
	if len(types) != 1 {
		return false
	}
	switch classOf(types[0]) {
	case classInt, classFloat, classTime:
		return true
	}
	return false
}

// buildLabelIndex indexes the chunk's rows by the key columns keyIdx. A
// row with a null in a key column belongs to no entity.
func buildLabelIndex(batches []arrow.RecordBatch, keyIdx []int, lts []int64, lok []bool) *labelIndex {
	n := len(lts)
	var types []arrow.DataType
	for _, c := range keyIdx {
		types = append(types, batches[0].Column(c).DataType())
	}
	x := &labelIndex{keys: newKeyTable(n, fixedKey(types))}
	ent := make([]int32, n)
	var enc keyEncoder
	cols := make([]arrow.Array, len(keyIdx))
	off := 0
	for _, b := range batches {
		for j, c := range keyIdx {
			cols[j] = b.Column(c)
		}
		enc.reset(cols)
		for i := range int(b.NumRows()) {
			k, ok := enc.encode(i)
			if !ok {
				ent[off+i] = -1
				continue
			}
			ent[off+i] = x.keys.add(k)
		}
		off += int(b.NumRows())
	}
	ents := x.keys.n

	// Counting sort by entity, then by (has a time, time) within each.
	x.start = make([]int32, ents+1)
	for _, e := range ent {
		if e >= 0 {
			x.start[e+1]++
		}
	}
	for i := 1; i < len(x.start); i++ {
		x.start[i] += x.start[i-1]
	}
	x.order = make([]int32, x.start[ents])
	fill := slices.Clone(x.start[:ents])
	for i, e := range ent {
		if e >= 0 {
			x.order[fill[e]] = int32(i)
			fill[e]++
		}
	}
	x.timed = fill // reused: every fill[e] is start[e+1] now
	x.sts = make([]int64, len(x.order))
	for e := range ents {
		g := x.order[x.start[e]:x.start[e+1]]
		if len(g) > 1 {
			slices.SortStableFunc(g, func(a, b int32) int {
				switch {
				case lok[a] != lok[b]:
					if lok[a] {
						return 1
					}
					return -1
				case !lok[a]:
					return 0
				}
				return cmpInt64(lts[a], lts[b])
			})
		}
		t := x.start[e]
		for p := x.start[e]; p < x.start[e+1]; p++ {
			i := x.order[p]
			x.sts[p] = lts[i]
			if !lok[i] {
				t = p + 1
			}
		}
		x.timed[e] = t
	}
	return x
}

// labelIndexes builds each chunk's label indexes once per distinct lookup
// key, for the lookups that share it. It is safe for concurrent use.
type labelIndexes struct {
	batches []arrow.RecordBatch
	lts     []int64
	lok     []bool

	mu    sync.Mutex
	byKey map[string]*indexOnce
}

type indexOnce struct {
	once sync.Once
	x    *labelIndex
}

func newLabelIndexes(batches []arrow.RecordBatch, lts []int64, lok []bool) *labelIndexes {
	return &labelIndexes{batches: batches, lts: lts, lok: lok, byKey: map[string]*indexOnce{}}
}

// get returns the index of the label columns keyIdx, building it on first
// use (other callers wait for it).
func (l *labelIndexes) get(keyIdx []int) *labelIndex {
	var b strings.Builder
	for _, c := range keyIdx {
		b.WriteString(strconv.Itoa(c))
		b.WriteByte(',')
	}
	l.mu.Lock()
	o := l.byKey[b.String()]
	if o == nil {
		o = &indexOnce{}
		l.byKey[b.String()] = o
	}
	l.mu.Unlock()
	o.once.Do(func() { o.x = buildLabelIndex(l.batches, keyIdx, l.lts, l.lok) })
	return o.x
}
