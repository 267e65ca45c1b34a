package pqwrite

import (
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/metadata"
)

// A row group's column chunks are encoded by up to maxWorkers goroutines
// at once (no more than GOMAXPROCS), each a chunk at a time in column
// order, while the writing goroutine writes the chunks, in order, as they
// are done. On two cores that halves the time from a batch to its file
// when nothing else runs: the tail of a commit.
const maxWorkers = 4

// encoder is a worker's reusable memory for encoding pages.
type encoder struct {
	defs  []uint8 // a page's definition levels
	vals  []byte  // a page's PLAIN values
	lvls  []byte  // encoded definition levels
	page  []byte  // a V1 page before compression
	comp  []byte  // compressed values
	arrs  []arrow.Array
	stats stats // of the page
	// pageRows is the rows in the page, bools the booleans in vals.
	pageRows, bools int
}

// chunk is one encoded column chunk: its pages, ready to be written.
type chunk struct {
	buf   []byte // the pages' bytes, one after the other
	pages []pageDesc
	stats stats // of the chunk
	err   error
	done  chan struct{} // closed once the chunk is encoded (or failed)
}

// pageDesc is one page of a chunk: buf[off:end], and its header's fields.
type pageDesc struct {
	off, end           int
	rows, nulls        int32
	lvlLen             int32 // V2: bytes of definition levels before the values
	uncompressed       int32
	stats              metadata.EncodedStatistics // may point into the batch
	v1, compressedVals bool
}

// freeList keeps values between writes. Unlike a sync.Pool, which the
// garbage collector empties, it keeps them for good: a writer that
// allocates while it writes collects often, and its buffers (a page for an
// encoder, a chunk's compressed pages for a chunk) would be faulted in
// afresh.
type freeList[T any] struct {
	mu   sync.Mutex
	free []*T
	max  int
}

func (f *freeList[T]) get() *T {
	f.mu.Lock()
	defer f.mu.Unlock()
	if n := len(f.free); n > 0 {
		v := f.free[n-1]
		f.free = f.free[:n-1]
		return v
	}
	return new(T)
}

func (f *freeList[T]) put(v *T) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.free) < f.max {
		f.free = append(f.free, v)
	}
}

var (
	encoders = freeList[encoder]{max: maxWorkers}
	// chunks keeps enough for the chunks of a couple of ingestion tables'
	// row groups.
	chunks = freeList[chunk]{max: 32}
)

// writeGroup encodes and writes the column chunks of a row group of n
// rows, starting at row off of recs[bi], and returns the bytes of their
// pages.
func (w *Writer) writeGroup(sink *tellWriter, rgb *metadata.RowGroupMetaDataBuilder, g int16, recs []arrow.RecordBatch, bi int, off, n int64) (int64, error) {
	out := make([]*chunk, len(w.leaves))
	for i := range out {
		c := chunks.get()
		c.buf, c.pages, c.err = c.buf[:0], c.pages[:0], nil
		c.stats.reset()
		c.done = make(chan struct{})
		out[i] = c
	}
	// arrow-go counts an array's nulls on first use and caches the
	// count, unsynchronised: count them here, before the workers share
	// the arrays.
	for _, r := range recs[bi:] {
		for _, c := range r.Columns() {
			countNulls(c)
		}
	}
	var (
		next atomic.Int32
		wg   sync.WaitGroup
	)
	workers := min(runtime.GOMAXPROCS(0), len(w.leaves), maxWorkers)
	for range workers {
		wg.Go(func() {
			e := encoders.get()
			defer func() {
				clear(e.arrs)
				encoders.put(e)
			}()
			for i := int(next.Add(1)) - 1; i < len(out); i = int(next.Add(1)) - 1 {
				out[i].err = w.encodeChunk(e, out[i], &w.leaves[i], recs, bi, off, n)
				close(out[i].done)
			}
		})
	}
	defer func() {
		// The workers read recs and write out until they are done.
		wg.Wait()
		for _, c := range out {
			for i := range c.pages {
				c.pages[i].stats = metadata.EncodedStatistics{}
			}
			chunks.put(c)
		}
	}()
	var written int64
	for li, c := range out {
		<-c.done
		if c.err != nil {
			return 0, c.err
		}
		nw, err := w.writeChunk(sink, rgb.NextColumnChunk(), g, int16(li), &w.leaves[li], c)
		if err != nil {
			return 0, err
		}
		written += nw
	}
	return written, nil
}

// encodeChunk encodes leaf l of n rows, starting at row off of recs[bi],
// into c.
func (w *Writer) encodeChunk(e *encoder, c *chunk, l *leaf, recs []arrow.RecordBatch, bi int, off, n int64) error {
	e.stats.reset()
	e.defs, e.vals, e.pageRows, e.bools = e.defs[:0], e.vals[:0], 0, 0
	pageSize := int(w.props.DataPageSize())
	if want := pageSize + pageSize/4; cap(e.vals) < want {
		// A page's values, and the last value past the page size.
		e.vals = make([]byte, 0, want)
	}
	for ; n > 0; bi, off = bi+1, 0 {
		rec := recs[bi]
		k := min(n, rec.NumRows()-off)
		n -= k
		arrs, err := e.chain(rec, l)
		if err != nil {
			return err
		}
		for lo, hi := int(off), int(off+k); lo < hi; {
			if lo, err = e.encode(l, arrs, lo, hi, pageSize); err != nil {
				return err
			}
			if len(e.vals) >= pageSize {
				w.encodePage(e, c, l)
			}
		}
	}
	if e.pageRows > 0 {
		w.encodePage(e, c, l)
	}
	return nil
}

// writeChunk writes chunk c of leaf l as column chunk cc of row group g,
// and returns the bytes of its pages.
func (w *Writer) writeChunk(sink *tellWriter, cc *metadata.ColumnChunkMetaDataBuilder, g, col int16, l *leaf, c *chunk) (int64, error) {
	pager, err := file.NewPageWriter(sink, l.codec, l.level, cc, g, col, memory.DefaultAllocator, false, nil, nil)
	if err != nil {
		return 0, err
	}
	var written int64
	for _, p := range c.pages {
		body := memory.NewBufferBytes(c.buf[p.off:p.end])
		var page file.DataPage
		if p.v1 {
			page = file.NewDataPageV1WithStats(body, p.rows, parquet.Encodings.Plain,
				parquet.Encodings.RLE, parquet.Encodings.RLE, p.uncompressed, p.stats)
		} else {
			page = file.NewDataPageV2WithStats(body, p.rows, p.nulls, p.rows, parquet.Encodings.Plain,
				p.lvlLen, 0, p.uncompressed, p.compressedVals, p.stats)
		}
		n, err := pager.WriteDataPage(page)
		if err != nil {
			return 0, err
		}
		written += n
	}
	if l.stats {
		cc.SetStats(c.stats.encode(l.kind, l.signed, l.maxStats, true))
	}
	if err := pager.Close(false, false); err != nil {
		return 0, err
	}
	return written, nil
}

// countNulls makes a and its struct children count their nulls.
func countNulls(a arrow.Array) {
	a.NullN()
	if st, ok := a.(*array.Struct); ok {
		for i := range st.NumField() {
			countNulls(st.Field(i))
		}
	}
}
