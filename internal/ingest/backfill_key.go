package ingest

import (
	"fmt"
	"hash/maphash"
	"math"
	"math/bits"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
)

// h128 is the 128-bit hash of a deduplication key: two independently seeded
// 64-bit lanes. Two different keys get the same h128 with probability about
// 2^-128 per pair, so comparing hashes instead of keys is exact in practice
// (the birthday bound for 10^10 keys is below 10^-18).
type h128 struct{ lo, hi uint64 }

// nullHash stands for a null value (null-safe equality: two nulls match).
var nullHash = h128{0x9e3779b97f4a7c15, 0xc2b2ae3d27d4eb4f}

// keyHasher hashes the deduplication key of each row of a record batch:
// the values at the given dot paths, null-safe, with nested structs and
// lists hashed by content. The same value hashes the same from any batch
// whose column at the path has the same Arrow type, which the merge
// ensures by hashing both sides in the ingestion table's types. Seeds are
// per hasher (per process): hashes are never stored beyond one merge.
type keyHasher struct {
	paths      [][]string
	s1, s2     maphash.Seed
	k1, k2     uint64
	tmp        []h128
	childCache [][]h128
}

func newKeyHasher(paths []string) *keyHasher {
	k := &keyHasher{s1: maphash.MakeSeed(), s2: maphash.MakeSeed()}
	k.k1 = maphash.String(k.s1, "sluice.int") | 1
	k.k2 = maphash.String(k.s2, "sluice.int") | 1
	for _, p := range paths {
		k.paths = append(k.paths, strings.Split(p, "."))
	}
	return k
}

// columns returns the top-level columns (or nested paths) a scan must read
// to hash keys: the paths themselves.
func (k *keyHasher) columns() []string {
	out := make([]string, len(k.paths))
	for i, p := range k.paths {
		out[i] = strings.Join(p, ".")
	}
	return out
}

// mix64 is a bijective finalizer (splitmix64's): distinct inputs never
// collide within a lane.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// combine folds v into acc, order-sensitively; for a fixed acc it is a
// bijection of v in each lane.
func combine(acc, v h128) h128 {
	return h128{mix64(bits.RotateLeft64(acc.lo, 17)*0xff51afd7ed558ccd + v.lo), mix64(bits.RotateLeft64(acc.hi, 29)*0xc4ceb9fe1a85ec53 + v.hi)}
}

// hash returns the key hash of every row of rec in out (resized).
func (k *keyHasher) hash(rec arrow.RecordBatch, out []h128) ([]h128, error) {
	n := int(rec.NumRows())
	out = resize(out, n)
	for i := range out {
		out[i] = h128{1, 2}
	}
	for _, p := range k.paths {
		arr, nulls, err := resolvePath(rec, p)
		if err != nil {
			return nil, err
		}
		k.tmp = resize(k.tmp, n)
		if err := k.hashArray(arr, k.tmp, 0); err != nil {
			return nil, fmt.Errorf("%s: %w", strings.Join(p, "."), err)
		}
		for i := range n {
			v := k.tmp[i]
			if nulls != nil && nulls(i) {
				v = nullHash
			}
			out[i] = combine(out[i], v)
		}
	}
	for i := range out {
		if out[i] == (h128{}) {
			out[i] = h128{1, 0} // zero marks an empty slot in hashSet
		}
	}
	return out, nil
}

// resolvePath finds the array at path in rec. nulls, when not nil, reports
// rows where an enclosing struct is null (the value is then null too).
func resolvePath(rec arrow.RecordBatch, path []string) (arrow.Array, func(int) bool, error) {
	idx := rec.Schema().FieldIndices(path[0])
	if len(idx) != 1 {
		return nil, nil, fmt.Errorf("no column %s", path[0])
	}
	arr := rec.Column(idx[0])
	var parents []*array.Struct
	for _, name := range path[1:] {
		st, ok := arr.(*array.Struct)
		if !ok {
			return nil, nil, fmt.Errorf("%s is not a struct", strings.Join(path, "."))
		}
		fi, ok := st.DataType().(*arrow.StructType).FieldIdx(name)
		if !ok {
			return nil, nil, fmt.Errorf("no field %s in %s", name, strings.Join(path, "."))
		}
		parents = append(parents, st)
		arr = st.Field(fi)
	}
	var nulls func(int) bool
	for _, p := range parents {
		if p.NullN() > 0 {
			nulls = func(i int) bool {
				for _, q := range parents {
					if q.IsNull(i) {
						return true
					}
				}
				return false
			}
			break
		}
	}
	return arr, nulls, nil
}

func resize[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	return s[:n]
}

func (k *keyHasher) scratch(depth, n int) []h128 {
	for len(k.childCache) <= depth {
		k.childCache = append(k.childCache, nil)
	}
	k.childCache[depth] = resize(k.childCache[depth], n)
	return k.childCache[depth]
}

func (k *keyHasher) fixed(v uint64) h128 { return h128{mix64(v ^ k.k1), mix64(v ^ k.k2)} }

// hashArray writes the hash of every element of arr to dst.
func (k *keyHasher) hashArray(arr arrow.Array, dst []h128, depth int) error {
	n := arr.Len()
	switch a := arr.(type) {
	case *array.String:
		for i := range n {
			if a.IsNull(i) {
				dst[i] = nullHash
				continue
			}
			s := a.Value(i)
			dst[i] = h128{maphash.String(k.s1, s), maphash.String(k.s2, s)}
		}
	case *array.LargeString:
		for i := range n {
			if a.IsNull(i) {
				dst[i] = nullHash
				continue
			}
			s := a.Value(i)
			dst[i] = h128{maphash.String(k.s1, s), maphash.String(k.s2, s)}
		}
	case *array.Binary:
		for i := range n {
			if a.IsNull(i) {
				dst[i] = nullHash
				continue
			}
			b := a.Value(i)
			dst[i] = h128{maphash.Bytes(k.s1, b), maphash.Bytes(k.s2, b)}
		}
	case *array.Int64:
		vals := a.Int64Values()
		for i := range n {
			dst[i] = k.fixed(uint64(vals[i]))
		}
		k.nulls(a, dst)
	case *array.Int32:
		vals := a.Int32Values()
		for i := range n {
			dst[i] = k.fixed(uint64(vals[i]))
		}
		k.nulls(a, dst)
	case *array.Timestamp:
		vals := a.TimestampValues()
		for i := range n {
			dst[i] = k.fixed(uint64(vals[i]))
		}
		k.nulls(a, dst)
	case *array.Date32:
		vals := a.Date32Values()
		for i := range n {
			dst[i] = k.fixed(uint64(vals[i]))
		}
		k.nulls(a, dst)
	case *array.Float64:
		vals := a.Float64Values()
		for i := range n {
			v := vals[i]
			if v == 0 {
				v = 0 // -0 == +0
			}
			dst[i] = k.fixed(math.Float64bits(v))
		}
		k.nulls(a, dst)
	case *array.Boolean:
		for i := range n {
			if a.Value(i) {
				dst[i] = k.fixed(1)
			} else {
				dst[i] = k.fixed(0)
			}
		}
		k.nulls(a, dst)
	case *array.Struct:
		for i := range n {
			dst[i] = h128{3, 4}
		}
		for f := range a.NumField() {
			child := k.scratch(depth, n)
			if err := k.hashArray(a.Field(f), child, depth+1); err != nil {
				return err
			}
			for i := range n {
				dst[i] = combine(dst[i], child[i])
			}
		}
		k.nulls(a, dst)
	case *array.List:
		vals := a.ListValues()
		child := k.scratch(depth, vals.Len())
		if err := k.hashArray(vals, child, depth+1); err != nil {
			return err
		}
		offs := a.Offsets()
		for i := range n {
			if a.IsNull(i) {
				dst[i] = nullHash
				continue
			}
			lo, hi := offs[i], offs[i+1]
			h := k.fixed(uint64(hi - lo))
			for j := lo; j < hi; j++ {
				h = combine(h, child[j])
			}
			dst[i] = h
		}
	default:
		return fmt.Errorf("cannot compare values of type %s", arr.DataType())
	}
	return nil
}

func (k *keyHasher) nulls(a arrow.Array, dst []h128) {
	if a.NullN() == 0 {
		return
	}
	for i := range dst {
		if a.IsNull(i) {
			dst[i] = nullHash
		}
	}
}

// hashSet is an open-addressing set of h128 (the zero value marks an
// empty slot; hashes are never zero).
type hashSet struct {
	slots []h128
	mask  uint64
	n     int
}

func newHashSet(capacity int) *hashSet {
	size := 16
	for size < 2*capacity {
		size <<= 1
	}
	return &hashSet{slots: make([]h128, size), mask: uint64(size - 1)}
}

// add inserts h and reports whether it was absent.
func (s *hashSet) add(h h128) bool {
	if 2*(s.n+1) > len(s.slots) {
		s.grow()
	}
	for i := h.lo & s.mask; ; i = (i + 1) & s.mask {
		switch s.slots[i] {
		case h:
			return false
		case h128{}:
			s.slots[i] = h
			s.n++
			return true
		}
	}
}

func (s *hashSet) has(h h128) bool {
	for i := h.lo & s.mask; ; i = (i + 1) & s.mask {
		switch s.slots[i] {
		case h:
			return true
		case h128{}:
			return false
		}
	}
}

func (s *hashSet) grow() {
	old := s.slots
	s.slots = make([]h128, 2*len(old))
	s.mask = uint64(len(s.slots) - 1)
	s.n = 0
	for _, h := range old {
		if h != (h128{}) {
			s.add(h)
		}
	}
}
