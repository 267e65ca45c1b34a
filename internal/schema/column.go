package schema

import (
	"fmt"
	"math"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/sluice-dev/sluice/internal/bufpool"
)

// Column accumulates the records of one [Schema] that
// [Decoder.AppendColumn] decodes, as the buffers of an Arrow array of the
// schema's [Schema.ArrowType]. It does the job of an Arrow builder at a
// fraction of the cost per value: values go to plain Go slices, and a
// validity bitmap exists only once a null has been appended.
// [Column.NewArray] hands the slices to an array without copying them.
//
// A Column is not goroutine-safe. Its memory is Go heap memory: there is
// nothing to release. A pooled column ([Schema.NewPooledColumn]) takes
// its buffers from a [bufpool.Pool], and its arrays give them back when
// released.
type Column struct {
	s    *Schema
	root column
}

// column is the part of a Column for one schema node.
type column struct {
	n      *node
	dt     arrow.DataType
	length int
	nulls  int
	valid  []byte   // validity bitmap (LSB first); nil while no value is null
	w8     []int64  // int64, float64 (as bits), timestamp
	w4     []int32  // date32; the offsets of strings and lists, from 0
	data   []byte   // string bytes; booleans as a bitmap
	elem   *column  // list
	fields []column // struct
	pool   *bufpool.Pool
}

// NewColumn returns an empty column for records of s.
func (s *Schema) NewColumn() *Column { return s.NewPooledColumn(nil) }

// NewPooledColumn returns an empty column for records of s whose buffers
// come from p and go back to it when its arrays are released: nothing may
// keep a reference into them afterwards (see package bufpool). A nil p
// makes a plain column.
func (s *Schema) NewPooledColumn(p *bufpool.Pool) *Column {
	c := &Column{s: s}
	c.root.init(s.root, p)
	return c
}

func (c *column) init(n *node, p *bufpool.Pool) {
	c.n, c.dt, c.pool = n, n.arrowType(), p
	switch n.kind {
	case kindList:
		c.elem = &column{}
		c.elem.init(n.elem, p)
	case kindStruct:
		c.fields = make([]column, len(n.fields))
		for f := range n.fields {
			c.fields[f].init(n.fields[f].node, p)
		}
	}
	c.reset(0, 0)
}

// reset empties c and its children, making room for rows values (and, for
// strings, bytes bytes) without growing.
func (c *column) reset(rows, bytes int) {
	c.length, c.nulls, c.valid = 0, 0, nil
	c.w8, c.w4, c.data = nil, nil, nil
	switch c.n.kind {
	case kindInt, kindFloat, kindTimestamp:
		c.w8 = c.pool.Int64s(rows)
	case kindDate:
		c.w4 = c.pool.Int32s(rows)
	case kindBool:
		c.data = c.pool.Bytes((rows + 7) / 8)
	case kindPlain, kindString, kindJSON:
		c.w4 = append(c.pool.Int32s(rows+1), 0)
		c.data = c.pool.Bytes(bytes)
	case kindList:
		c.w4 = append(c.pool.Int32s(rows+1), 0)
	}
}

// Len returns the number of records appended since the last NewArray.
func (c *Column) Len() int { return c.root.length }

// NewArray returns the records appended so far as an array of the schema's
// [Schema.ArrowType] and empties c, which keeps room for as many records
// as this array holds (and a little more string data), since the next
// batch is likely as large. The caller owns the array and releases it;
// it shares no memory with c.
func (c *Column) NewArray() arrow.Array {
	d := c.root.finish()
	defer d.Release()
	return array.MakeFromData(d)
}

// finish makes c's array data and resets c.
func (c *column) finish() arrow.ArrayData {
	var valid *memory.Buffer
	if c.valid != nil {
		valid = memory.NewBufferBytes(c.valid)
	}
	rows, bytes := c.length, len(c.data)
	var d arrow.ArrayData
	switch c.n.kind {
	case kindNull:
		d = array.NewData(c.dt, c.length, []*memory.Buffer{nil}, nil, c.length, 0)
	case kindInt, kindFloat, kindTimestamp:
		d = array.NewData(c.dt, c.length, []*memory.Buffer{valid, c.bufOf(arrow.Int64Traits.CastToBytes(c.w8))}, nil, c.nulls, 0)
	case kindDate:
		d = array.NewData(c.dt, c.length, []*memory.Buffer{valid, c.bufOf(arrow.Int32Traits.CastToBytes(c.w4))}, nil, c.nulls, 0)
	case kindBool:
		d = array.NewData(c.dt, c.length, []*memory.Buffer{valid, c.bufOf(c.data)}, nil, c.nulls, 0)
	case kindPlain, kindString, kindJSON:
		if len(c.data) > math.MaxInt32 {
			panic(fmt.Sprintf("schema: %d bytes of strings in one column exceed the utf8 limit of 2 GiB", len(c.data)))
		}
		d = array.NewData(c.dt, c.length, []*memory.Buffer{valid,
			c.bufOf(arrow.Int32Traits.CastToBytes(c.w4)), c.bufOf(c.data)}, nil, c.nulls, 0)
	case kindList:
		child := c.elem.finish()
		d = array.NewData(c.dt, c.length, []*memory.Buffer{valid, c.bufOf(arrow.Int32Traits.CastToBytes(c.w4))},
			[]arrow.ArrayData{child}, c.nulls, 0)
		child.Release()
	case kindStruct:
		children := make([]arrow.ArrayData, len(c.fields))
		for f := range c.fields {
			children[f] = c.fields[f].finish()
		}
		d = array.NewData(c.dt, c.length, []*memory.Buffer{valid}, children, c.nulls, 0)
		for _, ch := range children {
			ch.Release()
		}
	default:
		panic(fmt.Sprintf("schema: unknown kind %d", c.n.kind))
	}
	// d holds its buffers now: drop the references bufOf made, so that
	// releasing d gives pooled buffers back.
	for _, b := range d.Buffers() {
		if b != nil {
			b.Release()
		}
	}
	c.reset(rows, bytes+bytes/16)
	return d
}

// bufOf wraps b, never nil, in a buffer (that gives b back to c's pool).
func (c *column) bufOf(b []byte) *memory.Buffer {
	if b == nil {
		b = []byte{}
	}
	return c.pool.Buffer(b)
}

// valued counts a non-null row.
func (c *column) valued() {
	if c.valid != nil {
		c.setBit(c.length)
	}
	c.length++
}

// setBit marks row i valid, growing the bitmap.
func (c *column) setBit(i int) {
	for len(c.valid) <= i>>3 {
		c.valid = append(c.valid, 0)
	}
	c.valid[i>>3] |= 1 << (i & 7)
}

// appendNull appends a null row (and a null to every child of a struct,
// which must have as many rows).
func (c *column) appendNull() {
	switch c.n.kind {
	case kindNull:
		c.length++
		c.nulls++
		return
	case kindInt, kindFloat, kindTimestamp:
		c.w8 = append(c.w8, 0)
	case kindDate:
		c.w4 = append(c.w4, 0)
	case kindBool:
		c.appendBool(false)
	case kindPlain, kindString, kindJSON, kindList:
		c.w4 = append(c.w4, c.w4[len(c.w4)-1])
	case kindStruct:
		for f := range c.fields {
			c.fields[f].appendNull()
		}
	}
	if c.valid == nil { // every row so far is valid
		c.valid = make([]byte, c.length/8, c.length/8+64)
		for i := range c.valid {
			c.valid[i] = 0xff
		}
		if r := c.length % 8; r != 0 {
			c.valid = append(c.valid, 1<<r-1)
		}
	}
	for len(c.valid) <= c.length>>3 {
		c.valid = append(c.valid, 0)
	}
	c.length++
	c.nulls++
}

// appendBool appends the value bit of row c.length.
func (c *column) appendBool(v bool) {
	i := c.length
	for len(c.data) <= i>>3 {
		c.data = append(c.data, 0)
	}
	if v {
		c.data[i>>3] |= 1 << (i & 7)
	}
}

// appendString appends a non-null string.
func (c *column) appendString(v []byte) {
	c.data = append(c.data, v...)
	c.w4 = append(c.w4, int32(len(c.data)))
	c.valued()
}

// AppendColumn decodes data and appends exactly one record to c, which s
// made (AppendColumn panics otherwise), like [Decoder.Append] does to a
// builder: data == nil appends null; on any error nothing is appended and
// the error is a *[DecodeError]. AppendColumn does not retain data.
func (d *Decoder) AppendColumn(c *Column, data []byte) error {
	if c.s != d.s {
		panic("schema: AppendColumn to a column of another schema")
	}
	if data == nil {
		c.root.appendNull()
		return nil
	}
	if d.directMode == 0 {
		d.directMode = -1
		if d.s.directOK() {
			d.directMode = 1
		}
	}
	if d.directMode > 0 && !d.s.textRoot() {
		rows := c.root.length
		d.b, d.buf = data, d.buf[:0]
		d.i = skipWS(data, 0)
		ok := d.direct(&c.root, 1) && skipWS(data, d.i) == len(data)
		d.b = nil // do not retain data
		if ok {
			return nil
		}
		c.root.truncate(rows) // and find the error on the tape path
	}
	err := d.decode(data)
	switch {
	case err != nil:
	case d.s.textRoot():
		c.root.appendString(data)
	default:
		d.pos = 0
		d.replayColumn(&c.root)
	}
	d.b = nil // do not retain data
	return err
}

// replayColumn appends the tape's value at d.pos to c.
func (d *Decoder) replayColumn(c *column) {
	t := &d.tape[d.pos]
	d.pos++
	if t.flag&cellNull != 0 {
		c.appendNull()
		return
	}
	switch c.n.kind {
	case kindString, kindJSON:
		src := d.b
		if t.flag&cellInBuf != 0 {
			src = d.buf
		}
		c.appendString(src[t.i : t.i+int64(t.n)])
		return
	case kindInt, kindFloat, kindTimestamp: // the tape holds float64 bits
		c.w8 = append(c.w8, t.i)
	case kindDate:
		c.w4 = append(c.w4, int32(t.i))
	case kindBool:
		c.appendBool(t.i != 0)
	case kindList:
		for k := int64(0); k < t.i; k++ {
			d.replayColumn(c.elem)
		}
		c.w4 = append(c.w4, int32(c.elem.length))
	case kindStruct:
		off, end := int(t.i), int(t.n)
		for f := range c.fields {
			if at := d.idx[off+f]; at >= 0 {
				d.pos = int(at)
				d.replayColumn(&c.fields[f])
			} else {
				c.fields[f].appendNull()
			}
		}
		d.pos = end
	default: // kindNull only holds null
		c.appendNull()
		return
	}
	c.valued()
}
