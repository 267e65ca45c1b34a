package agg

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"slices"

	"github.com/apache/arrow-go/v18/arrow"
)

// Checkpoint format, version 1 (varint and uvarint as in encoding/binary):
//
//	magic      "SLAG"
//	version    byte (1)
//	config     uint64 LE   fingerprint of the Config (types, window, watermark, mode; not names)
//	flags      byte        bit 0: watermark set, bit 1: max event time set
//	watermark  varint µs
//	max time   varint µs
//	seq        uvarint     rows seen (arrival number of the next row)
//	late       uvarint     Stats.DroppedLate
//	null time  uvarint     Stats.DroppedNullTime
//	groups     uvarint count, then each group in output order:
//	  start, end  varint µs (0, 0 without a window)
//	  key         uvarint length + the order-preserving key encoding (keys.go)
//	  dirty       byte: 1 if changed in the current micro-batch (Update)
//	  per aggregate, in Config order:
//	    Count, CountStar   uvarint n
//	    CountDistinct      uvarint count, then the values (ascending)
//	    Sum, Avg           uvarint n (non-null inputs), then the sum: varint (Sum of integers) or float64 LE
//	    Min, Max           uvarint n, then the value if n > 0
//	    First, Last        byte set; if set: byte null, uvarint arrival, the value if not null
//	  values: varint (integer kinds), float64 bits LE, or uvarint length + bytes (strings)
//	crc        uint32 LE   CRC-32C of everything before it
const (
	ckMagic   = "SLAG"
	ckVersion = 1
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// MarshalBinary returns the checkpoint: every group's state, the watermark,
// the counters and the arrival counter, so that an Aggregator made by New
// with the same Config and restored with UnmarshalBinary continues exactly
// as this one would. It may be called at any point, though the runner
// normally calls it right after Flush. The encoding is deterministic.
func (a *Aggregator) MarshalBinary() ([]byte, error) {
	slots := make([]int32, 0, a.nlive)
	for g, live := range a.live {
		if live {
			slots = append(slots, int32(g))
		}
	}
	a.sortSlots(slots)

	b := make([]byte, 0, 64+len(slots)*(24+12*len(a.aggs)))
	b = append(b, ckMagic...)
	b = append(b, ckVersion)
	b = binary.LittleEndian.AppendUint64(b, a.cfg.fingerprint())
	var flags byte
	if a.hasWM {
		flags |= 1
	}
	if a.hasMax {
		flags |= 2
	}
	b = append(b, flags)
	b = binary.AppendVarint(b, a.wm)
	b = binary.AppendVarint(b, a.maxTs)
	b = binary.AppendUvarint(b, uint64(a.seq))
	b = binary.AppendUvarint(b, uint64(a.droppedLate))
	b = binary.AppendUvarint(b, uint64(a.droppedNull))
	b = binary.AppendUvarint(b, uint64(len(slots)))
	var kb []byte
	vals := make([]keyValue, 1)
	var ints []int64
	var strs []string
	for _, g := range slots {
		b = binary.AppendVarint(b, a.start[g])
		b = binary.AppendVarint(b, a.end[g])
		switch a.kind {
		case keyInt:
			vals[0] = keyValue{null: a.keyNull[g], i: a.keyI64[g]}
			kb = encodeKeyValues(kb[:0], a.keyKinds, vals)
		case keyStr:
			vals[0] = keyValue{null: a.keyNull[g], s: a.keyStr[g]}
			kb = encodeKeyValues(kb[:0], a.keyKinds, vals)
		default:
			kb = append(kb[:0], a.keyStr[g]...)
		}
		b = binary.AppendUvarint(b, uint64(len(kb)))
		b = append(b, kb...)
		dirty := byte(0)
		if a.trackDirty && a.dirtyAt[g] == a.epoch {
			dirty = 1
		}
		b = append(b, dirty)
		for _, c := range a.aggs {
			switch c.spec.Func {
			case Count, CountStar:
				b = binary.AppendUvarint(b, uint64(c.n[g]))
			case CountDistinct:
				if c.vk == vStr {
					strs = strs[:0]
					for v := range c.ds[g] {
						strs = append(strs, v)
					}
					slices.Sort(strs)
					b = binary.AppendUvarint(b, uint64(len(strs)))
					for _, v := range strs {
						b = appendString(b, v)
					}
				} else {
					ints = ints[:0]
					for v := range c.di[g] {
						ints = append(ints, v)
					}
					slices.Sort(ints)
					b = binary.AppendUvarint(b, uint64(len(ints)))
					for _, v := range ints {
						b = binary.AppendVarint(b, v)
					}
				}
			case Sum, Avg:
				b = binary.AppendUvarint(b, uint64(c.n[g]))
				if c.vk == vFloat || c.spec.Func == Avg {
					b = binary.LittleEndian.AppendUint64(b, math.Float64bits(c.f[g]))
				} else {
					b = binary.AppendVarint(b, c.i[g])
				}
			case Min, Max:
				b = binary.AppendUvarint(b, uint64(c.n[g]))
				if c.n[g] > 0 {
					b = c.appendValue(b, g)
				}
			case First, Last:
				if c.n[g] == 0 {
					b = append(b, 0)
					continue
				}
				b = append(b, 1)
				if c.null[g] {
					b = append(b, 1)
				} else {
					b = append(b, 0)
				}
				b = binary.AppendUvarint(b, uint64(c.seq[g]))
				if !c.null[g] {
					b = c.appendValue(b, g)
				}
			}
		}
	}
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, crcTable)), nil
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func (c *aggCol) appendValue(b []byte, g int32) []byte {
	switch c.vk {
	case vInt:
		return binary.AppendVarint(b, c.i[g])
	case vFloat:
		return binary.LittleEndian.AppendUint64(b, math.Float64bits(c.f[g]))
	default:
		return appendString(b, c.s[g])
	}
}

// UnmarshalBinary replaces a's state with a checkpoint from MarshalBinary
// of an Aggregator with the same Config (names aside). Input that is not
// one (truncated, altered, another Config or version) yields an error
// wrapping ErrCorrupt and leaves a unchanged; it never panics.
func (a *Aggregator) UnmarshalBinary(data []byte) error {
	fresh, err := New(a.cfg, a.mem)
	if err != nil {
		return err
	}
	if err := fresh.decode(data); err != nil {
		return fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	*a = *fresh
	return nil
}

type reader struct {
	b   []byte
	err error
}

var errShort = errors.New("truncated")

func (r *reader) fail(err error) {
	if r.err == nil {
		r.err = err
	}
}

func (r *reader) byte() byte {
	if r.err != nil || len(r.b) < 1 {
		r.fail(errShort)
		return 0
	}
	v := r.b[0]
	r.b = r.b[1:]
	return v
}

func (r *reader) flag() bool {
	switch r.byte() {
	case 0:
		return false
	case 1:
		return true
	}
	r.fail(errors.New("bad flag byte"))
	return false
}

func (r *reader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail(errors.New("bad uvarint"))
		return 0
	}
	r.b = r.b[n:]
	return v
}

// count reads a non-negative int64.
func (r *reader) count() int64 {
	v := r.uvarint()
	if v > math.MaxInt64 {
		r.fail(errors.New("count out of range"))
		return 0
	}
	return int64(v)
}

func (r *reader) varint() int64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail(errors.New("bad varint"))
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) u64() uint64 {
	if r.err != nil || len(r.b) < 8 {
		r.fail(errShort)
		return 0
	}
	v := binary.LittleEndian.Uint64(r.b)
	r.b = r.b[8:]
	return v
}

func (r *reader) bytes() []byte {
	n := r.uvarint()
	if r.err != nil {
		return nil
	}
	if n > uint64(len(r.b)) {
		r.fail(errShort)
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

// value reads one value of kind vk into slot g, checking that it fits typ.
func (c *aggCol) readValue(r *reader, g int32) {
	switch c.vk {
	case vInt:
		v := r.varint()
		if !fitsType(v, c.spec.Type) {
			r.fail(fmt.Errorf("value %d out of range for %s", v, c.spec.Type))
		}
		c.i[g] = v
	case vFloat:
		c.f[g] = math.Float64frombits(r.u64())
	default:
		c.s[g] = string(r.bytes())
	}
}

func fitsType(v int64, t arrow.DataType) bool {
	switch t.ID() {
	case arrow.INT32, arrow.DATE32:
		return v >= math.MinInt32 && v <= math.MaxInt32
	case arrow.BOOL:
		return v == 0 || v == 1
	}
	return true
}

func (a *Aggregator) decode(data []byte) error {
	const head = len(ckMagic) + 1 + 8
	if len(data) < head+4 {
		return errShort
	}
	body := data[:len(data)-4]
	if crc32.Checksum(body, crcTable) != binary.LittleEndian.Uint32(data[len(data)-4:]) {
		return errors.New("checksum mismatch")
	}
	if string(body[:4]) != ckMagic {
		return errors.New("bad magic")
	}
	if body[4] != ckVersion {
		return fmt.Errorf("unsupported version %d", body[4])
	}
	if binary.LittleEndian.Uint64(body[5:13]) != a.cfg.fingerprint() {
		return errors.New("checkpoint of an aggregation with another configuration")
	}
	r := &reader{b: body[head:]}
	flags := r.byte()
	if flags&^3 != 0 {
		return errors.New("bad flags")
	}
	a.hasWM, a.hasMax = flags&1 != 0, flags&2 != 0
	a.wm = r.varint()
	a.maxTs = r.varint()
	a.seq = r.count()
	a.droppedLate = r.count()
	a.droppedNull = r.count()
	if r.err != nil {
		return r.err
	}
	if a.hasWM && !a.cfg.Watermark || a.hasWM && !a.hasMax {
		return errors.New("watermark without event times")
	}
	if !a.hasWM && a.wm != 0 || !a.hasMax && a.maxTs != 0 {
		return errors.New("unset watermark or max with a value")
	}
	if a.hasWM && a.wm > a.maxTs-a.delay {
		return errors.New("watermark ahead of the event times")
	}
	n := r.uvarint()
	if n > uint64(len(r.b)) {
		return errors.New("group count exceeds input")
	}
	vals := make([]keyValue, len(a.keyKinds))
	var enc []byte
	for range n {
		start, end := r.varint(), r.varint()
		key := r.bytes()
		dirty := r.flag()
		if r.err != nil {
			return r.err
		}
		if err := a.checkWindow(start, end); err != nil {
			return err
		}
		if err := decodeKey(string(key), a.keyKinds, vals); err != nil {
			return err
		}
		if enc = encodeKeyValues(enc[:0], a.keyKinds, vals); string(enc) != string(key) {
			return errors.New("key not in canonical form")
		}
		g, err := a.restoreSlot(start, end, vals, key)
		if err != nil {
			return err
		}
		if dirty {
			if !a.trackDirty {
				return errors.New("changed group outside update mode")
			}
			a.dirtyAt[g] = a.epoch
			a.dirty = append(a.dirty, g)
		}
		for _, c := range a.aggs {
			a.readAgg(r, c, g)
		}
		if r.err != nil {
			return r.err
		}
	}
	if len(r.b) != 0 {
		return fmt.Errorf("%d trailing bytes", len(r.b))
	}
	return nil
}

func (a *Aggregator) readAgg(r *reader, c *aggCol, g int32) {
	switch c.spec.Func {
	case Count, CountStar:
		c.n[g] = r.count()
	case CountDistinct:
		m := r.uvarint()
		if m > uint64(len(r.b)) {
			r.fail(errors.New("distinct count exceeds input"))
			return
		}
		if m == 0 {
			return
		}
		if c.vk == vStr {
			set := make(map[string]struct{}, m)
			for range m {
				set[string(r.bytes())] = struct{}{}
			}
			c.ds[g] = set
			if uint64(len(set)) != m {
				r.fail(errors.New("duplicate distinct value"))
			}
		} else {
			set := make(map[int64]struct{}, m)
			for range m {
				v := r.varint()
				if c.vk == vInt && !fitsType(v, c.spec.Type) {
					r.fail(errors.New("distinct value out of range"))
				}
				set[v] = struct{}{}
			}
			c.di[g] = set
			if uint64(len(set)) != m {
				r.fail(errors.New("duplicate distinct value"))
			}
		}
	case Sum, Avg:
		c.n[g] = r.count()
		if c.vk == vFloat || c.spec.Func == Avg {
			c.f[g] = math.Float64frombits(r.u64())
		} else {
			c.i[g] = r.varint()
		}
	case Min, Max:
		c.n[g] = r.count()
		if c.n[g] > 0 {
			c.readValue(r, g)
		}
	case First, Last:
		if !r.flag() {
			return
		}
		c.n[g] = 1
		c.null[g] = r.flag()
		c.seq[g] = r.count()
		if r.err == nil && c.seq[g] >= a.seq {
			r.fail(errors.New("arrival number from the future"))
		}
		if !c.null[g] {
			c.readValue(r, g)
		}
	}
}

// checkWindow checks that [start, end) is a window this Config makes and
// that the watermark has not closed it.
func (a *Aggregator) checkWindow(start, end int64) error {
	switch a.cfg.Window.Kind {
	case NoWindow:
		if start != 0 || end != 0 {
			return errors.New("window bounds without a window")
		}
		return nil
	case Tumbling, Sliding:
		if floorMod(start-a.offset, a.slide) != 0 || end != start+a.size {
			return fmt.Errorf("window [%d, %d) is not one of the configured windows", start, end)
		}
	case Session:
		if end < start || end-start < a.gap {
			return fmt.Errorf("session [%d, %d) shorter than the gap", start, end)
		}
	}
	if a.dropLate && a.hasWM && end <= a.wm {
		return errors.New("window closed by the watermark still in state")
	}
	return nil
}

// restoreSlot adds a group with the given (validated) key.
func (a *Aggregator) restoreSlot(start, end int64, vals []keyValue, enc []byte) (int32, error) {
	g := int32(len(a.start))
	a.growSlots()
	a.start[g], a.end[g] = start, end
	switch a.kind {
	case keyInt:
		a.keyNull[g], a.keyI64[g] = vals[0].null, vals[0].i
		if !fitsType(vals[0].i, a.cfg.Keys[0].Type) {
			return 0, errors.New("key out of range")
		}
	case keyStr:
		a.keyNull[g], a.keyStr[g] = vals[0].null, vals[0].s
	default:
		a.keyStr[g] = string(enc)
	}
	a.live[g] = true
	a.nlive++
	switch a.cfg.Window.Kind {
	case NoWindow, Tumbling, Sliding:
		w := a.global
		if w == nil {
			w = a.windowAt(start)
		}
		k, ok := a.slotKey(&a.kidx, g)
		if !ok {
			k = a.newKid()
			a.indexPut(&a.kidx, g, k)
		} else if int(k) < len(w.dense) && w.dense[k] != 0 {
			return 0, errors.New("duplicate group")
		}
		a.attach(w, g, k)
	case Session:
		li, ok := a.slotKey(&a.sessIdx, g)
		if !ok {
			li = a.newList()
			a.indexPut(&a.sessIdx, g, li)
		}
		list := a.sessLists[li]
		if k := len(list); k > 0 && start <= a.end[list[k-1]] {
			return 0, errors.New("overlapping or unordered sessions")
		}
		a.sessLists[li] = append(list, g)
	}
	return g, nil
}

// slotKey looks up slot g's key in x.
func (a *Aggregator) slotKey(x *keyIndex, g int32) (int32, bool) {
	switch {
	case a.kind != keyGen && a.keyNull[g]:
		return x.null, x.null >= 0
	case a.kind == keyInt:
		v, ok := x.ints[a.keyI64[g]]
		return v, ok
	default:
		v, ok := x.strs[a.keyStr[g]]
		return v, ok
	}
}
