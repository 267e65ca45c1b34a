// Package bufpool recycles the large buffers of Arrow arrays that sluice
// builds from plain Go slices (the decoded columns of an ingestion batch):
// an array whose buffers come from a [Pool] gives them back when it is
// released, and the next batch appends into them instead of into fresh
// memory. On a virtual machine, faulting fresh memory in and the garbage
// collector zeroing it cost more than decoding into it.
//
// Recycled memory is reused, so nothing may keep a reference into an
// array's buffers (a string or slice aliasing them) after releasing it.
// Only code that owns the whole life of its arrays uses a Pool; a nil
// *Pool allocates from the Go heap and recycles nothing.
package bufpool

import (
	"sync"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow/memory"
)

// minSize is the smallest buffer worth keeping, maxFree the most buffers
// kept (a batch has a few per column).
const (
	minSize = 1 << 10
	maxFree = 256
)

// Pool keeps freed buffers, up to a bound in bytes, for reuse. It is
// goroutine-safe: arrays are released by other goroutines than the one
// building the next batch.
type Pool struct {
	mu   sync.Mutex
	free [][]byte // empty, with their capacity
	held int      // bytes of free
	max  int
}

// New returns a pool that keeps at most max bytes of free buffers.
func New(max int) *Pool { return &Pool{max: max} }

// Bytes returns an empty slice with room for at least n bytes: the
// smallest free buffer that fits, or a new one. Its contents are
// arbitrary.
func (p *Pool) Bytes(n int) []byte {
	if p != nil && n >= minSize {
		p.mu.Lock()
		best := -1
		for i, b := range p.free {
			if cap(b) >= n && (best < 0 || cap(b) < cap(p.free[best])) {
				best = i
			}
		}
		if best >= 0 {
			b := p.free[best]
			last := len(p.free) - 1
			p.free[best], p.free[last] = p.free[last], nil
			p.free = p.free[:last]
			p.held -= cap(b)
			p.mu.Unlock()
			return b
		}
		p.mu.Unlock()
	}
	return make([]byte, 0, n)
}

// Int64s is [Pool.Bytes] for n int64s.
func (p *Pool) Int64s(n int) []int64 {
	b := p.Bytes(n * 8)
	return unsafe.Slice((*int64)(unsafe.Pointer(unsafe.SliceData(b))), cap(b)/8)[:0]
}

// Int32s is [Pool.Bytes] for n int32s.
func (p *Pool) Int32s(n int) []int32 {
	b := p.Bytes(n * 4)
	return unsafe.Slice((*int32)(unsafe.Pointer(unsafe.SliceData(b))), cap(b)/4)[:0]
}

// Buffer wraps b in an Arrow buffer that gives b back to p when it is
// released for the last time.
func (p *Pool) Buffer(b []byte) *memory.Buffer {
	if p == nil {
		return memory.NewBufferBytes(b)
	}
	return memory.NewBufferWithAllocator(b, p)
}

// Allocate returns n zeroed bytes from the Go heap: it makes
// [memory.Allocator] of a Pool for the arrays that resize a buffer of it.
func (p *Pool) Allocate(n int) []byte { return make([]byte, n) }

// Reallocate returns b grown or shrunk to n bytes, zeroed past len(b).
func (p *Pool) Reallocate(n int, b []byte) []byte {
	if n <= cap(b) {
		if n > len(b) {
			// Recycled memory is not zeroed.
			clear(b[len(b):n])
		}
		return b[:n]
	}
	out := make([]byte, n)
	copy(out, b)
	p.Free(b)
	return out
}

// Free keeps b for reuse, unless it is small or p holds enough.
func (p *Pool) Free(b []byte) {
	if cap(b) < minSize {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.held+cap(b) <= p.max && len(p.free) < maxFree {
		p.free = append(p.free, b[:0])
		p.held += cap(b)
	}
}

// Held is the bytes of free buffers p keeps.
func (p *Pool) Held() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.held
}
