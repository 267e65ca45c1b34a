package window

import (
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"time"

	"github.com/sluice-dev/sluice/internal/online"
)

// Pos orders the rows of the feature log as a reader sees them: the data
// sequence number of the commit that added the row's file, the file's
// position among that commit's files, the row's position in its file.
// Every blob records the position of the last row folded into it, so
// folding the same rows again (a sync replayed after a crash) changes
// nothing.
type Pos struct{ Seq, File, Row int64 }

func (p Pos) after(q Pos) bool {
	switch {
	case p.Seq != q.Seq:
		return p.Seq > q.Seq
	case p.File != q.File:
		return p.File > q.File
	}
	return p.Row > q.Row
}

// Event is one row of the feature log.
type Event struct {
	Key    online.Key
	TS     int64 // event time, µs
	Pos    Pos
	Inputs []online.Value // one per feature of the Def, in order
}

// expireGrace is added to every blob's expiry, so that a read at a clock
// slightly ahead of the writer's still finds what it needs.
const expireGrace = time.Minute

// Blob keys: AppendKey(entity) then 'm' for the entity's meta blob (newest
// event time, values of last without window) or the tile level (0-3) and
// the chunk's start (8 bytes big-endian, sign bit flipped).
const metaMark = 'm'

func appendChunkKey(dst []byte, key online.Key, level int, chunk int64) []byte {
	dst = online.AppendKey(dst, key)
	dst = append(dst, byte(level))
	return binary.BigEndian.AppendUint64(dst, uint64(chunk)^(1<<63))
}

func appendMetaKey(dst []byte, key online.Key) []byte {
	return append(online.AppendKey(dst, key), metaMark)
}

// chunk is a decoded chunk blob: the tiles of one entity, level and
// chunk, each with one acc per windowed feature.
type chunk struct {
	pos    Pos
	starts []int64 // sorted
	tiles  [][]acc
}

// meta is a decoded meta blob.
type meta struct {
	pos    Pos
	newest int64
	last   []acc // one per feature without window (all "last")
}

const blobFormat = 1

func appendPos(dst []byte, p Pos) []byte {
	dst = binary.AppendVarint(dst, p.Seq)
	dst = binary.AppendVarint(dst, p.File)
	return binary.AppendVarint(dst, p.Row)
}

func decodePos(b []byte) (Pos, []byte, error) {
	var p Pos
	for _, x := range []*int64{&p.Seq, &p.File, &p.Row} {
		v, n := binary.Varint(b)
		if n <= 0 {
			return p, nil, errCorrupt
		}
		*x, b = v, b[n:]
	}
	return p, b, nil
}

// decodeHead reads a blob's format byte and position.
func decodeHead(b []byte) (Pos, []byte, error) {
	if b[0] != blobFormat {
		return Pos{}, nil, fmt.Errorf("%w: format %d", errCorrupt, b[0])
	}
	return decodePos(b[1:])
}

// foldUnseen calls fold for each event (by index into events) after *pos,
// the position of the last event the blob has folded (any when the blob
// is fresh), moving *pos along; it reports whether any was folded.
func foldUnseen(events []Event, idx []int, pos *Pos, fresh bool, fold func(e *Event)) bool {
	applied := false
	for _, i := range idx {
		e := &events[i]
		if !fresh && !e.Pos.after(*pos) {
			continue
		}
		applied = true
		*pos = e.Pos
		fold(e)
	}
	return applied
}

func (d *Def) encodeChunk(c *chunk) []byte {
	b := []byte{blobFormat}
	b = appendPos(b, c.pos)
	b = binary.AppendUvarint(b, uint64(len(c.starts)))
	for i, s := range c.starts {
		b = binary.AppendVarint(b, s)
		for j, fi := range d.windowed {
			b = appendAcc(b, d.Features[fi].Function, &c.tiles[i][j])
		}
	}
	return b
}

func (d *Def) decodeChunk(b []byte) (*chunk, error) {
	c := &chunk{}
	if len(b) == 0 {
		return c, nil
	}
	var err error
	if c.pos, b, err = decodeHead(b); err != nil {
		return nil, err
	}
	n, b, err := uvarint(b)
	if err != nil || n > uint64(len(b)) {
		return nil, errCorrupt
	}
	c.starts = make([]int64, n)
	c.tiles = make([][]acc, n)
	for i := range c.starts {
		s, k := binary.Varint(b)
		if k <= 0 {
			return nil, errCorrupt
		}
		c.starts[i], b = s, b[k:]
		c.tiles[i] = make([]acc, len(d.windowed))
		for j, fi := range d.windowed {
			if b, err = decodeAcc(b, d.Features[fi].Function, &c.tiles[i][j]); err != nil {
				return nil, fmt.Errorf("%w: %w", errCorrupt, err)
			}
		}
	}
	if len(b) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes", errCorrupt, len(b))
	}
	return c, nil
}

// tile returns the accs of the tile at start, creating it.
func (c *chunk) tile(start int64, n int) []acc {
	i, found := slices.BinarySearch(c.starts, start)
	if !found {
		c.starts = slices.Insert(c.starts, i, start)
		c.tiles = slices.Insert(c.tiles, i, make([]acc, n))
	}
	return c.tiles[i]
}

func (c *chunk) find(start int64) []acc {
	if i, found := slices.BinarySearch(c.starts, start); found {
		return c.tiles[i]
	}
	return nil
}

// windowless returns the indexes of the features without window.
func (d *Def) windowless() []int {
	var out []int
	for i, f := range d.Features {
		if f.w == 0 {
			out = append(out, i)
		}
	}
	return out
}

func (d *Def) encodeMeta(m *meta) []byte {
	b := []byte{blobFormat}
	b = appendPos(b, m.pos)
	b = binary.AppendVarint(b, m.newest)
	for i := range m.last {
		b = appendAcc(b, "last", &m.last[i])
	}
	return b
}

func (d *Def) decodeMeta(b []byte) (*meta, error) {
	m := &meta{last: make([]acc, len(d.Features)-len(d.windowed)), newest: minTime}
	if len(b) == 0 {
		return m, nil
	}
	var err error
	if m.pos, b, err = decodeHead(b); err != nil {
		return nil, err
	}
	v, n := binary.Varint(b)
	if n <= 0 {
		return nil, errCorrupt
	}
	m.newest, b = v, b[n:]
	for i := range m.last {
		if b, err = decodeAcc(b, "last", &m.last[i]); err != nil {
			return nil, fmt.Errorf("%w: %w", errCorrupt, err)
		}
	}
	if len(b) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes", errCorrupt, len(b))
	}
	return m, nil
}

const minTime = -1 << 63

// Fold adds the events (rows of the feature log, in Pos order) to the
// online tiles of table in store. ttl is the table's TTL (0: none); now is
// the wall clock, against which tiles too old to be read again are
// skipped. Folding events a blob has already seen changes nothing.
func (d *Def) Fold(ctx context.Context, store online.BlobStore, table string, ttl time.Duration, events []Event, now time.Time) error {
	type group struct {
		key    []byte
		level  int // -1: meta
		chunk  int64
		events []int
		maxTS  int64
	}
	groups := map[string]*group{}
	var order []*group
	add := func(key []byte, level int, chunk int64, i int) {
		g := groups[string(key)]
		if g == nil {
			g = &group{key: key, level: level, chunk: chunk, maxTS: minTime}
			groups[string(key)] = g
			order = append(order, g)
		}
		g.events = append(g.events, i)
		g.maxTS = max(g.maxTS, events[i].TS)
	}
	nowUS := now.UnixMicro()
	for i := range events {
		e := &events[i]
		if len(e.Inputs) != len(d.Features) {
			return fmt.Errorf("window: event with %d inputs for %d features", len(e.Inputs), len(d.Features))
		}
		add(appendMetaKey(nil, e.Key), -1, 0, i)
		for l := d.levels; l < numLevels; l++ {
			if d.retention[l] == 0 {
				continue // no window reads this level
			}
			c := floorTo(e.TS, chunkSize[l])
			// A chunk whose tiles no read at now or later will use.
			if c+chunkSize[l]+d.retention[l] < nowUS-expireGrace.Microseconds() {
				continue
			}
			add(appendChunkKey(nil, e.Key, l, c), l, c, i)
		}
	}
	ups := make([]online.BlobUpdate, 0, len(order))
	lastIdx := d.windowless()
	for _, g := range order {
		g := g
		if g.level < 0 {
			var exp time.Time
			if ttl > 0 {
				// Rounded up to the minute: reads judge the TTL from the
				// newest event, so the expiry only frees space, and an
				// expiry that moves with every fold would cost two index
				// writes per entity and fold.
				exp = time.UnixMicro(ceilTo(max(g.maxTS, nowUS)+(ttl+expireGrace).Microseconds(), usMinute))
			}
			ups = append(ups, online.BlobUpdate{Key: g.key, ExpireAt: exp, Apply: func(old []byte) ([]byte, error) {
				m, err := d.decodeMeta(old)
				if err != nil {
					return nil, err
				}
				applied := foldUnseen(events, g.events, &m.pos, len(old) == 0, func(e *Event) {
					m.newest = max(m.newest, e.TS)
					for j, fi := range lastIdx {
						m.last[j].add("last", e.Inputs[fi], e.TS)
					}
				})
				if !applied {
					return old, nil
				}
				return d.encodeMeta(m), nil
			}})
			continue
		}
		exp := time.UnixMicro(g.chunk + chunkSize[g.level] + d.retention[g.level]).Add(expireGrace)
		ups = append(ups, online.BlobUpdate{Key: g.key, ExpireAt: exp, Apply: func(old []byte) ([]byte, error) {
			c, err := d.decodeChunk(old)
			if err != nil {
				return nil, err
			}
			applied := foldUnseen(events, g.events, &c.pos, len(old) == 0, func(e *Event) {
				accs := c.tile(floorTo(e.TS, tileSize[g.level]), len(d.windowed))
				for j, fi := range d.windowed {
					accs[j].add(d.Features[fi].Function, e.Inputs[fi], e.TS)
				}
			})
			if !applied {
				return old, nil
			}
			return d.encodeChunk(c), nil
		}})
	}
	if err := store.UpdateBlobs(ctx, table, ups); err != nil {
		return fmt.Errorf("folding %d events into the tiles of %s: %w", len(events), table, err)
	}
	return nil
}

// Read returns, for each key, the features at positions features (indexes
// into d.Features) as of now, from the online tiles of table: one Result
// per key with the entity's newest event time, NotFound for an entity
// never seen (or expired), OutsideMaxAge when its newest event is older
// than ttl.
func (d *Def) Read(ctx context.Context, store online.BlobStore, table string, ttl time.Duration, keys []online.Key, features []int, now time.Time) ([]online.Result, error) {
	if now.IsZero() {
		now = time.Now()
	}
	t := now.UnixMicro()
	// The tiles each requested windowed feature combines, the same for
	// every key.
	plans := make([][]tileRef, len(features))
	need := map[[2]int64]bool{} // (level, chunk)
	var chunks [][2]int64
	for i, fi := range features {
		f := d.Features[fi]
		if f.w == 0 {
			continue
		}
		plans[i] = decompose(nil, Start(t, f.w), t, precision(f.w), top(f.w))
		for _, tr := range plans[i] {
			k := [2]int64{int64(tr.level), floorTo(tr.start, chunkSize[tr.level])}
			if !need[k] {
				need[k] = true
				chunks = append(chunks, k)
			}
		}
	}
	per := 1 + len(chunks)
	bkeys := make([][]byte, 0, len(keys)*per)
	for _, k := range keys {
		bkeys = append(bkeys, appendMetaKey(nil, k))
		for _, c := range chunks {
			bkeys = append(bkeys, appendChunkKey(nil, k, int(c[0]), c[1]))
		}
	}
	blobs, err := store.GetBlobs(ctx, table, bkeys, now)
	if err != nil {
		return nil, err
	}
	windowedAt := make([]int, len(d.Features)) // feature -> index in d.windowed
	for j, fi := range d.windowed {
		windowedAt[fi] = j
	}
	lastAt := make([]int, len(d.Features))
	for j, fi := range d.windowless() {
		lastAt[fi] = j
	}
	res := make([]online.Result, len(keys))
	decoded := map[[2]int64]*chunk{}
	for ki := range keys {
		r := &res[ki]
		r.Values = make([]online.Value, len(features))
		r.Statuses = make([]online.Status, len(features))
		mb := blobs[ki*per]
		if mb == nil {
			for i := range r.Statuses {
				r.Statuses[i] = online.NotFound
			}
			continue
		}
		m, err := d.decodeMeta(mb)
		if err != nil {
			return nil, fmt.Errorf("reading %s features of %v: %w", table, keys[ki], err)
		}
		r.Found = true
		r.EventTime = time.UnixMicro(m.newest).UTC()
		if ttl > 0 && t-m.newest > ttl.Microseconds() {
			for i := range r.Statuses {
				r.Statuses[i] = online.OutsideMaxAge
			}
			continue
		}
		clear(decoded)
		for ci, c := range chunks {
			b := blobs[ki*per+1+ci]
			if b == nil {
				continue
			}
			ch, err := d.decodeChunk(b)
			if err != nil {
				return nil, fmt.Errorf("reading %s tiles of %v: %w", table, keys[ki], err)
			}
			decoded[c] = ch
		}
		for i, fi := range features {
			f := d.Features[fi]
			var v online.Value
			if f.w == 0 {
				v = m.last[lastAt[fi]].result("last")
			} else {
				var a acc
				j := windowedAt[fi]
				for _, tr := range plans[i] {
					ch := decoded[[2]int64{int64(tr.level), floorTo(tr.start, chunkSize[tr.level])}]
					if ch == nil {
						continue
					}
					if accs := ch.find(tr.start); accs != nil {
						a.merge(f.Function, &accs[j])
					}
				}
				v = a.result(f.Function)
			}
			r.Values[i] = v
			r.Statuses[i] = online.Present
			if v.IsNull() {
				r.Statuses[i] = online.NullValue
			}
		}
	}
	return res, nil
}

// Values computes the features as of t from one entity's events, sorted by
// TS (offline, for training sets): the same windows that Read combines from
// tiles. It reports false, leaving dst alone, when the entity had no event
// at or before t, or its newest such event is older than ttl.
func (d *Def) Values(evs []Event, t int64, ttl time.Duration, dst []online.Value) bool {
	end, _ := slices.BinarySearchFunc(evs, t+1, func(e Event, x int64) int {
		if e.TS < x {
			return -1
		}
		return 1
	})
	if end == 0 {
		return false
	}
	if ttl > 0 && t-evs[end-1].TS > ttl.Microseconds() {
		return false
	}
	for fi, f := range d.Features {
		lo := 0
		if f.w > 0 {
			start := Start(t, f.w)
			lo, _ = slices.BinarySearchFunc(evs[:end], start, func(e Event, x int64) int {
				if e.TS < x {
					return -1
				}
				return 1
			})
		} else {
			// The newest non-null value: scan back from the end.
			var a acc
			for i := end - 1; i >= 0; i-- {
				in := evs[i].Inputs[fi]
				if !a.v.IsNull() && evs[i].TS < a.ts {
					break
				}
				a.add("last", in, evs[i].TS)
			}
			dst[fi] = a.result("last")
			continue
		}
		var a acc
		for i := lo; i < end; i++ {
			a.add(f.Function, evs[i].Inputs[fi], evs[i].TS)
		}
		dst[fi] = a.result(f.Function)
	}
	return true
}
