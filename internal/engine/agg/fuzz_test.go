package agg

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"math/rand"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/memory"
)

// fuzzConfigs are the configurations FuzzUnmarshal decodes for; the first
// input byte picks one.
var fuzzConfigs = []struct {
	cfg Config
	km  keyMode
}{
	{Config{Keys: oracleKeys(kmInt), Aggs: oracleAggs, Window: Window{Kind: Tumbling, Size: sec(10)}, Watermark: true, Delay: sec(2), Mode: Append}, kmInt},
	{Config{Keys: oracleKeys(kmStr), Aggs: oracleAggs, Window: Window{Kind: Sliding, Size: sec(10), Slide: sec(3)}, Watermark: true, Mode: Update}, kmStr},
	{Config{Keys: oracleKeys(kmComposite), Aggs: oracleAggs, Window: Window{Kind: Session, Gap: sec(4)}, Watermark: true, Delay: sec(1), Mode: Append}, kmComposite},
	{Config{Keys: oracleKeys(kmInt), Aggs: oracleAggs, Mode: Complete}, kmInt},
}

// FuzzUnmarshal checks the checkpoint decoder. Invariants: it never
// panics; an error wraps ErrCorrupt and leaves the Aggregator as it was;
// a checkpoint it accepts yields an Aggregator that can aggregate, flush
// and checkpoint again, and whose checkpoint restores to the same bytes.
// Each input is tried as given and with its CRC recomputed, so that
// mutations reach the decoder behind the checksum.
func FuzzUnmarshal(f *testing.F) {
	for i, fc := range fuzzConfigs {
		rng := rand.New(rand.NewSource(int64(i)))
		batches := genStream(rng, 200)
		for _, cut := range []int{0, 1, len(batches) / 2, len(batches)} {
			_, _, a := runStream(f, fc.cfg, fc.km, batches[:cut], -1)
			ck, err := a.MarshalBinary()
			if err != nil {
				f.Fatal(err)
			}
			f.Add(append([]byte{byte(i)}, ck...))
		}
	}
	f.Add([]byte{0})
	f.Add([]byte{1, 'S', 'L', 'A', 'G'})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) == 0 {
			return
		}
		fc := fuzzConfigs[int(data[0])%len(fuzzConfigs)]
		ck := data[1:]
		check(t, fc.cfg, fc.km, ck)
		if len(ck) >= 4 {
			fixed := append([]byte(nil), ck...)
			binary.LittleEndian.PutUint32(fixed[len(fixed)-4:], crc32.Checksum(fixed[:len(fixed)-4], crcTable))
			check(t, fc.cfg, fc.km, fixed)
		}
	})
}

func check(t *testing.T, cfg Config, km keyMode, ck []byte) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	a, err := New(cfg, mem)
	if err != nil {
		t.Fatal(err)
	}
	before, _ := a.MarshalBinary()
	if err := a.UnmarshalBinary(ck); err != nil {
		if !errors.Is(err, ErrCorrupt) {
			t.Fatalf("error %v does not wrap ErrCorrupt", err)
		}
		after, _ := a.MarshalBinary()
		if string(after) != string(before) {
			t.Fatal("failed UnmarshalBinary changed the state")
		}
		return
	}
	again, err := a.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := New(cfg, mem)
	if err := b.UnmarshalBinary(again); err != nil {
		t.Fatalf("re-encoded checkpoint rejected: %v", err)
	}
	if third, _ := b.MarshalBinary(); string(third) != string(again) {
		t.Fatal("checkpoint encoding not stable")
	}
	// The restored state must be usable.
	rng := rand.New(rand.NewSource(1))
	for _, batch := range genStream(rng, 50) {
		for _, call := range batch {
			addEvents(t, a, mem, km, call)
		}
		rec, err := a.Flush()
		if err != nil {
			t.Fatal(err)
		}
		rec.Release()
	}
	if _, err := a.MarshalBinary(); err != nil {
		t.Fatal(err)
	}
	_ = a.Stats()
}
