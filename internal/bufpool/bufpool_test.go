package bufpool

import (
	"testing"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// TestRecycle: a released array's buffer goes back to the pool, and the
// next request of a size it fits gets that very memory.
func TestRecycle(t *testing.T) {
	p := New(1 << 20)
	vals := p.Int64s(1000)
	for i := range 1000 {
		vals = append(vals, int64(i))
	}
	buf := p.Buffer(arrow.Int64Traits.CastToBytes(vals))
	d := array.NewData(arrow.PrimitiveTypes.Int64, 1000, []*memory.Buffer{nil, buf}, nil, 0, 0)
	buf.Release()
	a := array.NewInt64Data(d)
	d.Release()
	if p.Held() != 0 {
		t.Fatalf("pool holds %d bytes while the array lives", p.Held())
	}
	if got := a.Value(999); got != 999 {
		t.Fatalf("value 999 = %d", got)
	}
	a.Release()
	if p.Held() < 8000 {
		t.Fatalf("pool holds %d bytes after the release, want the array's 8000", p.Held())
	}
	again := p.Int32s(2000)
	if unsafe.Pointer(unsafe.SliceData(again)) != unsafe.Pointer(unsafe.SliceData(vals)) || len(again) != 0 {
		t.Fatal("the next request did not get the freed buffer")
	}
	if p.Held() != 0 {
		t.Fatalf("pool holds %d bytes after handing its buffer out", p.Held())
	}
	if big := p.Bytes(1 << 16); cap(big) < 1<<16 {
		t.Fatalf("Bytes(64Ki) has room for %d", cap(big))
	}
}

// TestBound: the pool keeps no more than its bound, nor small buffers.
func TestBound(t *testing.T) {
	p := New(10 << 10)
	p.Free(make([]byte, 6<<10))
	p.Free(make([]byte, 6<<10)) // over the bound: dropped
	p.Free(make([]byte, 100))   // small: dropped
	p.Free(make([]byte, 1000))  // small: dropped
	if p.Held() != 6<<10 {
		t.Fatalf("pool holds %d bytes, want %d", p.Held(), 6<<10)
	}
	var nilPool *Pool
	if b := nilPool.Bytes(10); cap(b) < 10 {
		t.Fatal("a nil pool's Bytes is short")
	}
}

// TestReallocateZeroes: memory a pool hands arrow-go past a buffer's
// length is zeroed, as arrow-go's allocator's is.
func TestReallocateZeroes(t *testing.T) {
	p := New(1 << 20)
	b := make([]byte, 8<<10)
	for i := range b {
		b[i] = 0xff
	}
	got := p.Reallocate(8<<10, b[:10])
	for i, v := range got[10:] {
		if v != 0 {
			t.Fatalf("byte %d is %#x after Reallocate", 10+i, v)
		}
	}
}

// TestReallocateShrinks: shrinking a buffer (arrow's Resize to fewer
// bytes) keeps its start.
func TestReallocateShrinks(t *testing.T) {
	p := New(1 << 20)
	b := make([]byte, 4096)
	b[0] = 7
	got := p.Reallocate(128, b)
	if len(got) != 128 || got[0] != 7 {
		t.Fatalf("shrunk to %d bytes starting %d", len(got), got[0])
	}
}
