package feature

import (
	"encoding/binary"
	"math/rand/v2"
	"strconv"
	"testing"
)

// TestKeyTable checks keyTable against a Go map: entities are numbered
// in first-seen order, every added key is found with its entity, and keys
// never added are not found, for 8-byte integer keys and byte-string keys
// (including the empty key and keys that are prefixes of others).
func TestKeyTable(t *testing.T) {
	cases := map[string]struct {
		fixed bool
		key   func(r *rand.Rand) []byte
	}{
		"integers": {fixed: true, key: func(r *rand.Rand) []byte {
			return binary.LittleEndian.AppendUint64(nil, uint64(r.Int64N(3000)-1500))
		}},
		"strings": {key: func(r *rand.Rand) []byte {
			s := "u" + strconv.Itoa(r.IntN(3000))
			return []byte(s[:r.IntN(len(s)+1)]) // also "" and prefixes of other keys
		}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(1, 2))
			kt := newKeyTable(2000, tc.fixed)
			want := map[string]int32{}
			for range 2000 {
				k := tc.key(r)
				e, ok := want[string(k)]
				if !ok {
					e = int32(len(want))
					want[string(k)] = e
				}
				if got := kt.add(k); got != e {
					t.Fatalf("add(%q) = %d, want %d", k, got, e)
				}
			}
			if kt.n != len(want) {
				t.Fatalf("%d entities, want %d", kt.n, len(want))
			}
			for range 5000 {
				k := tc.key(r)
				e, ok := want[string(k)]
				if !ok {
					e = -1
				}
				if got := kt.find(k, kt.hash(k)); got != e {
					t.Fatalf("find(%q) = %d, want %d", k, got, e)
				}
			}
		})
	}
}
