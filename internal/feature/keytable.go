package feature

import (
	"bytes"
	"encoding/binary"
	"hash/maphash"
	"math/bits"
)

// keyTable maps encoded join keys (see keyEncoder) to dense entity numbers
// 0, 1, …: the label side of the as-of join's hash join. It is an open
// addressing table with linear probing whose slots hold 32 bits of the
// key's hash next to the entity number, so a probe for a key that is not
// there usually touches one cache line, and one that is there touches one
// more, to compare the key bytes. Keys of exactly 8 bytes (one integer,
// float or time column) are kept as integers and compared as such.
//
// A keyTable is built by one goroutine (add); once built, find may be
// called from any number of goroutines.
type keyTable struct {
	seed  maphash.Seed
	mask  uint64
	slots []uint64 // 0: empty; else hash>>32<<32 | entity+1
	n     int      // entities

	fixed bool     // every key is 8 bytes: ints holds them
	ints  []uint64 // fixed: the key of each entity
	arena []byte   // !fixed: the keys, back to back
	off   []int    // !fixed: entity e's key is arena[off[e]:off[e+1]]
}

// newKeyTable returns an empty table sized for about n keys; fixed says
// that every key is 8 bytes long.
func newKeyTable(n int, fixed bool) *keyTable {
	size := uint64(16)
	if n > 4 {
		size = 1 << bits.Len64(uint64(n)*2-1) // load factor at most 1/2
	}
	t := &keyTable{seed: maphash.MakeSeed(), mask: size - 1, slots: make([]uint64, size), fixed: fixed}
	if fixed {
		t.ints = make([]uint64, 0, n)
	} else {
		t.off = append(make([]int, 0, n+1), 0)
	}
	return t
}

// hash returns the hash of key k.
func (t *keyTable) hash(k []byte) uint64 {
	if t.fixed {
		return mix64(binary.LittleEndian.Uint64(k))
	}
	return maphash.Bytes(t.seed, k)
}

// mix64 is the finalizer of SplitMix64: a bijection of uint64 whose
// output bits all depend on every input bit.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// find returns the entity of key k with hash h, or -1.
func (t *keyTable) find(k []byte, h uint64) int32 {
	tag := h >> 32 << 32
	var v uint64
	if t.fixed {
		v = binary.LittleEndian.Uint64(k)
	}
	for i := h & t.mask; ; i = (i + 1) & t.mask {
		s := t.slots[i]
		if s == 0 {
			return -1
		}
		if s&^0xffffffff != tag {
			continue
		}
		e := int32(uint32(s)) - 1
		if t.fixed {
			if t.ints[e] == v {
				return e
			}
		} else if bytes.Equal(t.arena[t.off[e]:t.off[e+1]], k) {
			return e
		}
	}
}

// add returns the entity of key k, adding it as the next entity if it
// is new. The table does not grow: it must have been sized for its keys.
func (t *keyTable) add(k []byte) int32 {
	h := t.hash(k)
	if e := t.find(k, h); e >= 0 {
		return e
	}
	e := int32(t.n)
	t.n++
	if t.fixed {
		t.ints = append(t.ints, binary.LittleEndian.Uint64(k))
	} else {
		t.arena = append(t.arena, k...)
		t.off = append(t.off, len(t.arena))
	}
	i := h & t.mask
	for t.slots[i] != 0 {
		i = (i + 1) & t.mask
	}
	t.slots[i] = h>>32<<32 | uint64(uint32(e+1))
	return e
}
