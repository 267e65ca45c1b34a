package agg

import (
	"fmt"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// Aggregator is the stateful aggregation operator described in the package
// doc. Create it with New; the zero value is not usable.
//
// State lives in group slots: flat slices indexed by slot number (window
// bounds, key, one aggCol per aggregate). Tumbling and sliding windows own
// a key → slot index each, so closing a window frees its slots in one go;
// session windows keep, per key, the key's open sessions sorted by start.
// Freed slots are reused, so memory follows the state the watermark allows.
type Aggregator struct {
	cfg      Config
	mem      memory.Allocator
	schema   *arrow.Schema
	kind     keyKind
	keyKinds []valKind
	windowed bool
	// dropLate: the watermark drops late rows and evicts closed windows
	// (windowed, watermark, not Complete).
	dropLate                        bool
	trackDirty                      bool  // Update mode
	size, slide, offset, gap, delay int64 // µs
	nwin                            int   // windows per row, at most

	// slots
	start, end []int64
	keyI64     []int64  // keyInt
	keyStr     []string // keyStr (raw), keyGen (encoded)
	keyNull    []bool   // keyInt, keyStr
	live       []bool
	dirtyAt    []uint32 // epoch in which the slot last changed (Update)
	free       []int32
	nlive      int
	aggs       []*aggCol

	// Tumbling, Sliding, NoWindow: one key → key id map for all windows,
	// and in each window a dense key id → slot array, so a row costs one
	// map lookup however many windows it falls into.
	kidx      keyIndex
	kref      []int32 // by key id: number of slots with the key; 0 when free
	kfree     []int32
	slotKid   []int32           // by slot: key id
	wins      map[int64]*window // by start
	winPool   []*window
	global    *window // NoWindow
	cacheOK   bool
	cacheLast int64
	cache     []*window
	cacheShut []bool

	// Session
	sessIdx   keyIndex  // key → index in sessLists
	sessLists [][]int32 // slots sorted by start; sessions neither overlap nor touch
	sessFree  []int32
	merges    []int32 // pending (dst, src) pairs within one Add

	hasWM       bool
	wm          int64 // µs
	hasMax      bool
	maxTs       int64 // µs, largest event time seen
	epoch       uint32
	dirty       []int32
	seq         int64 // rows seen: arrival number of the next row
	droppedLate int64
	droppedNull int64

	// scratch
	bk      batchKeys
	tsBuf   []int64
	rows    []int32
	slots   []int32
	intEnts []intEnt
	strEnts []strEnt
}

type window struct {
	start, end int64
	dense      []int32 // by key id: slot+1, 0 for none
	slots      []int32
}

// New returns an Aggregator for cfg, after validating it (errors wrap
// ErrConfig). Output arrays are allocated from mem (nil means
// memory.DefaultAllocator); state is ordinary Go memory.
func New(cfg Config, mem memory.Allocator) (*Aggregator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if mem == nil {
		mem = memory.DefaultAllocator
	}
	a := &Aggregator{
		cfg:      cfg,
		mem:      mem,
		schema:   cfg.outputSchema(),
		kind:     keyKindOf(cfg.Keys),
		windowed: cfg.Window.Kind != NoWindow,
		size:     cfg.Window.Size.Microseconds(),
		slide:    cfg.Window.Slide.Microseconds(),
		offset:   cfg.Window.Offset.Microseconds(),
		gap:      cfg.Window.Gap.Microseconds(),
		delay:    cfg.Delay.Microseconds(),
		wins:     map[int64]*window{},
		sessIdx:  newKeyIndex(),
		kidx:     newKeyIndex(),
		epoch:    1,
	}
	a.dropLate = a.windowed && cfg.Watermark && cfg.Mode != Complete
	a.trackDirty = cfg.Mode == Update
	for _, k := range cfg.Keys {
		a.keyKinds = append(a.keyKinds, valKindOf(k.Type))
	}
	for _, s := range cfg.Aggs {
		a.aggs = append(a.aggs, newAggCol(s))
	}
	switch cfg.Window.Kind {
	case NoWindow:
		a.global = a.newWindow(0, 0)
	case Tumbling, Sliding:
		a.nwin = int((a.size + a.slide - 1) / a.slide)
		a.cache = make([]*window, a.nwin)
		a.cacheShut = make([]bool, a.nwin)
	}
	return a, nil
}

// OutputSchema is the schema of Flush's batches.
func (a *Aggregator) OutputSchema() *arrow.Schema { return a.schema }

// Add aggregates one batch of rows. keys has one array per Config.Keys (of
// exactly that type); ts is the event time (a timestamp of any unit; nil
// only without a window and without a watermark); args has one array per
// Config.Aggs (of the Spec's type; for CountStar nil or any array, which is
// ignored); filters is nil or has one boolean array or nil per aggregate,
// and an aggregate ignores rows whose filter is not true. Every array must
// have the same length, and at least one must be given.
//
// Add does not retain or release its inputs. On error (wrapping ErrInput)
// nothing was aggregated.
func (a *Aggregator) Add(keys []arrow.Array, ts arrow.Array, args []arrow.Array, filters []arrow.Array) error {
	n, err := a.check(keys, ts, args, filters)
	if err != nil || n == 0 {
		return err
	}
	a.bk.prepare(a.kind, keys, n)
	var times []int64
	var tsNulls arrow.Array
	if ts != nil {
		times = a.micros(ts)
		if ts.NullN() > 0 {
			tsNulls = ts
		}
		for r, t := range times {
			if tsNulls != nil && tsNulls.IsNull(r) {
				continue
			}
			if !a.hasMax || t > a.maxTs {
				a.maxTs, a.hasMax = t, true
			}
		}
	}
	a.rows, a.slots = a.rows[:0], a.slots[:0]
	switch a.cfg.Window.Kind {
	case NoWindow:
		for r := 0; r < n; r++ {
			kid := noKid
			a.pair(r, a.slotIn(a.global, r, &kid))
		}
	case Tumbling, Sliding:
		a.assignWindows(n, times, tsNulls)
	case Session:
		a.assignSessions(n, times, tsNulls)
	}
	for i, c := range a.aggs {
		var arg, f arrow.Array
		if args != nil {
			arg = args[i]
		}
		if filters != nil {
			f = filters[i]
		}
		c.bind(arg, f, n)
		c.update(a.rows, a.slots, a.seq)
		c.in = aggInput{ibuf: c.in.ibuf, ubuf: c.in.ubuf, pbuf: c.in.pbuf} // drop references to the inputs
	}
	for k := 0; k < len(a.merges); k += 2 {
		dst, src := a.merges[k], a.merges[k+1]
		for _, c := range a.aggs {
			c.merge(dst, src)
		}
		a.freeSlot(src)
	}
	a.merges = a.merges[:0]
	a.bk.str, a.bk.nulls = nil, nil
	a.seq += int64(n)
	return nil
}

func (a *Aggregator) pair(r int, g int32) {
	a.rows = append(a.rows, int32(r))
	a.slots = append(a.slots, g)
	if a.trackDirty && a.dirtyAt[g] != a.epoch {
		a.dirtyAt[g] = a.epoch
		a.dirty = append(a.dirty, g)
	}
}

func floorMod(x, m int64) int64 {
	r := x % m
	if r < 0 {
		r += m
	}
	return r
}

func floorDiv(x, m int64) int64 {
	q := x / m
	if x%m < 0 {
		q--
	}
	return q
}

func (a *Aggregator) assignWindows(n int, times []int64, tsNulls arrow.Array) {
	for r := 0; r < n; r++ {
		if tsNulls != nil && tsNulls.IsNull(r) {
			a.droppedNull++
			continue
		}
		t := times[r]
		last := t - floorMod(t-a.offset, a.slide)
		if !a.cacheOK || last != a.cacheLast {
			a.fillCache(last)
		}
		kept := false
		kid := noKid
		s := last
		for i := 0; i < a.nwin; i, s = i+1, s-a.slide {
			if s <= t-a.size {
				break
			}
			if a.cacheShut[i] {
				continue
			}
			w := a.cache[i]
			if w == nil {
				w = a.windowAt(s)
				a.cache[i] = w
			}
			a.pair(r, a.slotIn(w, r, &kid))
			kept = true
		}
		if !kept {
			a.droppedLate++
		}
	}
}

// fillCache resolves which of the windows starting at last, last-slide, ...
// are closed; open ones are looked up lazily.
func (a *Aggregator) fillCache(last int64) {
	a.cacheOK, a.cacheLast = true, last
	s := last
	for i := range a.cache {
		a.cache[i] = nil
		a.cacheShut[i] = a.dropLate && a.hasWM && s+a.size <= a.wm
		s -= a.slide
	}
}

func (a *Aggregator) windowAt(s int64) *window {
	if w, ok := a.wins[s]; ok {
		return w
	}
	w := a.newWindow(s, s+a.size)
	a.wins[s] = w
	return w
}

func (a *Aggregator) newWindow(start, end int64) *window {
	var w *window
	if k := len(a.winPool); k > 0 {
		w = a.winPool[k-1]
		a.winPool = a.winPool[:k-1]
	} else {
		w = &window{}
	}
	w.start, w.end = start, end
	return w
}

// noKid marks a row whose key id has not been looked up yet.
const noKid int32 = -2

// slotIn returns row r's group slot in w, creating it if needed. *kid is
// the row's key id, looked up on first use (-1: the key has none yet).
func (a *Aggregator) slotIn(w *window, r int, kid *int32) int32 {
	k := *kid
	if k == noKid {
		v, ok := a.bk.get(&a.kidx, r)
		if !ok {
			v = -1
		}
		*kid, k = v, v
	}
	if k >= 0 && int(k) < len(w.dense) {
		if g := w.dense[k]; g != 0 {
			return g - 1
		}
	}
	g := a.allocSlot(w.start, w.end, r)
	if k < 0 {
		k = a.newKid()
		a.indexPut(&a.kidx, g, k)
		*kid = k
	}
	a.attach(w, g, k)
	return g
}

// attach puts slot g, whose key has id k, into w.
func (a *Aggregator) attach(w *window, g, k int32) {
	a.slotKid[g] = k
	a.kref[k]++
	if int(k) >= len(w.dense) {
		w.dense = append(w.dense, make([]int32, len(a.kref)-len(w.dense))...)
	}
	w.dense[k] = g + 1
	w.slots = append(w.slots, g)
}

func (a *Aggregator) newKid() int32 {
	if k := len(a.kfree); k > 0 {
		id := a.kfree[k-1]
		a.kfree = a.kfree[:k-1]
		return id
	}
	a.kref = append(a.kref, 0)
	return int32(len(a.kref) - 1)
}

// detach removes slot g from w's index and frees it, and its key id if no
// other slot has the key.
func (a *Aggregator) detach(w *window, g int32) {
	k := a.slotKid[g]
	w.dense[k] = 0
	if a.kref[k]--; a.kref[k] == 0 {
		a.indexDel(&a.kidx, g)
		a.kfree = append(a.kfree, k)
	}
	a.freeSlot(g)
}

func (a *Aggregator) assignSessions(n int, times []int64, tsNulls arrow.Array) {
	for r := 0; r < n; r++ {
		if tsNulls != nil && tsNulls.IsNull(r) {
			a.droppedNull++
			continue
		}
		lo := times[r]
		hi := lo + a.gap
		if a.dropLate && a.hasWM && hi <= a.wm {
			a.droppedLate++
			continue
		}
		li, ok := a.bk.get(&a.sessIdx, r)
		if !ok {
			g := a.allocSlot(lo, hi, r)
			li = a.newList()
			a.indexPut(&a.sessIdx, g, li)
			a.sessLists[li] = append(a.sessLists[li], g)
			a.pair(r, g)
			continue
		}
		list := a.sessLists[li]
		// Sessions are sorted and disjoint, so ends increase too: find the
		// first that ends at or after lo, then those that start by hi.
		i, j := 0, len(list)
		for i < j {
			h := int(uint(i+j) >> 1)
			if a.end[list[h]] < lo {
				i = h + 1
			} else {
				j = h
			}
		}
		j = i
		for j < len(list) && a.start[list[j]] <= hi {
			j++
		}
		var g int32
		if i == j {
			g = a.allocSlot(lo, hi, r)
			list = append(list, 0)
			copy(list[i+1:], list[i:])
			list[i] = g
		} else {
			g = list[i]
			a.start[g] = min(a.start[g], lo)
			a.end[g] = max(a.end[list[j-1]], hi)
			for k := i + 1; k < j; k++ {
				a.merges = append(a.merges, g, list[k])
			}
			list = append(list[:i+1], list[j:]...)
		}
		a.sessLists[li] = list
		a.pair(r, g)
	}
}

func (a *Aggregator) newList() int32 {
	if k := len(a.sessFree); k > 0 {
		li := a.sessFree[k-1]
		a.sessFree = a.sessFree[:k-1]
		return li
	}
	a.sessLists = append(a.sessLists, nil)
	return int32(len(a.sessLists) - 1)
}

// allocSlot takes a free slot for the group of row r in [start, end).
func (a *Aggregator) allocSlot(start, end int64, r int) int32 {
	var g int32
	if k := len(a.free); k > 0 {
		g = a.free[k-1]
		a.free = a.free[:k-1]
	} else {
		g = int32(len(a.start))
		a.growSlots()
	}
	a.start[g], a.end[g] = start, end
	bk := &a.bk
	switch a.kind {
	case keyInt:
		null := bk.nulls != nil && bk.nulls.IsNull(r)
		a.keyNull[g] = null
		if !null {
			a.keyI64[g] = bk.ints[r]
		}
	case keyStr:
		null := bk.nulls != nil && bk.nulls.IsNull(r)
		a.keyNull[g] = null
		if !null {
			a.keyStr[g] = strings.Clone(bk.str.Value(r))
		}
	case keyGen:
		a.keyStr[g] = string(bk.genKey(r))
	}
	a.live[g] = true
	a.nlive++
	return g
}

func (a *Aggregator) growSlots() {
	a.start = append(a.start, 0)
	a.end = append(a.end, 0)
	a.live = append(a.live, false)
	if a.cfg.Window.Kind != Session {
		a.slotKid = append(a.slotKid, 0)
	}
	if a.trackDirty {
		a.dirtyAt = append(a.dirtyAt, 0)
	}
	switch a.kind {
	case keyInt:
		a.keyI64 = append(a.keyI64, 0)
		a.keyNull = append(a.keyNull, false)
	case keyStr:
		a.keyStr = append(a.keyStr, "")
		a.keyNull = append(a.keyNull, false)
	case keyGen:
		a.keyStr = append(a.keyStr, "")
	}
	for _, c := range a.aggs {
		c.grow()
	}
}

func (a *Aggregator) freeSlot(g int32) {
	a.live[g] = false
	if a.trackDirty {
		a.dirtyAt[g] = 0
	}
	switch a.kind {
	case keyInt:
		a.keyI64[g], a.keyNull[g] = 0, false
	case keyStr:
		a.keyStr[g], a.keyNull[g] = "", false
	case keyGen:
		a.keyStr[g] = ""
	}
	for _, c := range a.aggs {
		c.reset(g)
	}
	a.free = append(a.free, g)
	a.nlive--
}

// indexPut maps slot g's key to v in x.
func (a *Aggregator) indexPut(x *keyIndex, g, v int32) {
	x.n++
	switch {
	case a.kind != keyGen && a.keyNull[g]:
		x.null = v
	case a.kind == keyInt:
		x.ints[a.keyI64[g]] = v
	default:
		x.strs[a.keyStr[g]] = v
	}
}

// indexDel removes slot g's key from x.
func (a *Aggregator) indexDel(x *keyIndex, g int32) {
	x.n--
	switch {
	case a.kind != keyGen && a.keyNull[g]:
		x.null = -1
	case a.kind == keyInt:
		delete(x.ints, a.keyI64[g])
	default:
		delete(x.strs, a.keyStr[g])
	}
}

// check validates Add's arguments and returns the number of rows.
func (a *Aggregator) check(keys []arrow.Array, ts arrow.Array, args, filters []arrow.Array) (int, error) {
	n := -1
	length := func(what string, arr arrow.Array) error {
		if n < 0 {
			n = arr.Len()
		} else if arr.Len() != n {
			return fmt.Errorf("%w: %s has %d rows, want %d", ErrInput, what, arr.Len(), n)
		}
		return nil
	}
	typ := func(what string, arr arrow.Array, want arrow.DataType) error {
		if arr == nil {
			return fmt.Errorf("%w: %s is nil", ErrInput, what)
		}
		if !arrow.TypeEqual(arr.DataType(), want) {
			return fmt.Errorf("%w: %s has type %s, want %s", ErrInput, what, arr.DataType(), want)
		}
		return length(what, arr)
	}
	if len(keys) != len(a.cfg.Keys) {
		return 0, fmt.Errorf("%w: %d key arrays, want %d", ErrInput, len(keys), len(a.cfg.Keys))
	}
	for i, k := range keys {
		if err := typ(fmt.Sprintf("key %q", a.cfg.Keys[i].Name), k, a.cfg.Keys[i].Type); err != nil {
			return 0, err
		}
	}
	if ts == nil {
		if a.windowed || a.cfg.Watermark {
			return 0, fmt.Errorf("%w: the event time is nil", ErrInput)
		}
	} else {
		if ts.DataType().ID() != arrow.TIMESTAMP {
			return 0, fmt.Errorf("%w: the event time has type %s, want a timestamp", ErrInput, ts.DataType())
		}
		if err := length("the event time", ts); err != nil {
			return 0, err
		}
	}
	if args != nil || a.needArgs() {
		if len(args) != len(a.aggs) {
			return 0, fmt.Errorf("%w: %d argument arrays, want %d", ErrInput, len(args), len(a.aggs))
		}
		for i, c := range a.aggs {
			what := fmt.Sprintf("the argument of %q", c.spec.Name)
			if c.spec.Func == CountStar {
				if args[i] != nil {
					if err := length(what, args[i]); err != nil {
						return 0, err
					}
				}
				continue
			}
			if err := typ(what, args[i], c.spec.Type); err != nil {
				return 0, err
			}
		}
	}
	if filters != nil {
		if len(filters) != len(a.aggs) {
			return 0, fmt.Errorf("%w: %d filter arrays, want %d", ErrInput, len(filters), len(a.aggs))
		}
		for i, f := range filters {
			if f == nil {
				continue
			}
			if err := typ(fmt.Sprintf("the filter of %q", a.aggs[i].spec.Name), f, arrow.FixedWidthTypes.Boolean); err != nil {
				return 0, err
			}
		}
	}
	if n < 0 {
		return 0, fmt.Errorf("%w: no arrays, so no row count (pass the count(*) argument)", ErrInput)
	}
	return n, nil
}

func (a *Aggregator) needArgs() bool {
	for _, c := range a.aggs {
		if c.spec.Func != CountStar {
			return true
		}
	}
	return false
}

// micros converts event times to microseconds (floor for nanoseconds).
func (a *Aggregator) micros(ts arrow.Array) []int64 {
	t := ts.(*array.Timestamp)
	vals := t.TimestampValues()
	out := grow(&a.tsBuf, len(vals))
	switch t.DataType().(*arrow.TimestampType).Unit {
	case arrow.Second:
		for i, v := range vals {
			out[i] = int64(v) * 1e6
		}
	case arrow.Millisecond:
		for i, v := range vals {
			out[i] = int64(v) * 1e3
		}
	case arrow.Microsecond:
		for i, v := range vals {
			out[i] = int64(v)
		}
	case arrow.Nanosecond:
		for i, v := range vals {
			out[i] = floorDiv(int64(v), 1e3)
		}
	}
	return out
}

// Stats returns the current counters; cheap enough to call after every
// Flush (it walks the live groups for StateBytes).
func (a *Aggregator) Stats() Stats {
	s := Stats{
		StateRows:       int64(a.nlive),
		DroppedLate:     a.droppedLate,
		DroppedNullTime: a.droppedNull,
	}
	if a.hasWM {
		s.Watermark = time.UnixMicro(a.wm).UTC()
	}
	per := int64(8+8+1+4) + 24 // bounds, live, dirty, map entry
	switch a.kind {
	case keyInt:
		per += 9
	default:
		per += 17
	}
	for _, c := range a.aggs {
		per += c.fixedBytes()
	}
	bytes := per * int64(a.nlive)
	for g, live := range a.live {
		if !live {
			continue
		}
		if a.kind != keyInt {
			bytes += int64(len(a.keyStr[g]))
		}
		for _, c := range a.aggs {
			bytes += c.varBytes(int32(g))
		}
	}
	s.StateBytes = bytes
	return s
}
